/**
 * The hub's hold for an engine's appends (`Topic.appendSent` /
 * `Topic.appendDone`), driven by a fake engine that calls them as the Redis
 * engine does: `appendSent()` as an append is sent, then on its answer the
 * event is ingested (when stored) and `appendDone()` follows.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { HOLD_EXTEND_MIN, HOLD_MAX_MS, HOLD_RETURN_MS } from "../src/hub.ts";
import { FakeSink } from "./_fake_sink.ts";
import { setUp } from "./_hold_fake.ts";
import { waitFor } from "./integration/_helpers.ts";

/**
 * A round of {@link HOLD_EXTEND_MIN} answered appends, then the next round
 * sent at once (a closed loop's publishers coming back). "At once" must be
 * within {@link HOLD_RETURN_MS} of wall-clock time: a process descheduled
 * (or collecting garbage) between the two on a loaded machine did not come
 * back quickly, so such an attempt is started again, at most 20 times.
 */
function quickRound() {
  for (let attempt = 0;; attempt++) {
    const setup = setUp();
    const ids: string[] = [];
    setup.engine.send(HOLD_EXTEND_MIN);
    for (let i = 0; i < HOLD_EXTEND_MIN - 1; i++) {
      ids.push(setup.engine.store());
    }
    // The round's last answer ends it; the clock starts just before.
    const answered = performance.now();
    ids.push(setup.engine.store());
    // Back at once (a closed loop): the next busy round waits for one more.
    setup.engine.send(HOLD_EXTEND_MIN);
    const late = performance.now() - answered > HOLD_RETURN_MS / 2;
    assert.deepEqual(setup.sink.log, ids, "no return seen yet: out at once");
    if (!late) return { ...setup, ids };
    assert.ok(attempt < 20, "the next round never came back at once");
  }
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

  test("events answered while appends are in flight wait for them, in order, other instances' events in their place; a small hold goes out with its last answer", () => {
    const { sink, engine } = setUp();
    engine.send(3);
    const ids = [engine.store(), engine.other(), engine.store()];
    assert.deepEqual(sink.log, [], "held while one is in flight");
    ids.push(engine.store());
    assert.deepEqual(sink.log, ids, "out with the last answer, in order");
    assert.equal(new Set(sink.log).size, 4, "once each");
  });

  test(`a hold of ${HOLD_EXTEND_MIN} events or more waits for one generation more when it has begun: the appends sent until its first answer, no later ones`, () => {
    const { sink, engine } = setUp();
    engine.send(HOLD_EXTEND_MIN);
    const first = [engine.other()];
    for (let i = 0; i < HOLD_EXTEND_MIN - 1; i++) first.push(engine.store());
    // The publishers' next round has begun before the last answer.
    engine.send(2);
    first.push(engine.store());
    assert.deepEqual(sink.log, [], "held for the next generation");
    const second = [engine.store()];
    // Sent after the generation's first answer: not waited for.
    engine.send(1);
    assert.deepEqual(sink.log, []);
    second.push(engine.store());
    assert.deepEqual(sink.log, [...first, ...second], "one go, in order");
    const third = engine.store();
    assert.deepEqual(sink.log, [...first, ...second, third]);
  });

  test(`a hold of ${HOLD_EXTEND_MIN} with nothing sent yet waits for one generation more only when the publishers came back within ${HOLD_RETURN_MS} ms last time; then it goes out once that generation is answered`, () => {
    const { sink, engine, ids } = quickRound();
    const round: string[] = [];
    for (let i = 0; i < HOLD_EXTEND_MIN; i++) round.push(engine.store());
    assert.deepEqual(sink.log, ids, "held for the next generation");
    engine.send(2);
    round.push(engine.store());
    assert.deepEqual(sink.log, ids);
    round.push(engine.store());
    assert.deepEqual(sink.log, [...ids, ...round], "one go, in order");
    // Back at once again, but a smaller round: out with its last answer.
    engine.send(HOLD_EXTEND_MIN - 1);
    const small: string[] = [];
    for (let i = 0; i < HOLD_EXTEND_MIN - 1; i++) small.push(engine.store());
    assert.deepEqual(sink.log, [...ids, ...round, ...small]);
  });

  test("the timer releases an extended hold whose next generation never begins (the publishers stopped)", async () => {
    const { sink, engine } = quickRound();
    const ids: string[] = [];
    for (let i = 0; i < HOLD_EXTEND_MIN; i++) ids.push(engine.store());
    assert.equal(sink.log.length, HOLD_EXTEND_MIN, "the second round held");
    await waitFor(
      () => sink.log.length === 2 * HOLD_EXTEND_MIN,
      10_000,
      "the release",
    );
    assert.deepEqual(sink.log.slice(HOLD_EXTEND_MIN), ids);
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
    const after = [engine.store()];
    assert.deepEqual(sink.log, [...before, "gap:r-9"], "held again");
    after.push(engine.store());
    assert.deepEqual(sink.log, [...before, "gap:r-9", ...after]);
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
