/**
 * The hub's hold under random interleavings (a fixed seed): appends sent,
 * stored, failed; other instances' events; subscribers joining fresh or
 * resuming from a buffered id mid-hold; gap notices; short waits that let
 * the hold's timers fire; with and without coalescing. Whatever the
 * timing, every subscriber gets exactly the events that followed its start,
 * once, in order, and each gap notice before the same event as it was
 * reported.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHub } from "../src/hub.ts";
import { FakeSink } from "./_fake_sink.ts";
import { waitFor } from "./integration/_helpers.ts";

/** A small deterministic generator (the runs differ only in their timing). */
function generator(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1103515245 + 12345) % 2147483648;
    return state / 2147483648;
  };
}

const isGap = (entry: string): boolean => entry.startsWith("gap:");

/** The id after position `at` in a log, or "end". */
function nextId(log: string[], at: number): string {
  return log.slice(at + 1).find((entry) => !isGap(entry)) ?? "end";
}

interface Joined {
  sink: FakeSink;
  /** Where in the reference log it starts. */
  start: number;
  name: string;
  live: boolean;
}

async function run(random: () => number, coalesceMs: number): Promise<void> {
  const hub = createHub({ bufferSize: 50, coalesceMs });
  const topic = hub.addTopic("events", "unused");
  /** Every event ingested and gap reported, in order. */
  const reference: string[] = [];
  const joined: Joined[] = [];
  let seq = 0;
  let inFlight = 0;
  const ingest = (data: string): void => {
    topic.ingest({ epoch: "r", seq }, data);
    reference.push(`r-${seq++}`);
  };
  for (let step = 0; step < 300; step++) {
    const r = random();
    if (r < 0.25) {
      const n = 1 + Math.floor(random() * 10);
      for (let i = 0; i < n; i++) topic.appendSent();
      inFlight += n;
    } else if (r < 0.5 && inFlight > 0) {
      // Answered: stored (ingested first), or failed.
      inFlight--;
      if (random() < 0.9) ingest("own");
      topic.appendDone();
    } else if (r < 0.65) {
      ingest("other");
    } else if (r < 0.72) {
      const sink = new FakeSink();
      topic.subscribe(sink);
      joined.push({
        sink,
        start: reference.length,
        name: `fresh@${step}`,
        live: true,
      });
    } else if (r < 0.78) {
      const ids = reference.filter((entry) => !isGap(entry));
      const id =
        ids[ids.length - 1 - Math.floor(random() * Math.min(ids.length, 40))];
      if (id === undefined) continue;
      const sink = new FakeSink();
      topic.subscribe(sink, { lastEventId: id });
      joined.push({
        sink,
        start: reference.indexOf(id) + 1,
        name: `resume@${step} after ${id}`,
        live: false,
      });
    } else if (r < 0.8) {
      const last = `r-${seq - 1}`;
      topic.notifyGap({ lastEventId: last, reason: "lost" });
      reference.push(`gap:${last}`);
    } else if (r < 0.83) {
      await new Promise((done) => setTimeout(done, Math.floor(random() * 4)));
    }
  }
  while (inFlight-- > 0) topic.appendDone();
  const count = (log: string[]): number =>
    log.filter((entry) => !isGap(entry)).length;
  // Nothing in flight: what is still held goes out within the caps.
  await waitFor(
    () =>
      joined.every(({ sink, start }) =>
        count(sink.log) >= count(reference.slice(start))
      ),
    10_000,
    "every event at every subscriber",
  );
  for (const { sink, start, name, live } of joined) {
    const want = reference.slice(start);
    const got = sink.log;
    assert.deepEqual(
      got.filter((entry) => !isGap(entry)),
      want.filter((entry) => !isGap(entry)),
      `${name}: the events that followed its start, once, in order`,
    );
    got.forEach((entry, at) => {
      if (!isGap(entry)) return;
      assert.ok(
        want.some((other, j) =>
          other === entry && nextId(want, j) === nextId(got, at)
        ),
        `${name}: ${entry} before ${nextId(got, at)} is out of place`,
      );
    });
    if (live) {
      assert.equal(
        got.filter(isGap).length,
        want.filter(isGap).length,
        `${name}: every gap reported after it joined`,
      );
    }
  }
  assert.ok(joined.length > 0 && seq > 0, "something happened");
}

describe("Topic: the hold under random interleavings", () => {
  test("every subscriber gets what followed its start once, in order, gap notices in place (40 runs, a third with coalescing)", async () => {
    const random = generator(20261130);
    for (let i = 0; i < 40; i++) await run(random, i % 3 === 0 ? 2 : 0);
  });
});
