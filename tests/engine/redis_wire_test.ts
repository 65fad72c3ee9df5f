import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { describe, test } from "node:test";
import {
  entryIdOf,
  liveData,
  parseLiveHead,
  parseLiveMessage,
  parseRange,
  pathKeys,
  seqOfEntryId,
} from "../../src/engine/_redis_wire.ts";

const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

describe("Redis engine wire format", () => {
  test("pathKeys() puts one path's keys in one Redis Cluster hash slot", () => {
    assert.deepEqual(pathKeys("wsevent:", "rooms/42"), {
      meta: "wsevent:{rooms/42}:meta",
      log: "wsevent:{rooms/42}:log",
      live: "wsevent:{rooms/42}:live",
    });
  });

  test("parseLiveMessage() reads epoch, seq, time and text or bytes, colons in the payload included", () => {
    const text = parseLiveMessage(
      bytes("mx1abc:41:1700000000000:n0nce:ta:b:c"),
    )!;
    assert.deepEqual(text.id, { epoch: "mx1abc", seq: 41 });
    assert.equal(text.data, "a:b:c");
    assert.equal(text.time, 1700000000000);
    assert.equal(text.nonce, "n0nce");
    const raw = new Uint8Array([...bytes("e1:0:5:n:b"), 0, 58, 255]);
    const binary = parseLiveMessage(raw)!;
    assert.deepEqual([...(binary.data as Uint8Array)], [0, 58, 255]);
    // A copy: the client may reuse its buffer.
    raw[raw.length - 1] = 1;
    assert.deepEqual([...(binary.data as Uint8Array)], [0, 58, 255]);
    // A copy of a Buffer too (what the client hands out), not a view of
    // the chunk it was read from.
    const chunk = Buffer.concat([
      Buffer.from("e1:0:5:n:b"),
      Buffer.from([7, 8]),
    ]);
    const fromBuffer = parseLiveMessage(chunk.subarray(0))!.data as Uint8Array;
    chunk[chunk.length - 1] = 0;
    assert.deepEqual([...fromBuffer], [7, 8]);
    assert.equal(Buffer.isBuffer(fromBuffer), false);
    assert.equal(fromBuffer.buffer.byteLength, 2, "not a view of the chunk");
  });

  test("parseLiveMessage() ignores anything that is not one of ours", () => {
    for (
      const text of [
        "",
        "hello",
        "e1:0:5:tx",
        "E1:0:5:n:tx",
        "e1:-1:5:n:tx",
        "e1:x:5:n:tx",
        "e1:0:5:n:xdata",
        "e1:99999999999999999:5:n:tx",
        "e1::5:n:tx",
      ]
    ) {
      assert.equal(parseLiveMessage(bytes(text)), undefined, text);
    }
  });

  test("parseLiveHead() reads the head alone and liveData() the payload after it; limits as parseLiveMessage()", () => {
    const message = bytes(
      "mx1abc:9007199254740991:1700000000000:n0nce:tpay:load",
    );
    const head = parseLiveHead(message)!;
    assert.deepEqual(head.id, { epoch: "mx1abc", seq: 9007199254740991 });
    assert.equal(head.time, 1700000000000);
    assert.equal(head.nonce, "n0nce");
    assert.equal(liveData(message, head), "pay:load");
    assert.equal(
      liveData(bytes("e:0:1:n:t"), parseLiveHead(bytes("e:0:1:n:t"))!),
      "",
    );
    assert.equal(
      parseLiveHead(bytes(`${"a".repeat(32)}:0:5:n:tx`))?.id.epoch,
      "a".repeat(32),
    );
    assert.equal(parseLiveHead(bytes("e1:0:5x:n:tx"))?.time, NaN);
    assert.equal(parseLiveHead(bytes("e1:0::n:tx"))?.time, 0);
    const nonAscii = parseLiveHead(bytes("e1:0:5:nö:tx"));
    assert.equal(nonAscii?.nonce, "nö");
    for (
      const text of [
        `${"a".repeat(33)}:0:5:n:tx`,
        ":0:5:n:tx",
        "e1:01:5:n:tx",
        "e1:9007199254740992:5:n:tx",
        "e1:0:5:n:",
        "e1:0:5:n",
        "e1:0:5",
        "e\u00e9:0:5:n:tx",
      ]
    ) {
      assert.equal(parseLiveHead(bytes(text)), undefined, text);
    }
  });

  test("seqOfEntryId() and entryIdOf() map seq n to the stream id 0-(n+1), and refuse ids we did not write", () => {
    assert.equal(entryIdOf(0), "0-1");
    assert.equal(seqOfEntryId("0-1"), 0);
    assert.equal(seqOfEntryId(entryIdOf(123456)), 123456);
    for (const id of ["0-0", "1-1", "0-01", "1700000000000-0", "0-", "x"]) {
      assert.equal(seqOfEntryId(id), undefined, id);
    }
  });

  test("parseRange() reads XRANGE entries and skips foreign or incomplete ones", () => {
    const reply = [
      ["0-1", [
        bytes("d"),
        bytes("one"),
        bytes("k"),
        bytes("t"),
        bytes("e"),
        bytes("ep"),
        bytes("n"),
        bytes("x1"),
      ]],
      ["1700000000000-0", [bytes("d"), bytes("foreign")]],
      ["0-2", [
        bytes("d"),
        new Uint8Array([7]),
        bytes("k"),
        bytes("b"),
        bytes("e"),
        bytes("ep"),
      ]],
      ["0-3", [bytes("d"), bytes("no kind")]],
      "garbage",
    ];
    const events = parseRange(reply);
    assert.deepEqual(events.map((e) => e.id), [
      { epoch: "ep", seq: 0 },
      { epoch: "ep", seq: 1 },
    ]);
    assert.equal(events[0].data, "one");
    assert.equal(events[0].nonce, "x1");
    assert.equal(events[1].nonce, "");
    assert.deepEqual([...(events[1].data as Uint8Array)], [7]);
    assert.deepEqual(parseRange(null), []);
  });
});
