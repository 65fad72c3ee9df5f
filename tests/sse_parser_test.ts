import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createSseParser, type SseMessage } from "../src/sse_parser.ts";

type Item =
  | ["message", SseMessage]
  | ["comment", string]
  | ["retry", number];

function collector(maxLineLength?: number): {
  items: Item[];
  feed(text: string): void;
} {
  const items: Item[] = [];
  const parser = createSseParser({
    onMessage: (m) => items.push(["message", m]),
    onComment: (t) => items.push(["comment", t]),
    onRetry: (ms) => items.push(["retry", ms]),
  }, maxLineLength);
  return { items, feed: (text) => parser.feed(text) };
}

function parseWhole(text: string): Item[] {
  const c = collector();
  c.feed(text);
  return c.items;
}

function message(
  data: string,
  lastEventId = "",
  event = "message",
): Item {
  return ["message", { event, data, lastEventId }];
}

/** A small deterministic PRNG (mulberry32) so failures replay. */
function random(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

const STREAM = "\uFEFFretry: 1500\n: connected\n\n" +
  "id: e-1\ndata: first\n\n" +
  "data: héllo 🌍\r\ndata: two\r\n\r\n" +
  'event: gap\rdata: {"reason":"x"}\r\r' +
  ": heartbeat\n\n" +
  "id: e-2\nevent: binary\ndata:aGkA\n\n" +
  "data: no id here\n\n" +
  "id\ndata: id reset\n\n" +
  "data\ndata\n\n" +
  "data: end\n\n" +
  "id: e-3\ndata: tail";

const EXPECTED: Item[] = [
  ["retry", 1500],
  ["comment", "connected"],
  message("first", "e-1"),
  message("héllo 🌍\ntwo", "e-1"),
  message('{"reason":"x"}', "e-1", "gap"),
  ["comment", "heartbeat"],
  message("aGkA", "e-2", "binary"),
  message("no id here", "e-2"),
  message("id reset", ""),
  message("\n", ""),
  message("end", ""),
];

describe("createSseParser()", () => {
  test("createSseParser() reads fields, comments, retry and ids of a whole stream", () => {
    assert.deepEqual(parseWhole(STREAM), EXPECTED);
  });

  test("createSseParser() gives the same result fed one character at a time", () => {
    const c = collector();
    for (const char of STREAM.split("")) c.feed(char);
    assert.deepEqual(c.items, EXPECTED);
  });

  test("createSseParser() gives the same result for random splits", () => {
    const next = random(42);
    for (let round = 0; round < 200; round++) {
      const c = collector();
      let i = 0;
      while (i < STREAM.length) {
        const n = Math.floor(next() * 12);
        c.feed(STREAM.slice(i, i + n));
        i += n;
      }
      assert.deepEqual(c.items, EXPECTED, `round ${round}`);
    }
  });

  test("createSseParser() gives the same result for every split of UTF-8 bytes through a streaming decoder", () => {
    const bytes = new TextEncoder().encode(STREAM);
    for (let cut = 0; cut <= bytes.length; cut++) {
      const decoder = new TextDecoder("utf-8", { ignoreBOM: true });
      const c = collector();
      c.feed(decoder.decode(bytes.subarray(0, cut), { stream: true }));
      c.feed(decoder.decode(bytes.subarray(cut), { stream: true }));
      c.feed(decoder.decode());
      assert.deepEqual(c.items, EXPECTED, `cut at byte ${cut}`);
    }
  });

  test("createSseParser() does not dispatch an event without its blank line", () => {
    assert.deepEqual(parseWhole("data: a\n"), []);
  });

  test("createSseParser() ignores a blank line without data", () => {
    assert.deepEqual(parseWhole("event: x\n\nid: e-1\n\n\n\ndata: a\n\n"), [
      message("a", "e-1"),
    ]);
  });

  test("createSseParser() resets the event name after each dispatch", () => {
    assert.deepEqual(parseWhole("event: gap\ndata: a\n\ndata: b\n\n"), [
      message("a", "", "gap"),
      message("b", ""),
    ]);
  });

  test("createSseParser() removes only one space after the colon", () => {
    assert.deepEqual(parseWhole("data:  two spaces\ndata:none\n\n"), [
      message(" two spaces\nnone"),
    ]);
  });

  test("createSseParser() keeps the last event id across events", () => {
    assert.deepEqual(parseWhole("id: a-1\ndata: x\n\ndata: y\n\n"), [
      message("x", "a-1"),
      message("y", "a-1"),
    ]);
  });

  test("createSseParser() ignores an id containing NUL", () => {
    assert.deepEqual(parseWhole("id: a-1\ndata: x\n\nid: b\0\ndata: y\n\n"), [
      message("x", "a-1"),
      message("y", "a-1"),
    ]);
  });

  test("createSseParser() reports retry only for digits", () => {
    assert.deepEqual(
      parseWhole("retry: 10\nretry: x\nretry: -1\nretry: 1.5\nretry:20\n"),
      [["retry", 10], ["retry", 20]],
    );
  });

  test("createSseParser() ignores unknown fields", () => {
    assert.deepEqual(parseWhole("foo: bar\ndata: x\nDATA: y\n\n"), [
      message("x"),
    ]);
  });

  test("createSseParser() reads CR line ends", () => {
    assert.deepEqual(parseWhole("id: a-1\rdata: x\r\rdata: y\r\r:\n"), [
      message("x", "a-1"),
      message("y", "a-1"),
      ["comment", ""],
    ]);
  });

  test("createSseParser() dispatches an event ended by a CR at the end of a chunk without waiting for more input", () => {
    // A server that ends lines with CR alone must not have its newest event
    // held back until the next chunk (a heartbeat may be 15 s away).
    assert.deepEqual(parseWhole("id: a-1\rdata: x\r\r"), [
      message("x", "a-1"),
    ]);
    const c = collector();
    c.feed("data: y\r");
    c.feed("\r");
    assert.deepEqual(c.items, [message("y")]);
    // The LF of a CRLF split across chunks is still not a second line end.
    c.feed("\ndata: z\n\n");
    assert.deepEqual(c.items, [message("y"), message("z")]);
  });

  test("createSseParser() reads CRLF split between chunks as one line end", () => {
    const c = collector();
    c.feed("data: x\r");
    c.feed("\ndata: y\r");
    c.feed("\n\r");
    c.feed("\n");
    assert.deepEqual(c.items, [message("x\ny")]);
  });

  test("createSseParser() skips a leading BOM only once", () => {
    assert.deepEqual(parseWhole("\uFEFFdata: a\n\n"), [message("a")]);
    const c = collector();
    c.feed("");
    c.feed("\uFEFF");
    c.feed("data: b\n\n\uFEFFdata: c\n\n");
    assert.deepEqual(c.items, [message("b")]);
  });

  test("createSseParser() throws RangeError when a line grows past the limit", () => {
    const c = collector(16);
    c.feed("data: 0123456789");
    assert.throws(() => c.feed("x"), RangeError);
    const d = collector(16);
    assert.throws(
      () => d.feed("data: " + "x".repeat(100)),
      (error: unknown) => {
        assert.ok(error instanceof RangeError);
        assert.match(error.message, /16/);
        return true;
      },
    );
  });

  test("createSseParser() accepts lines up to the limit, over many chunks", () => {
    const c = collector(16);
    c.feed("data: 012");
    c.feed("3456789");
    c.feed("\n\n");
    assert.deepEqual(c.items, [message("0123456789")]);
  });
});
