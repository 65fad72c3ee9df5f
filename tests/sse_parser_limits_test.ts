import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createSseParser, type SseMessage } from "../src/sse_parser.ts";

function parser(max: number): {
  feed(text: string): void;
  messages: SseMessage[];
  oversized: number[];
} {
  const messages: SseMessage[] = [];
  const oversized: number[] = [];
  const p = createSseParser({
    onMessage: (m) => messages.push(m),
    onOversized: (length) => oversized.push(length),
  }, max);
  return { feed: (text) => p.feed(text), messages, oversized };
}

describe("createSseParser() event size bound", () => {
  test("createSseParser() drops an event whose data lines add up past the limit, each line within it", () => {
    const p = parser(100);
    for (let i = 0; i < 1000; i++) p.feed(`data: ${"x".repeat(60)}\n`);
    assert.equal(p.messages.length, 0);
    assert.equal(p.oversized.length, 0, "reported at the end of the event");
    p.feed("\n");
    assert.equal(p.oversized.length, 1);
    assert.ok(p.oversized[0] > 100);
    p.feed("data: next\n\n");
    assert.deepEqual(p.messages.map((m) => m.data), ["next"]);
  });

  test("createSseParser() counts the joining newlines: exactly at the limit passes, one more is dropped", () => {
    const p = parser(9);
    p.feed("data: abcd\ndata: abcd\n\n"); // "abcd\nabcd": 9
    p.feed("data: abcd\ndata: abcde\n\n"); // 10
    assert.deepEqual(p.messages.map((m) => m.data), ["abcd\nabcd"]);
    assert.equal(p.oversized.length, 1);
  });

  test("createSseParser() costs a line's length once however small its chunks: a 4 MiB line in 512-byte chunks within 3 s", () => {
    // A hostile upstream trickling one endless line (a comment, say) made
    // the parser rescan the whole pending line on every chunk: quadratic,
    // seconds of blocked event loop for 2 MiB in 1 KiB chunks.
    const max = 4 << 20;
    const p = parser(max + 10);
    const chunk = "x".repeat(512);
    const started = performance.now();
    let fed = 0;
    p.feed("data: ");
    while (fed < max && performance.now() - started < 3000) {
      p.feed(chunk);
      fed += chunk.length;
    }
    assert.equal(fed, max, `fed ${fed} of ${max} characters in 3 s`);
    p.feed("\n\n");
    assert.equal(p.messages.length, 1);
    assert.equal(p.messages[0].data.length, max);
    // Split across chunks, a line still ends where it should.
    p.feed("data: a");
    p.feed("b\r");
    p.feed("\ndata: c\r\n\r\n");
    assert.deepEqual(p.messages.slice(1).map((m) => m.data), ["ab\nc"]);
  });
});
