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
});
