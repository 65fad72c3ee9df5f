/**
 * The Redis engine's reader of one path against a scripted store (no
 * Redis): an instance's own append delivered as soon as Redis answers it,
 * only when it is exactly the log's next event, and its copy on the live
 * channel dropped as a repeat.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import type { RedisLink } from "../../src/engine/_redis_client.ts";
import {
  type Head,
  Reader,
  type Store,
} from "../../src/engine/_redis_reader.ts";
import { pathKeys, type WireEvent } from "../../src/engine/_redis_wire.ts";
import { createHub } from "../../src/hub.ts";
import { FakeSink } from "../_fake_sink.ts";
import { waitFor } from "../integration/_helpers.ts";

const ENCODER = new TextEncoder();

/** A live message as the append script publishes it. */
function live(epoch: string, seq: number, nonce: string, data: string) {
  return ENCODER.encode(`${epoch}:${seq}:${Date.now()}:${nonce}:t${data}`);
}

/** A store whose log is `head` and `entries`; counts what the reader asks. */
function scripted(head: Head, entries: WireEvent[] = []) {
  const calls = { head: 0, read: 0, bump: 0 };
  let block: Promise<void> | undefined;
  const link = { ready: true } as unknown as RedisLink;
  const store: Store = {
    link,
    stats: { lag: 0 },
    async head() {
      calls.head++;
      // A reader that loops stops here rather than hang the test.
      if (calls.head > 100) await new Promise(() => {});
      // Where the log stood when Redis got the question.
      const answer = head;
      await block;
      return answer;
    },
    read() {
      calls.read++;
      return Promise.resolve(entries);
    },
    bump() {
      // A new epoch, the sequence going on.
      calls.bump++;
      head = { epoch: `${head.epoch}b`, next: head.next };
      return Promise.resolve();
    },
  };
  return {
    store,
    calls,
    link: link as { ready: boolean },
    /** The log's head from now on. */
    setHead(next: Head): void {
      head = next;
    },
    /** Holds the next heads until `release` is called. */
    hold(): () => void {
      let release!: () => void;
      block = new Promise((resolve) => (release = resolve));
      return () => {
        block = undefined;
        release();
      };
    },
  };
}

/** A synced reader of path "p", one subscriber on its topic. */
async function reader(head: Head) {
  const fake = scripted(head);
  const topic = createHub({ bufferSize: 100 }).addTopic("p", "unused");
  const sink = new FakeSink();
  topic.subscribe(sink);
  const r = new Reader(topic, pathKeys("wsevent:", "p"), fake.store);
  r.sync();
  await waitFor(() => r.synced && fake.calls.read > 0, 5_000, "the sync");
  // The sync's end runs in the same microtask as the read's answer.
  await new Promise((resolve) => setTimeout(resolve, 0));
  return { r, sink, ...fake };
}

describe("Redis engine reader", () => {
  test("Reader.onStored() delivers an own append that is exactly the next event at once; its copy on the channel is dropped", async () => {
    const { r, sink, calls } = await reader({ epoch: "ep", next: 3 });
    r.onStored({ epoch: "ep", seq: 3 }, "three", "n3");
    assert.deepEqual(sink.ids, ["ep-3"], "delivered before any live message");
    assert.equal(sink.events[0].data, "three");
    r.onLive(live("ep", 3, "n3", "three"));
    r.onLive(live("ep", 4, "n4", "four"));
    r.onStored({ epoch: "ep", seq: 4 }, "four", "n4");
    assert.deepEqual(sink.ids, ["ep-3", "ep-4"], "each once");
    assert.deepEqual(sink.events.map((e) => e.data), ["three", "four"]);
    assert.equal(calls.bump, 0);
    assert.equal(sink.notices.length, 0);
  });

  test("Reader.onStored() leaves anything but the next event of the same epoch to the channel, and never starts a sync", async () => {
    const { r, sink, calls, link } = await reader({ epoch: "ep", next: 3 });
    const heads = calls.head;
    // A hole (seq 3 is another instance's, not here yet): not delivered.
    r.onStored({ epoch: "ep", seq: 4 }, "four", "n4");
    // Another epoch, and an id already delivered: not delivered.
    r.onStored({ epoch: "other", seq: 3 }, "x", "nx");
    r.onStored({ epoch: "ep", seq: 2 }, "x", "nx");
    assert.deepEqual(sink.ids, []);
    assert.equal(calls.head, heads, "no sync started");
    // The channel brings them in order; the own copy of 4 was not kept.
    r.onLive(live("ep", 3, "n3", "three"));
    r.onLive(live("ep", 4, "n4", "four"));
    assert.deepEqual(sink.ids, ["ep-3", "ep-4"]);
    // While a connection is down (a sync follows the reconnect): not delivered.
    link.ready = false;
    r.onStored({ epoch: "ep", seq: 5 }, "five", "n5");
    assert.deepEqual(sink.ids, ["ep-3", "ep-4"]);
    link.ready = true;
    assert.equal(calls.head, heads, "no sync started");
  });

  test("Reader.onStored() delivers nothing while a sync is under way; the sync and the channel deliver it once", async () => {
    const { r, sink, calls, hold } = await reader({ epoch: "ep", next: 0 });
    const release = hold();
    r.sync();
    r.onStored({ epoch: "ep", seq: 0 }, "zero", "n0");
    assert.deepEqual(sink.ids, [], "not during the sync");
    r.onLive(live("ep", 0, "n0", "zero"));
    release();
    await waitFor(() => sink.ids.length === 1, 5_000, "the event");
    assert.deepEqual(sink.ids, ["ep-0"]);
    assert.equal(calls.bump, 0);
  });

  test("Reader.onLive() takes a copy on the channel with the id of an own append but another nonce as Redis reusing the id: a new epoch", async () => {
    const { r, sink, calls } = await reader({ epoch: "ep", next: 0 });
    r.onStored({ epoch: "ep", seq: 0 }, "zero", "n0");
    r.onLive(live("ep", 0, "n0", "zero"));
    assert.equal(calls.bump, 0, "the same nonce is a repeat");
    r.onLive(live("ep", 0, "other", "not zero"));
    await waitFor(() => sink.notices.length === 1, 5_000, "the gap notice");
    assert.equal(calls.bump, 1);
    assert.deepEqual(sink.log, ["ep-0", "gap:ep-0"]);
  });

  test("Reader keeps the nonces of the newest 4096 events delivered: a reused id among them starts a new epoch, an older one is forgotten", async () => {
    const { r, sink, calls } = await reader({ epoch: "ep", next: 0 });
    for (let seq = 0; seq < 5000; seq++) {
      r.onStored({ epoch: "ep", seq }, `e${seq}`, `n${seq}`);
    }
    assert.equal(sink.ids.length, 5000);
    // seq 904 is the oldest kept (4999 - 4095), 903 is not.
    r.onLive(live("ep", 903, "other", "x"));
    r.onLive(live("ep", 4999, "n4999", "e4999"));
    assert.equal(calls.bump, 0, "a forgotten seq, and a repeat");
    r.onLive(live("ep", 904, "other", "x"));
    await waitFor(() => calls.bump === 1, 5_000, "the bump");
  });

  test("Reader drops a message of a replaced epoch that arrived during a sync, instead of reading the stream again for ever", async () => {
    const { r, sink, calls, hold } = await reader({ epoch: "ep", next: 3 });
    const release = hold();
    r.sync();
    const heads = calls.head;
    // Published in an epoch Redis had replaced before the sync read the head.
    r.onLive(live("old", 5, "n5", "stale"));
    release();
    await waitFor(() => calls.read >= 2, 5_000, "the sync");
    await new Promise((resolve) => setTimeout(resolve, 50));
    // It came after the head was asked for, so it could have been newer:
    // one more round reads the head again, then it is dropped. Not a loop.
    assert.equal(calls.head, heads + 1, "one more head read, not a loop");
    // The reader goes on live.
    r.onLive(live("ep", 3, "n3", "three"));
    assert.deepEqual(sink.ids, ["ep-3"]);
  });

  test("Reader keeps a message of another epoch that arrived after the head was asked for: the log may have moved on, and the next round delivers it", async () => {
    const { r, sink, hold, setHead } = await reader({ epoch: "ep", next: 3 });
    const release = hold();
    r.sync();
    // Redis started a new epoch after answering the head (lost its data).
    r.onLive(live("new", 0, "n0", "first"));
    setHead({ epoch: "new", next: 1 });
    release();
    await waitFor(() => sink.ids.length === 1, 5_000, "the event");
    assert.deepEqual(sink.log, ["gap:ep-2", "new-0"]);
  });
});
