/**
 * The hub's hold for an engine's appends (`Topic.appendSent` /
 * `Topic.appendDone`), driven by a fake engine that calls them as the Redis
 * engine does: `appendSent()` as an append is sent, then on its answer the
 * event is ingested (when stored) and `appendDone()` follows.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHub, HOLD_MAX_MS, type Topic } from "../src/hub.ts";
import { FakeSink } from "./_fake_sink.ts";
import { waitFor } from "./integration/_helpers.ts";

/** A fake engine on one topic: appends are answered when the test says so, in order. */
class FakeEngine {
  readonly topic: Topic;
  #seq = 0;
  #waiting: string[] = [];

  constructor(topic: Topic) {
    this.topic = topic;
  }

  /** Sends `n` appends. */
  send(n: number): void {
    for (let i = 0; i < n; i++) {
      this.#waiting.push(`d${this.#seq + this.#waiting.length}`);
      this.topic.appendSent();
    }
  }

  /** The oldest append in flight is stored: its event reaches the topic, then its answer. */
  store(): string {
    const data = this.#waiting.shift();
    assert.ok(data !== undefined, "an append in flight");
    const seq = this.#seq++;
    this.topic.ingest({ epoch: "r", seq }, data);
    this.topic.appendDone();
    return `r-${seq}`;
  }

  /** The oldest append in flight fails (503): nothing stored. */
  fail(): void {
    assert.ok(this.#waiting.shift() !== undefined, "an append in flight");
    this.topic.appendDone();
  }

  /** An event appended by another instance arrives on the live channel. */
  other(): string {
    const seq = this.#seq++;
    this.topic.ingest({ epoch: "r", seq }, `other${seq}`);
    return `r-${seq}`;
  }
}

function setUp() {
  const hub = createHub();
  const topic = hub.addTopic("events", "unused");
  const sink = new FakeSink();
  topic.subscribe(sink);
  return { hub, topic, sink, engine: new FakeEngine(topic) };
}

describe("Topic: holding events for the engine's appends in flight", () => {
  test("a lone append's event goes out in the call that answers it; another instance's event with nothing in flight at once", () => {
    const { sink, engine } = setUp();
    engine.send(1);
    const id = engine.store();
    assert.deepEqual(sink.log, [id], "not held");
    const other = engine.other();
    assert.deepEqual(sink.log, [id, other]);
    engine.send(1);
    assert.deepEqual(sink.log, [id, other], "nothing to send yet");
    const next = engine.store();
    assert.deepEqual(sink.log, [id, other, next]);
  });

  test("events answered while appends are in flight wait for them, then for one generation more, and go out in order in one go, other instances' events in their place", () => {
    const { sink, engine } = setUp();
    engine.send(3);
    const first = [engine.store(), engine.other(), engine.store()];
    assert.deepEqual(sink.log, [], "held while one is in flight");
    first.push(engine.store());
    assert.deepEqual(sink.log, [], "held for the next generation");
    // The publishers' next round: sent before its first answer, it is the
    // generation waited for; what is sent after that is not.
    engine.send(2);
    const second = [engine.store()];
    engine.send(1);
    assert.deepEqual(sink.log, []);
    second.push(engine.store());
    assert.deepEqual(sink.log, [...first, ...second], "one go, in order");
    assert.equal(new Set(sink.log).size, 6, "once each");
    // The append sent after the generation's first answer starts a hold
    // of its own, answered alone: out at once.
    const third = engine.store();
    assert.deepEqual(sink.log, [...first, ...second, third]);
  });

  test("a hold waits for one generation more at most: appends sent meanwhile by a busy publisher do not hold it longer", () => {
    const { sink, engine } = setUp();
    const ids: string[] = [];
    engine.send(2);
    for (let round = 0; round < 2; round++) {
      // Each answer's publisher sends again at once (a closed loop).
      ids.push(engine.store());
      engine.send(1);
      ids.push(engine.store());
      engine.send(1);
    }
    // Round 0 filled the hold, round 1 was its extra generation (its target:
    // what was sent before its first answer).
    assert.deepEqual(sink.log, ids.slice(0, 4));
    // The next hold: the two in flight, then one generation more.
    ids.push(engine.store(), engine.store());
    assert.deepEqual(sink.log, ids.slice(0, 4));
    engine.send(1);
    ids.push(engine.store());
    assert.deepEqual(sink.log, ids);
  });

  test("the timer releases held events when an append in flight is never answered (a stalled store)", async () => {
    const { sink, engine } = setUp();
    engine.send(2);
    const id = engine.store();
    const other = engine.other();
    assert.deepEqual(sink.log, [], "held");
    // Bounded by properties, not by a measured time: released by the timer
    // alone, since nothing else happens.
    await waitFor(() => sink.log.length === 2, 10_000, "the release");
    assert.deepEqual(sink.log, [id, other]);
    // The append answered late finds no hold.
    const late = engine.store();
    assert.deepEqual(sink.log, [id, other, late]);
    assert.ok(HOLD_MAX_MS > 0 && HOLD_MAX_MS <= 10, "a small cap");
  });

  test("the timer releases a hold waiting for a next generation that never comes (the publishers stopped)", async () => {
    const { sink, engine } = setUp();
    engine.send(2);
    const ids = [engine.store(), engine.store()];
    assert.deepEqual(sink.log, [], "held for the next generation");
    await waitFor(() => sink.log.length === 2, 10_000, "the release");
    assert.deepEqual(sink.log, ids);
  });

  test("a failed append (503) releases the hold it was the last one of", () => {
    const { sink, engine } = setUp();
    engine.send(2);
    const id = engine.store();
    assert.deepEqual(sink.log, []);
    engine.fail();
    assert.deepEqual(sink.log, [id], "released by the failure");
    engine.send(1);
    engine.fail();
    engine.send(1);
    const next = engine.store();
    assert.deepEqual(sink.log, [id, next], "nothing left counted in flight");
  });

  test("a gap notice during a hold comes after the events held before it and before those after it", () => {
    const { topic, sink, engine } = setUp();
    engine.send(3);
    const before = [engine.store(), engine.other()];
    topic.notifyGap({ lastEventId: "r-9", reason: "lost" });
    assert.deepEqual(sink.log, [...before, "gap:r-9"], "held ones first");
    const after = [engine.store(), engine.store()];
    // Held again (the hold ended at the notice), then out once answered
    // and the idle timer passed.
    assert.deepEqual(sink.log, [...before, "gap:r-9"]);
    return waitFor(() => sink.log.length === 5, 10_000, "the rest").then(
      () => assert.deepEqual(sink.log, [...before, "gap:r-9", ...after]),
    );
  });

  test("a subscriber resuming during a hold gets exactly what follows its id, and live subscribers keep their order", async () => {
    const { topic, sink, engine } = setUp();
    engine.send(4);
    const ids = [engine.store(), engine.store(), engine.store()];
    assert.deepEqual(sink.log, []);
    const resumed = new FakeSink();
    topic.subscribe(resumed, { lastEventId: ids[0] });
    assert.deepEqual(sink.log, ids, "held events went out first");
    assert.deepEqual(resumed.log, ids.slice(1));
    const fresh = new FakeSink();
    topic.subscribe(fresh);
    ids.push(engine.store());
    await waitFor(() => sink.log.length === 4, 10_000, "the last event");
    assert.deepEqual(sink.log, ids);
    assert.deepEqual(resumed.log, ids.slice(1));
    assert.deepEqual(fresh.log, ids.slice(3));
  });

  test("a topic without engine appends (the memory engine's publish, a relay's ingest) never holds", () => {
    const { topic, sink } = setUp();
    const ids = [topic.publish("a").id];
    ids.push(topic.ingest({ epoch: "x", seq: 5 }, "b")!.id);
    ids.push(topic.publish("c").id);
    assert.deepEqual(sink.log, ids);
  });
});
