import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  formatDemoMessage,
  randomLetters,
  startProducer,
} from "../src/producer.ts";
import { createHub } from "../src/hub.ts";
import { FakeSink } from "./_fake_sink.ts";

const DEADLINE_MS = 5000;

function delay(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls until `done()` or the deadline. */
async function waitFor(done: () => boolean, what: string): Promise<void> {
  const end = Date.now() + DEADLINE_MS;
  while (!done()) {
    if (Date.now() > end) throw new Error(`Timed out waiting for ${what}`);
    await delay(5);
  }
}

describe("producer", () => {
  test("randomLetters() makes the asked number of ASCII letters", () => {
    assert.match(randomLetters(10), /^[A-Za-z]{10}$/);
    assert.equal(randomLetters(0), "");
    const many = randomLetters(2000);
    assert.match(many, /^[A-Za-z]{2000}$/);
    assert.ok(new Set(many).size > 40, "uses most of the alphabet");
  });

  test("formatDemoMessage() writes the original's message with a trailing newline", () => {
    assert.match(
      formatDemoMessage(0, "localhost:8080"),
      /^0: localhost:8080: [A-Za-z]{10}\n$/,
    );
    assert.match(formatDemoMessage(12, ":8080"), /^12: :8080: [A-Za-z]{10}\n$/);
  });

  test("startProducer() publishes numbered messages every interval until stopped", async () => {
    const topic = createHub().addTopic("events", "e");
    const sink = new FakeSink();
    topic.subscribe(sink);
    const seen: string[] = [];
    const stop = startProducer(topic, {
      label: "localhost:8080",
      intervalMs: 5,
      onMessage: (message) => seen.push(message),
    });
    try {
      await waitFor(() => sink.events.length >= 3, "three demo events");
    } finally {
      stop();
    }
    const count = sink.events.length;
    sink.events.forEach((event, n) => {
      assert.equal(event.id, `e-${n}`);
      assert.match(
        event.data as string,
        new RegExp(`^${n}: localhost:8080: [A-Za-z]{10}\\n$`),
      );
      assert.equal(event.data, seen[n]);
    });
    await delay(40);
    assert.equal(sink.events.length, count, "no event after stop()");
  });
});
