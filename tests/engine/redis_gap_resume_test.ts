/**
 * Redis restarted without its data, against a real redis-server: the
 * instance tells its live subscribers at once (a gap notice), and a
 * subscriber that resumes on it from before the loss, before anything new
 * is published, is told too (it used to get the next event, of the new
 * epoch, with no notice: a silent loss).
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createRedisEngine } from "../../src/engine/redis.ts";
import type { Engine } from "../../src/engine/types.ts";
import { createHub } from "../../src/hub.ts";
import { FakeSink } from "../_fake_sink.ts";
import { waitFor } from "../integration/_helpers.ts";
import { type RedisServer, startRedis } from "../integration/_redis.ts";

const quiet = { debug() {}, info() {}, warn() {}, error() {} };
let redis: RedisServer;
let engine: Engine;

describe("createRedisEngine(): a resume after Redis lost its data", {
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

  test("a subscriber resuming from before the loss, before the next publish, gets the gap notice, then the new epoch's events", async () => {
    const topic = createHub().addTopic("lost", "unused");
    engine.open(topic);
    const live = new FakeSink();
    topic.subscribe(live);
    await waitFor(() => engine.status!.connected, 10_000, "the engine");
    await engine.opened?.(topic);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await engine.append(topic, `e${i}`));
    await waitFor(() => live.ids.length === 3, 10_000, "3 events");
    await redis.kill();
    await redis.restart({ fresh: true });
    // The reconnect's sync finds the log gone.
    await waitFor(() => live.notices.length === 1, 10_000, "the gap notice");
    assert.deepEqual(live.log, [...ids, `gap:${ids[2]}`]);
    const resumed = new FakeSink();
    topic.subscribe(resumed, { lastEventId: ids[0] });
    const fresh = await engine.append(topic, "fresh");
    assert.notEqual(fresh.split("-")[0], ids[0].split("-")[0], "a new epoch");
    await waitFor(() => resumed.ids.includes(fresh), 10_000, "the new event");
    assert.deepEqual(resumed.log, [ids[1], ids[2], `gap:${ids[2]}`, fresh]);
    assert.deepEqual(live.log, [...ids, `gap:${ids[2]}`, fresh]);
  });
});
