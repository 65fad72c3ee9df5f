import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  createEpoch,
  decodeBase64,
  encodeBase64,
  formatEventId,
  formatJsonGap,
  formatSseEvent,
  formatSseGap,
  parseEventId,
  parseJsonMessage,
  StreamEvent,
  utf8Length,
} from "../src/event.ts";
import { createSseParser, type SseMessage } from "../src/sse_parser.ts";

const DECODER = new TextDecoder();

function parseSse(text: string): SseMessage[] {
  const messages: SseMessage[] = [];
  createSseParser({ onMessage: (m) => messages.push(m) }).feed(text);
  return messages;
}

describe("event ids", () => {
  test("createEpoch() makes a lowercase base36 token that parses as an id epoch", () => {
    const epoch = createEpoch();
    assert.match(epoch, /^[0-9a-z]{4,32}$/);
    assert.deepEqual(parseEventId(formatEventId(epoch, 7)), { epoch, seq: 7 });
  });

  test("createEpoch() differs between calls in the same millisecond", () => {
    const epochs = new Set([createEpoch(), createEpoch(), createEpoch()]);
    assert.ok(epochs.size > 1);
  });

  test("formatEventId() joins epoch and seq with a dash", () => {
    assert.equal(formatEventId("abc", 0), "abc-0");
    assert.equal(formatEventId("abc", 42), "abc-42");
  });

  test("parseEventId() reads valid ids", () => {
    assert.deepEqual(parseEventId("abc-0"), { epoch: "abc", seq: 0 });
    assert.deepEqual(parseEventId("m0z9-123"), { epoch: "m0z9", seq: 123 });
    assert.deepEqual(parseEventId("e-9007199254740991"), {
      epoch: "e",
      seq: Number.MAX_SAFE_INTEGER,
    });
  });

  test("parseEventId() refuses malformed ids", () => {
    for (
      const id of [
        "",
        "abc",
        "abc-",
        "-1",
        "ABC-1",
        "abc-01",
        "abc--1",
        "abc-1-2",
        "abc-1.5",
        " abc-1",
        "abc-1 ",
        "a_b-1",
        "x".repeat(33) + "-1",
      ]
    ) {
      assert.equal(parseEventId(id), undefined, JSON.stringify(id));
    }
  });

  test("parseEventId() refuses a seq beyond the safe integers", () => {
    assert.equal(parseEventId("e-9007199254740992"), undefined);
    assert.equal(parseEventId("e-99999999999999999"), undefined);
  });
});

describe("StreamEvent", () => {
  test("StreamEvent keeps the id's parts, the data and the UTF-8 size", () => {
    const event = new StreamEvent({ epoch: "e", seq: 3 }, "héllo");
    assert.equal(event.id, "e-3");
    assert.equal(event.epoch, "e");
    assert.equal(event.seq, 3);
    assert.equal(event.data, "héllo");
    assert.equal(event.size, 6);
    assert.equal(event.binary, false);
  });

  test("StreamEvent serializes each format once and returns the same object", () => {
    const event = new StreamEvent({ epoch: "e", seq: 1 }, "x");
    assert.equal(event.sse, event.sse);
    assert.equal(event.bytes, event.bytes);
    assert.equal(event.json, event.json);
    const binary = new StreamEvent({ epoch: "e", seq: 2 }, new Uint8Array(3));
    assert.equal(binary.sse, binary.sse);
    assert.equal(binary.bytes, binary.data);
  });

  test("StreamEvent.json is the {id,data} envelope", () => {
    const event = new StreamEvent({ epoch: "e", seq: 1 }, 'a "quoted"\nline');
    assert.deepEqual(JSON.parse(event.json), {
      id: "e-1",
      data: 'a "quoted"\nline',
    });
  });

  test("StreamEvent.json carries binary data as base64", () => {
    const event = new StreamEvent(
      { epoch: "e", seq: 1 },
      new Uint8Array([0, 1, 255]),
    );
    assert.equal(event.binary, true);
    assert.equal(event.size, 3);
    assert.deepEqual(JSON.parse(event.json), {
      id: "e-1",
      data: "AAH/",
      encoding: "base64",
    });
  });

  test("StreamEvent.bytes is the UTF-8 of text", () => {
    const event = new StreamEvent({ epoch: "e", seq: 1 }, "é");
    assert.deepEqual([...event.bytes], [0xc3, 0xa9]);
  });

  test("StreamEvent.sse is the SSE block with the id", () => {
    const event = new StreamEvent({ epoch: "e", seq: 5 }, "hello");
    assert.equal(DECODER.decode(event.sse), "id: e-5\ndata: hello\n\n");
  });
});

describe("utf8Length()", () => {
  test("utf8Length() counts 1 to 4 bytes per character, 3 for a lone surrogate", () => {
    assert.equal(utf8Length(""), 0);
    assert.equal(utf8Length("abc"), 3);
    assert.equal(utf8Length("é"), 2);
    assert.equal(utf8Length("€"), 3);
    assert.equal(utf8Length("😀"), 4);
    assert.equal(utf8Length("\ud83d"), 3);
    assert.equal(utf8Length("\ude00x"), 4);
  });

  test("utf8Length() agrees with TextEncoder on 20,000 seeded random strings", () => {
    const encoder = new TextEncoder();
    let seed = 12345;
    const next = () => (seed = (seed * 1103515245 + 12345) % 2147483648);
    for (let n = 0; n < 20_000; n++) {
      let text = "";
      const length = next() % 9;
      for (let i = 0; i < length; i++) {
        const kind = next() % 4;
        text += String.fromCharCode(
          kind === 0
            ? next() % 0x80
            : kind === 1
            ? 0x80 + next() % 0x780
            : kind === 2
            ? 0xd800 + next() % 0x800
            : next() % 0x10000,
        );
      }
      assert.equal(
        utf8Length(text),
        encoder.encode(text).byteLength,
        JSON.stringify(text),
      );
    }
  });
});

describe("formatSseEvent()", () => {
  test("formatSseEvent() writes one data line per payload line", () => {
    assert.equal(
      formatSseEvent("e-1", "a\nb\nc"),
      "id: e-1\ndata: a\ndata: b\ndata: c\n\n",
    );
  });

  test("formatSseEvent() keeps the demo message's trailing newline as an empty data line", () => {
    const text = formatSseEvent("e-0", "0: localhost:8080: abcdefghij\n");
    assert.equal(
      text,
      "id: e-0\ndata: 0: localhost:8080: abcdefghij\ndata: \n\n",
    );
    assert.equal(parseSse(text)[0].data, "0: localhost:8080: abcdefghij\n");
  });

  test("formatSseEvent() splits CRLF and CR as the parser will", () => {
    assert.equal(
      formatSseEvent("e-1", "a\r\nb\rc"),
      "id: e-1\ndata: a\ndata: b\ndata: c\n\n",
    );
    assert.equal(parseSse(formatSseEvent("e-1", "a\r\nb"))[0].data, "a\nb");
  });

  test("formatSseEvent() cannot be broken out of by a payload with a blank line or fields", () => {
    const payload = "x\n\nid: evil\nevent: gap\ndata: y";
    const messages = parseSse(formatSseEvent("e-1", payload));
    assert.equal(messages.length, 1);
    assert.equal(messages[0].data, payload);
    assert.equal(messages[0].lastEventId, "e-1");
    assert.equal(messages[0].event, "message");
  });

  test("formatSseEvent() writes an empty payload as one empty data line", () => {
    assert.equal(formatSseEvent("e-1", ""), "id: e-1\ndata: \n\n");
  });

  test("formatSseEvent() sends binary as base64 under event: binary", () => {
    assert.equal(
      formatSseEvent("e-1", new Uint8Array([104, 105, 0])),
      "id: e-1\nevent: binary\ndata: aGkA\n\n",
    );
  });

  test("formatSseEvent() omits the id line for null and names the event", () => {
    assert.equal(formatSseEvent(null, "x", "note"), "event: note\ndata: x\n\n");
  });

  test("formatSseGap() is an event: gap block with JSON data and no id", () => {
    const notice = { lastEventId: "e-1", reason: "gone" };
    const text = formatSseGap(notice);
    assert.ok(text.startsWith("event: gap\ndata: "));
    assert.ok(!text.includes("id:"));
    const [message] = parseSse(text);
    assert.equal(message.event, "gap");
    assert.deepEqual(JSON.parse(message.data), notice);
  });

  test("formatJsonGap() is a type:gap object", () => {
    assert.deepEqual(
      JSON.parse(formatJsonGap({ lastEventId: null, reason: "r" })),
      { type: "gap", lastEventId: null, reason: "r" },
    );
  });
});

describe("parseJsonMessage()", () => {
  test("parseJsonMessage() reads an event envelope", () => {
    assert.deepEqual(parseJsonMessage('{"id":"e-1","data":"hi\\n"}'), {
      type: "event",
      id: "e-1",
      data: "hi\n",
    });
  });

  test("parseJsonMessage() reads what StreamEvent.json writes, text and binary", () => {
    const text = new StreamEvent({ epoch: "e", seq: 9 }, "x");
    assert.deepEqual(parseJsonMessage(text.json), {
      type: "event",
      id: "e-9",
      data: "x",
    });
    const bytes = new Uint8Array([0, 128, 255]);
    const binary = new StreamEvent({ epoch: "e", seq: 10 }, bytes);
    assert.deepEqual(parseJsonMessage(binary.json), {
      type: "event",
      id: "e-10",
      data: bytes,
    });
  });

  test("parseJsonMessage() reads gap notices, with defaults for missing fields", () => {
    assert.deepEqual(
      parseJsonMessage(formatJsonGap({ lastEventId: "e-1", reason: "old" })),
      { type: "gap", notice: { lastEventId: "e-1", reason: "old" } },
    );
    assert.deepEqual(parseJsonMessage('{"type":"gap"}'), {
      type: "gap",
      notice: { lastEventId: null, reason: "gap" },
    });
  });

  test("parseJsonMessage() reads heartbeats", () => {
    assert.deepEqual(parseJsonMessage('{"type":"heartbeat"}'), {
      type: "heartbeat",
    });
  });

  test("parseJsonMessage() answers undefined for anything else", () => {
    for (
      const text of [
        "",
        "hello",
        " {}",
        "{",
        "{not json",
        "[1]",
        "null",
        "{}",
        '{"id":"e-1"}',
        '{"id":"not an id","data":"x"}',
        '{"id":"e-1","data":1}',
        '{"id":"e-1","data":"!!!","encoding":"base64"}',
        '{"type":"other"}',
      ]
    ) {
      assert.equal(parseJsonMessage(text), undefined, text);
    }
  });
});

describe("base64", () => {
  test("encodeBase64() and decodeBase64() round-trip every byte, past one chunk", () => {
    const bytes = new Uint8Array(0x8000 * 2 + 3);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 7) & 0xff;
    const text = encodeBase64(bytes);
    assert.match(text, /^[A-Za-z0-9+/]+=*$/);
    assert.deepEqual(decodeBase64(text), bytes);
  });

  test("encodeBase64() writes standard base64", () => {
    assert.equal(encodeBase64(new TextEncoder().encode("hello")), "aGVsbG8=");
    assert.equal(encodeBase64(new Uint8Array(0)), "");
  });

  test("decodeBase64() answers undefined for text that is not base64", () => {
    assert.equal(decodeBase64("@@@"), undefined);
    assert.equal(decodeBase64("a"), undefined);
  });
});
