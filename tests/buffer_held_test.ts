import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { EventBuffer } from "../src/_buffer.ts";
import { StreamEvent } from "../src/event.ts";

function event(seq: number, data: string | Uint8Array): StreamEvent {
  return new StreamEvent({ epoch: "e", seq }, data);
}

describe("EventBuffer counts what its events hold", () => {
  test("EventBuffer counts a wire form made after the push, and trims to its byte bound", () => {
    const buffer = new EventBuffer(100, 9_000);
    const events = [0, 1, 2, 3].map((i) => event(i, "\n".repeat(1000)));
    for (const e of events) buffer.push(e);
    assert.equal(buffer.bytes, 4000, "the payloads only, before any form");
    // An SSE form of a body of newlines: one "data: " line per newline.
    const sse = events[3].sse.byteLength;
    assert.ok(sse > 7000, `SSE form of ${sse} bytes`);
    assert.equal(buffer.length, 1, "older events dropped for the form");
    assert.equal(buffer.bytes, events[3].held);
    assert.equal(events[3].held, 1000 + sse);
  });

  test("EventBuffer stops counting an event it dropped", () => {
    const buffer = new EventBuffer(1, 1 << 20);
    const first = event(0, "abc");
    buffer.push(first);
    buffer.push(event(1, "de"));
    void first.json;
    void first.bytes;
    assert.equal(buffer.bytes, 2);
    assert.equal(buffer.length, 1);
  });

  test("StreamEvent.held counts the UTF-8 copy of text but not of binary data", () => {
    const text = event(0, "héllo");
    void text.bytes;
    assert.equal(text.held, 12);
    const binary = event(1, new Uint8Array(5));
    void binary.bytes;
    assert.equal(binary.held, 5);
    void binary.json;
    assert.equal(binary.held, 5 + binary.json.length);
  });
});
