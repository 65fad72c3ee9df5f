/**
 * The Redis engine's reports of its appends to the hub's hold
 * (`appendSent`/`appendDone`) stay balanced on every path, against a real
 * redis-server: an append refused while Redis is down, the NOSCRIPT retry,
 * and the answer that ends a burst. An unbalanced count would hold every
 * later event of the path (up to the cap) for ever; see
 * tests/engine/redis_hold_test.ts for the main behaviour.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createRedisEngine } from "../../src/engine/redis.ts";
import type { Engine } from "../../src/engine/types.ts";
import type { Topic } from "../../src/hub.ts";
import type { FakeSink } from "../_fake_sink.ts";
import { openPlaced } from "./_placed_topic.ts";
import { waitFor } from "../integration/_helpers.ts";
import { type RedisServer, startRedis } from "../integration/_redis.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
let redis: RedisServer;
let engine: Engine;
let paths = 0;

function open(): Promise<{ topic: Topic; sink: FakeSink }> {
  return openPlaced(engine, `edge${paths++}`);
}

/** Lone appends, each delivered by the time it is answered: nothing counted in flight. */
async function assertNotHeld(topic: Topic, sink: FakeSink): Promise<void> {
  for (let i = 0; i < 3; i++) {
    const id = await engine.append(topic, `lone${i}`);
    assert.equal(sink.ids.at(-1), id, "delivered before the answer");
  }
}

describe("createRedisEngine(): the hold's counts stay balanced", {
  timeout: 60_000,
}, () => {
  before(async () => {
    redis = await startRedis();
    engine = createRedisEngine({ url: new URL(redis.url), log: quiet });
  });
  after(async () => {
    await engine.close();
    await redis.stop();
  });

  test("16 appends in flight: the answer that ends the hold has every event delivered, once, in order", async () => {
    const { topic, sink } = await open();
    const before = sink.ids.length;
    const seen: number[] = [];
    const done = topic.appendDone.bind(topic);
    topic.appendDone = () => {
      done();
      seen.push(sink.ids.length - before);
    };
    const ids = await Promise.all(
      Array.from({ length: 16 }, (_, i) => engine.append(topic, `b${i}`)),
    );
    assert.equal(seen.at(-1), 16, "all out by the last answer");
    assert.deepEqual(sink.ids.slice(before), ids);
    await assertNotHeld(topic, sink);
  });

  test("NOSCRIPT (Redis's script cache flushed): the append sent again whole is counted once", async () => {
    const { topic, sink } = await open();
    await redis.cli("SCRIPT", "FLUSH");
    await assertNotHeld(topic, sink);
  });

  test("appends refused while Redis is down (503, never sent) count nothing: once it is back, a lone append is delivered by its answer", async () => {
    const { topic, sink } = await open();
    await redis.kill();
    await waitFor(() => !engine.status!.connected, 10_000, "the engine down");
    // Until three are refused before being sent (one sent as the link
    // failed is refused too, and counted as answered).
    let refused = 0;
    for (let tries = 0; refused < 3; tries++) {
      assert.ok(tries < 500, "appends refused as not connected");
      const error = await Promise.resolve(engine.append(topic, "down")).then(
        (id) => assert.fail(`stored as ${id} with Redis down`),
        (error: Error) => error,
      );
      assert.match(error.message, /is not connected|did not confirm/);
      if (/is not connected/.test(error.message)) refused++;
      else await new Promise((r) => setTimeout(r, 20));
    }
    await redis.restart();
    await waitFor(() => engine.status!.connected, 10_000, "the engine back");
    // Redis lost the log (no persistence): the first event starts a new
    // epoch and comes over the live channel.
    const first = await engine.append(topic, "back");
    await waitFor(() => sink.ids.includes(first), 10_000, "the first event");
    await assertNotHeld(topic, sink);
  });
});
