/**
 * The hub's hold for an engine's appends at its edges: its timer caps
 * (bounded by the order of timers, not by a measured time), a resume read
 * from the engine's history while events are held, close and topic removal
 * with events held, and the held-bytes limit. The main behaviour is in
 * tests/hub_hold_test.ts.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { EventIdParts } from "../src/event.ts";
import type { HistoryRange } from "../src/engine/types.ts";
import { createHub, HOLD_EXTEND_MIN, HOLD_RETURN_MS } from "../src/hub.ts";
import { FakeSink } from "./_fake_sink.ts";
import { FakeEngine, setUp } from "./_hold_fake.ts";
import { watchTimers } from "./_timers.ts";

/**
 * Resolves after `ms`, with what `read()` gave when it fired. A hold's timer
 * set before it with a shorter delay fires before it however late the
 * event loop runs (timers fire in the order they are due), so this bounds a
 * cap without measuring time.
 */
function readAfter<T>(ms: number, read: () => T): Promise<T> {
  return new Promise((resolve) => setTimeout(() => resolve(read()), ms));
}

/** Far above every cap (5 ms, 2 ms), far below "seconds". */
const BOUND_MS = 250;

describe("Topic: the hold's edges", () => {
  test(`an append never answered: the events held go out before a ${BOUND_MS} ms timer set as the hold began fires`, async () => {
    const { sink, engine } = setUp();
    engine.send(2);
    const id = engine.store();
    const seen = readAfter(BOUND_MS, () => [...sink.log]);
    assert.deepEqual(sink.log, [], "held");
    assert.deepEqual(await seen, [id], "released by the cap, in time");
  });

  test(`an extended hold: its wait for the next generation, and that generation never answered, both end before a ${BOUND_MS} ms timer`, async () => {
    const { sink, engine } = setUp();
    // Closed-loop rounds (the publishers back at once) until one ends
    // extended: held. The publishers' return is timed, so a round the
    // process was descheduled in may not be: up to 10 tries.
    const extended = (): void => {
      for (let tries = 0; tries < 10; tries++) {
        engine.send(HOLD_EXTEND_MIN);
        for (let i = 0; i < HOLD_EXTEND_MIN; i++) engine.store();
        if (sink.log.length < engine.seq) return;
      }
      assert.fail("no round was extended");
    };
    extended();
    // Nothing sent: the short wait for the next generation ends it.
    const idle = await readAfter(BOUND_MS, () => sink.log.length);
    assert.equal(idle, engine.seq, "released in time");
    // Again, but the next generation begins and is never answered.
    extended();
    engine.send(1);
    const stalled = await readAfter(BOUND_MS, () => sink.log.length);
    assert.equal(stalled, engine.seq, "released by the cap in time");
    assert.equal(new Set(sink.log).size, sink.log.length, "once each");
  });

  test(`publishers that came back later than ${HOLD_RETURN_MS} ms: their next busy round goes out with its last answer (not extended)`, async () => {
    const { sink, engine } = setUp();
    for (let round = 1; round <= 3; round++) {
      engine.send(HOLD_EXTEND_MIN);
      for (let i = 0; i < HOLD_EXTEND_MIN; i++) engine.store();
      assert.equal(sink.log.length, engine.seq, `round ${round}: not held`);
      // Far later than the return that extends a hold.
      await new Promise((r) => setTimeout(r, 10 * HOLD_RETURN_MS));
    }
  });

  test("a resume older than the buffer, read from the engine's history while events are held: each event once, in order", async () => {
    const hub = createHub({ bufferSize: 4 });
    const topic = hub.addTopic("events", "unused");
    const engine = new FakeEngine(topic);
    const log: { id: EventIdParts; data: string }[] = [];
    const store = (): string => {
      const data = `e${engine.seq}`;
      log.push({ id: { epoch: "r", seq: engine.seq }, data });
      return engine.store(data);
    };
    let answer = (): void => {};
    topic.useHistory({
      range: (after) =>
        new Promise<HistoryRange>((resolve) => {
          // What Redis holds as it is read: the entries after the id.
          const entries = log.filter((entry) =>
            after === undefined || entry.id.seq > after.seq
          );
          answer = () => resolve({ epoch: "r", entries });
        }),
    });
    const live = new FakeSink();
    topic.subscribe(live);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      engine.send(1);
      ids.push(store());
    }
    assert.deepEqual(live.log, ids, "not held");
    const resumed = new FakeSink();
    // r-0 is no longer buffered: the history is read (it answers r-1..r-5).
    topic.subscribe(resumed, { lastEventId: ids[0] });
    // Meanwhile an event is held for an append in flight.
    engine.send(2);
    ids.push(store());
    assert.deepEqual(live.log, ids.slice(0, 6), "r-6 held");
    answer();
    await new Promise((r) => setTimeout(r, 0));
    ids.push(store());
    assert.deepEqual(live.log, ids, "live: once each");
    assert.deepEqual(resumed.log, ids.slice(1), "resumed: once each, no hole");
  });

  test("Hub.close() during a hold: the held events go out before 1001 and no timer is left, nor once the appends in flight are answered", () => {
    const { hub, sink, engine } = setUp();
    const timers = watchTimers();
    try {
      engine.send(3);
      const ids = [engine.store()];
      assert.ok(timers.pending() > 0, "the hold's timer");
      hub.close(1001, "going away");
      assert.deepEqual(sink.log, [...ids, "close:1001"]);
      assert.equal(timers.pending(), 0, "the hold's timer was cleared");
      engine.store();
      engine.store();
      assert.equal(timers.pending(), 0, "none once answered");
    } finally {
      timers.restore();
    }
  });

  test("Hub.removeTopic() during a hold (an on-demand topic dropped): the held events go out before 1001 and no timer is left", () => {
    const { hub, topic, sink, engine } = setUp();
    const timers = watchTimers();
    try {
      engine.send(2);
      const id = engine.store();
      assert.deepEqual(sink.log, []);
      assert.ok(hub.removeTopic(topic.path));
      assert.deepEqual(sink.log, [id, "close:1001"]);
      assert.equal(timers.pending(), 0, "the hold's timer was cleared");
      engine.topic.appendDone();
      assert.equal(timers.pending(), 0);
    } finally {
      timers.restore();
    }
  });

  test("held events go out at once, in order, when their bytes reach the coalescing limit (a socket is never handed more at once)", () => {
    const hub = createHub({ maxQueueBytes: 64 * 1024 });
    const topic = hub.addTopic("events", "unused");
    const sink = new FakeSink();
    topic.subscribe(sink);
    const engine = new FakeEngine(topic);
    engine.send(4);
    const small = engine.store("small");
    assert.deepEqual(sink.log, [], "held");
    // 64 KiB / 8: 8 KiB held goes out.
    const big = engine.store("x".repeat(8 * 1024));
    assert.deepEqual(sink.log, [small, big], "out at the limit, in order");
    const next = engine.store();
    assert.deepEqual(sink.log, [small, big], "a new hold");
    const last = engine.store();
    assert.deepEqual(sink.log, [small, big, next, last]);
  });
});
