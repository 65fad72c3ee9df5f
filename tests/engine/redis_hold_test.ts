/**
 * The Redis engine tells the hub of its appends in flight (the hub holds
 * the events answered meanwhile, see tests/hub_hold_test.ts), against a
 * real redis-server: held events go out in order, a lone append is not
 * held, a refused append releases the hold.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { pathKeys } from "../../src/engine/_redis_wire.ts";
import { createRedisEngine } from "../../src/engine/redis.ts";
import type { Engine } from "../../src/engine/types.ts";
import type { Topic } from "../../src/hub.ts";
import type { FakeSink } from "../_fake_sink.ts";
import { openPlaced } from "./_placed_topic.ts";
import { waitFor } from "../integration/_helpers.ts";
import { type RedisServer, startRedis } from "../integration/_redis.ts";

let redis: RedisServer;
let engine: Engine;
let paths = 0;

function open(): Promise<{ topic: Topic; sink: FakeSink }> {
  return openPlaced(engine, `hold${paths++}`);
}

describe("createRedisEngine() and the hub's hold", { timeout: 60_000 }, () => {
  before(async () => {
    redis = await startRedis();
    engine = createRedisEngine({ url: new URL(redis.url) });
  });
  after(async () => {
    await engine.close();
    await redis.stop();
  });

  test("a lone append's event is delivered by the time its id is answered (not held)", async () => {
    const { topic, sink } = await open();
    for (let i = 0; i < 5; i++) {
      const id = await engine.append(topic, `lone${i}`);
      assert.equal(sink.ids.at(-1), id, "delivered before the answer");
    }
  });

  test("16 appends in flight: the events answered first are held, then all go out once each, in id order", async () => {
    const { topic, sink } = await open();
    const before = sink.ids.length;
    // What the subscriber has after each answer was handled.
    const seen: number[] = [];
    const done = topic.appendDone.bind(topic);
    topic.appendDone = () => {
      done();
      seen.push(sink.ids.length - before);
    };
    const ids = await Promise.all(
      Array.from({ length: 16 }, (_, i) => engine.append(topic, `burst${i}`)),
    );
    assert.equal(seen.length, 16);
    assert.equal(seen[0], 0, "the first answered was held");
    await waitFor(() => sink.ids.length === before + 16, 10_000, "16 events");
    assert.deepEqual(sink.ids.slice(before), ids, "once each, in id order");
    assert.deepEqual(sink.notices, []);
  });

  test("a refused append (503) releases the hold: the next lone append is delivered by the time it is answered", async () => {
    const { topic, sink } = await open();
    const keys = pathKeys("wsevent:", topic.path);
    await redis.cli("DEL", keys.log);
    await redis.cli("SET", keys.log, "not a stream");
    await assert.rejects(
      Promise.resolve(engine.append(topic, "refused")),
      /WRONGTYPE/,
    );
    await redis.cli("DEL", keys.log);
    const id = await engine.append(topic, "next");
    assert.equal(sink.ids.at(-1), id, "not held by the refused one");
  });
});
