/**
 * The seam between the hub and an engine's history (Topic.useHistory), with
 * a scripted history; and the memory engine.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { EventIdParts } from "../../src/event.ts";
import { createMemoryEngine } from "../../src/engine/memory.ts";
import type { HistoryRange, LogEntry } from "../../src/engine/types.ts";
import { createHub, type Topic } from "../../src/hub.ts";
import { FakeSink } from "../_fake_sink.ts";

/** A log of `count` entries in epoch `e`, of which the engine keeps those from `oldest`. */
function log(count: number, oldest = 0): LogEntry[] {
  return Array.from({ length: count }, (_, seq) => ({
    id: { epoch: "e", seq },
    data: `d${seq}`,
  })).slice(oldest);
}

/** A history answering from `entries`, each answer held until `release()`. */
function heldHistory(entries: LogEntry[]): {
  asked: (EventIdParts | undefined)[];
  release(): Promise<void>;
  fail(): Promise<void>;
  range(after: EventIdParts | undefined): Promise<HistoryRange>;
} {
  const waiting: { ok: () => void; fail: () => void }[] = [];
  const asked: (EventIdParts | undefined)[] = [];
  return {
    asked,
    range(after) {
      asked.push(after);
      return new Promise((resolve, reject) => {
        const found = after === undefined || after.epoch !== "e"
          ? entries
          : entries.filter((entry) => entry.id.seq > after.seq);
        waiting.push({
          ok: () => resolve({ epoch: "e", entries: found }),
          fail: () => reject(new Error("Redis is down")),
        });
      });
    },
    async release() {
      for (const w of waiting.splice(0)) w.ok();
      await new Promise((r) => setTimeout(r, 0));
    },
    async fail() {
      for (const w of waiting.splice(0)) w.fail();
      await new Promise((r) => setTimeout(r, 0));
    },
  };
}

/** A topic fed with `ingested` events of epoch `e`, its buffer keeping 3. */
function topicWith(ingested: number): Topic {
  const topic = createHub({ bufferSize: 3 }).addTopic("events", "unused");
  for (let seq = 0; seq < ingested; seq++) {
    topic.ingest({ epoch: "e", seq }, `d${seq}`);
  }
  return topic;
}

const ids = (from: number, to: number): string[] =>
  Array.from({ length: to - from + 1 }, (_, i) => `e-${from + i}`);

describe("Topic.useHistory()", () => {
  test("Topic.subscribe() resuming before the buffer reads the engine's history, then the buffer, then live events, each once and in order", async () => {
    const topic = topicWith(10);
    const history = heldHistory(log(10));
    topic.useHistory(history);
    const sink = new FakeSink();
    topic.subscribe(sink, { lastEventId: "e-2" });
    assert.deepEqual(history.asked, [{ epoch: "e", seq: 2 }]);
    // Live events while the history is read wait for it.
    topic.ingest({ epoch: "e", seq: 10 }, "d10");
    assert.deepEqual(sink.log, []);
    await history.release();
    assert.deepEqual(sink.log, ids(3, 10));
    topic.ingest({ epoch: "e", seq: 11 }, "d11");
    assert.deepEqual(sink.log, ids(3, 11));
    assert.equal(sink.events[0].data, "d3");
  });

  test("Topic.subscribe() resuming within the buffer does not ask the engine", () => {
    const topic = topicWith(10);
    const history = heldHistory(log(10));
    topic.useHistory(history);
    const sink = new FakeSink();
    topic.subscribe(sink, { lastEventId: "e-7" });
    assert.deepEqual(history.asked, []);
    assert.deepEqual(sink.log, ids(8, 9));
  });

  test("Topic.subscribe() resuming before what the engine still keeps gets the gap notice first", async () => {
    const topic = topicWith(10);
    const history = heldHistory(log(10, 5));
    topic.useHistory(history);
    const sink = new FakeSink();
    topic.subscribe(sink, { lastEventId: "e-2" });
    await history.release();
    assert.deepEqual(sink.log, ["gap:e-2", ...ids(5, 9)]);
  });

  test("Topic.subscribe() resuming from another epoch gets the gap notice, then the whole log", async () => {
    const topic = topicWith(5);
    const history = heldHistory(log(5));
    topic.useHistory(history);
    const sink = new FakeSink();
    topic.subscribe(sink, { lastEventId: "old-40" });
    await history.release();
    assert.deepEqual(sink.log, ["gap:old-40", ...ids(0, 4)]);
  });

  test("Topic.subscribe() with replayAll reads the engine's whole log, with no gap notice", async () => {
    const topic = topicWith(8);
    const history = heldHistory(log(8, 1));
    topic.useHistory(history);
    const sink = new FakeSink();
    topic.subscribe(sink, { replayAll: true });
    await history.release();
    assert.deepEqual(history.asked, [undefined]);
    assert.deepEqual(sink.log, ids(1, 7));
  });

  test("Topic.subscribe() goes on from the buffer when the engine's history ends before it", async () => {
    // The engine answered before the live feed brought events 8 and 9 here.
    const topic = topicWith(8);
    const history = heldHistory(log(8));
    topic.useHistory(history);
    const sink = new FakeSink();
    topic.subscribe(sink, { lastEventId: "e-1" });
    topic.ingest({ epoch: "e", seq: 8 }, "d8");
    await history.release();
    topic.ingest({ epoch: "e", seq: 9 }, "d9");
    assert.deepEqual(sink.log, ids(2, 9));
  });

  test("Topic.subscribe() skips what the history sent when the engine is ahead of this instance's live feed", async () => {
    const topic = topicWith(8);
    const history = heldHistory(log(10));
    topic.useHistory(history);
    const sink = new FakeSink();
    topic.subscribe(sink, { lastEventId: "e-1" });
    await history.release();
    assert.deepEqual(sink.log, ids(2, 9));
    // The live feed catches up with events the history already gave.
    for (let seq = 8; seq <= 10; seq++) {
      topic.ingest({ epoch: "e", seq }, `d${seq}`);
    }
    assert.deepEqual(sink.log, ids(2, 10));
  });

  test("Topic.subscribe() closes the subscriber with 1011 when the history cannot be read, never a silent hole", async () => {
    const topic = topicWith(10);
    const history = heldHistory(log(10));
    topic.useHistory(history);
    const sink = new FakeSink();
    topic.subscribe(sink, { lastEventId: "e-1" });
    await history.fail();
    assert.deepEqual(sink.log, ["close:1011"]);
    assert.equal(topic.subscribers, 0);
  });

  test("Topic.subscribe() forgets a subscriber that left while the history was read", async () => {
    const topic = topicWith(10);
    const history = heldHistory(log(10));
    topic.useHistory(history);
    const sink = new FakeSink();
    const subscription = topic.subscribe(sink, { lastEventId: "e-1" });
    assert.equal(topic.subscribers, 1);
    subscription.cancel();
    await history.release();
    assert.deepEqual(sink.log, []);
    assert.equal(topic.subscribers, 0);
  });
});

describe("createMemoryEngine()", () => {
  test("createMemoryEngine() appends into the topic itself and has no store to report", () => {
    const engine = createMemoryEngine();
    const topic = createHub().addTopic("events", "m1");
    engine.open(topic);
    const sink = new FakeSink();
    topic.subscribe(sink);
    assert.equal(engine.append(topic, "a"), "m1-0");
    assert.equal(engine.append(topic, "b"), "m1-1");
    assert.deepEqual(sink.log, ["m1-0", "m1-1"]);
    assert.equal(engine.status, undefined);
    assert.equal(engine.name, "memory");
  });
});
