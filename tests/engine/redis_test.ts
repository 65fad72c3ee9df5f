/**
 * The Redis engine against a real redis-server, without HTTP: ids, order,
 * binary payloads, holes in the live feed, lost data, trimmed history.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createClient } from "redis";
import {
  APPEND_SCRIPT,
  META_TTL_EXTRA_SECONDS,
  pathKeys,
} from "../../src/engine/_redis_wire.ts";
import { createRedisEngine } from "../../src/engine/redis.ts";
import { parseEventId } from "../../src/event.ts";
import { type Engine, EngineUnavailableError } from "../../src/engine/types.ts";
import { createHub, type Topic } from "../../src/hub.ts";
import { FakeSink } from "../_fake_sink.ts";
import { waitFor } from "../integration/_helpers.ts";
import { type RedisServer, startRedis } from "../integration/_redis.ts";

interface Node {
  engine: Engine;
  topic: Topic;
  sink: FakeSink;
}

let redis: RedisServer;
const quiet = { debug() {}, info() {}, warn() {}, error() {} };
const engines: Engine[] = [];
let paths = 0;

/** An engine on its own hub, one topic open, one live subscriber. */
async function node(
  path: string,
  options: {
    bufferSize?: number;
    maxLength?: number;
    historyTtlSeconds?: number;
    commandTimeoutMs?: number;
  } = {},
): Promise<Node> {
  const engine = createRedisEngine({
    url: new URL(redis.url),
    maxLength: options.maxLength,
    historyTtlSeconds: options.historyTtlSeconds,
    commandTimeoutMs: options.commandTimeoutMs,
  });
  engines.push(engine);
  const hub = createHub({ bufferSize: options.bufferSize ?? 100 });
  const topic = hub.addTopic(path, "unused");
  engine.open(topic);
  const sink = new FakeSink();
  topic.subscribe(sink);
  await waitFor(() => engine.status!.connected, 10_000, "the engine");
  return { engine, topic, sink };
}

async function append(n: Node, data: string | Uint8Array): Promise<string> {
  return await n.engine.append(n.topic, data);
}

/** Appends with the engine's script but publishes on another channel: a live message lost. */
async function appendUnseen(path: string, data: string): Promise<void> {
  const keys = pathKeys("wsevent:", path);
  await redis.cli(
    "EVAL",
    APPEND_SCRIPT,
    "2",
    keys.meta,
    keys.log,
    data,
    "t",
    "zzunused",
    "1000",
    "0",
    "nobody-listens",
    String(Date.now()),
  );
}

/** Waits until the meta hash holds another epoch than `id`'s. */
async function newEpoch(meta: string, id: string): Promise<void> {
  const deadline = Date.now() + 10_000;
  while ((await redis.cli("HGET", meta, "epoch")) === id.split("-")[0]) {
    if (Date.now() > deadline) throw new Error(`${meta}: no new epoch`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

function seqs(ids: string[]): number[] {
  return ids.map((id) => Number(id.slice(id.lastIndexOf("-") + 1)));
}

describe("createRedisEngine()", { timeout: 60_000 }, () => {
  before(async () => {
    redis = await startRedis();
  });
  after(async () => {
    for (const engine of engines) await engine.close();
    await redis.stop();
  });

  test("createRedisEngine() gives ids from Redis: two instances deliver every event once, in order, with the same ids; text and bytes survive", async () => {
    const path = `p${paths++}`;
    const a = await node(path);
    const b = await node(path);
    const ids: string[] = [];
    for (let i = 0; i < 10; i++) {
      const from = i % 2 === 0 ? a : b;
      ids.push(
        await append(
          from,
          i === 4 ? new Uint8Array([0, 255, 10, 13]) : `e${i}`,
        ),
      );
    }
    assert.deepEqual(seqs(ids), [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
    assert.equal(new Set(ids.map((id) => id.split("-")[0])).size, 1);
    for (const n of [a, b]) {
      await waitFor(() => n.sink.ids.length >= 10, 10_000, "10 events");
      assert.deepEqual(n.sink.ids, ids);
      assert.deepEqual(n.sink.log, ids, "no gap notice");
      assert.equal(n.sink.events[0].data, "e0");
      assert.deepEqual(
        [...(n.sink.events[4].data as Uint8Array)],
        [0, 255, 10, 13],
      );
      assert.equal(n.sink.events[4].binary, true);
    }
  });

  test("createRedisEngine() with appends in flight from two instances at once (own events delivered at the answer, others from the channel): every subscriber gets all, once, in id order, text and bytes", async () => {
    const path = `p${paths++}`;
    const a = await node(path);
    const b = await node(path);
    const sent: Promise<string>[] = [];
    for (let i = 0; i < 100; i++) {
      sent.push(
        append(a, `a${i}`),
        append(b, i % 10 === 0 ? new Uint8Array([i, 0]) : `b${i}`),
      );
    }
    const ids = await Promise.all(sent);
    const ordered = [...ids].sort((x, y) => seqs([x])[0] - seqs([y])[0]);
    assert.deepEqual(seqs(ordered), [...Array(200).keys()]);
    for (const n of [a, b]) {
      await waitFor(() => n.sink.ids.length >= 200, 10_000, "200 events");
      assert.deepEqual(n.sink.log, ordered, "once each, in order, no gap");
    }
    // Bytes as a list: an own event keeps the appended array, one from the
    // channel is a copy.
    const plain = (d: string | Uint8Array) =>
      typeof d === "string" ? d : [...d];
    const data = new Map(a.sink.events.map((e) => [e.id, plain(e.data)]));
    assert.deepEqual(
      b.sink.events.map((e) => plain(e.data)),
      b.sink.ids.map((id) => data.get(id)),
    );
    assert.deepEqual(data.get(ids[1]), [0, 0]);
    assert.equal(data.get(ids[0]), "a0");
  });

  test("createRedisEngine() ignores foreign messages on its channel, notices a lost live message at the next one and reads it from the stream", async () => {
    const path = `p${paths++}`;
    const a = await node(path);
    const first = await append(a, "one");
    // Not ours: ignored.
    await redis.cli("PUBLISH", pathKeys("wsevent:", path).live, "garbage");
    await appendUnseen(path, "two");
    await append(a, "three");
    await waitFor(() => a.sink.ids.length >= 3, 10_000, "3 events");
    assert.deepEqual(seqs(a.sink.ids), [0, 1, 2]);
    assert.deepEqual(a.sink.events.map((e) => e.data), ["one", "two", "three"]);
    assert.equal(a.sink.notices.length, 0);
    assert.equal(a.sink.ids[0], first);
  });

  test("createRedisEngine() reads what it missed while its Pub/Sub connection was down, with no later event to reveal it", async () => {
    const path = `p${paths++}`;
    const a = await node(path);
    await append(a, "before");
    await waitFor(() => a.sink.ids.length === 1, 10_000, "1 event");
    await appendUnseen(path, "while away");
    const reconnects = a.engine.status!.reconnects;
    await redis.cli("CLIENT", "KILL", "TYPE", "pubsub");
    await waitFor(() => a.sink.ids.length >= 2, 10_000, "the missed event");
    assert.deepEqual(a.sink.events.map((e) => e.data), [
      "before",
      "while away",
    ]);
    assert.ok(a.engine.status!.reconnects > reconnects, "reconnect counted");
  });

  test("createRedisEngine() tells live subscribers with a gap notice when events it had not read yet were trimmed from the stream, then goes on", async () => {
    const path = `p${paths++}`;
    const a = await node(path);
    const first = await append(a, "first");
    await waitFor(() => a.sink.ids.length === 1, 10_000, "1 event");
    for (const data of ["x1", "x2", "x3"]) await appendUnseen(path, data);
    await redis.cli("XTRIM", pathKeys("wsevent:", path).log, "MAXLEN", "1");
    const last = await append(a, "last");
    await waitFor(() => a.sink.ids.includes(last), 10_000, "the last event");
    assert.deepEqual(a.sink.events.map((e) => e.data), ["first", "x3", "last"]);
    assert.deepEqual(seqs(a.sink.ids), [0, 3, 4]);
    assert.equal(a.sink.log[1], `gap:${first}`, "the gap notice before x3");
  });

  test("createRedisEngine() tells live subscribers with a gap notice when an event it had not read yet was deleted from the middle of the stream (XDEL by hand)", async () => {
    const path = `p${paths++}`;
    const a = await node(path);
    await append(a, "first");
    await waitFor(() => a.sink.ids.length === 1, 10_000, "1 event");
    for (const data of ["x1", "x2", "x3"]) await appendUnseen(path, data);
    await redis.cli("XDEL", pathKeys("wsevent:", path).log, "0-3");
    const last = await append(a, "last");
    await waitFor(() => a.sink.ids.includes(last), 10_000, "the last event");
    assert.deepEqual(a.sink.events.map((e) => e.data), [
      "first",
      "x1",
      "x3",
      "last",
    ]);
    const [first, x1, x3] = a.sink.ids;
    assert.deepEqual(a.sink.log.slice(1), [x1, `gap:${x1}`, x3, last]);
    // A resume across the hole, from the stream (another instance's cache
    // is empty): the same.
    const b = await node(path);
    const resumed = new FakeSink();
    b.topic.subscribe(resumed, { lastEventId: first });
    await waitFor(() => resumed.ids.includes(last), 10_000, "the resume");
    assert.deepEqual(resumed.log, [x1, `gap:${x1}`, x3, last]);
  });

  test("createRedisEngine() reading a new epoch from its start after Redis lost the log, tells live subscribers of an event deleted from its middle too", async () => {
    const path = `p${paths++}`;
    const keys = pathKeys("wsevent:", path);
    const a = await node(path);
    const first = await append(a, "first");
    await waitFor(() => a.sink.ids.length === 1, 10_000, "1 event");
    await redis.cli("DEL", keys.meta, keys.log);
    for (const data of ["y0", "y1", "y2"]) await appendUnseen(path, data);
    await redis.cli("XDEL", keys.log, "0-2");
    const last = await append(a, "last");
    await waitFor(() => a.sink.ids.includes(last), 10_000, "the last event");
    assert.deepEqual(a.sink.events.map((e) => e.data), [
      "first",
      "y0",
      "y2",
      "last",
    ]);
    const [, y0, y2] = a.sink.ids;
    assert.deepEqual(a.sink.log, [
      first,
      `gap:${first}`,
      y0,
      `gap:${y0}`,
      y2,
      last,
    ]);
  });

  test("createRedisEngine() stores every append across a SCRIPT FLUSH (NOSCRIPT: the script is sent whole), appends in flight included, each once", async () => {
    const path = `p${paths++}`;
    const a = await node(path);
    const b = await node(path);
    await append(a, "loads the script");
    const sent: Promise<string>[] = [];
    for (let i = 0; i < 40; i++) {
      if (i === 20) sent.push(redis.cli("SCRIPT", "FLUSH"));
      sent.push(append(i % 2 ? a : b, `e${i}`));
    }
    const ids = (await Promise.all(sent)).filter((r) => r !== "OK");
    assert.equal(ids.length, 40);
    ids.sort((x, y) => seqs([x])[0] - seqs([y])[0]);
    assert.deepEqual(seqs(ids), [...Array(40).keys()].map((i) => i + 1));
    await redis.cli("SCRIPT", "FLUSH");
    ids.push(await append(a, "after"));
    for (const n of [a, b]) {
      await waitFor(() => n.sink.ids.length >= 42, 10_000, "42 events");
      assert.deepEqual(n.sink.log.slice(1), ids, "once each, in order");
    }
  });

  test("createRedisEngine() tells live subscribers when Redis lost the log, then goes on in the new epoch", async () => {
    const path = `p${paths++}`;
    const a = await node(path);
    const old = await append(a, "old");
    await waitFor(() => a.sink.ids.length === 1, 10_000, "1 event");
    const keys = pathKeys("wsevent:", path);
    await redis.cli("DEL", keys.meta, keys.log);
    const fresh = await append(a, "new");
    assert.notEqual(fresh.split("-")[0], old.split("-")[0], "a new epoch");
    assert.equal(seqs([fresh])[0], 0);
    await waitFor(() => a.sink.ids.length >= 2, 10_000, "the new event");
    assert.deepEqual(a.sink.log, [old, `gap:${old}`, fresh]);
  });

  test("createRedisEngine() notices when Redis lost its latest writes but kept the epoch: a new epoch, a gap notice live and on resume, no id handed out twice", async () => {
    const path = `p${paths++}`;
    const a = await node(path);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await append(a, `e${i}`));
    await waitFor(() => a.sink.ids.length === 5, 10_000, "5 events");
    // Redis comes back without its last two writes (AOF everysec, a lagged
    // replica, an older backup): the counter and the stream go back to 3.
    const keys = pathKeys("wsevent:", path);
    await redis.cli("XDEL", keys.log, "0-4", "0-5");
    await redis.cli("XSETID", keys.log, "0-3");
    await redis.cli("HSET", keys.meta, "seq", "3");
    // The next event is numbered 3 again: this instance saw another 3.
    const reused = await append(a, "new 3");
    assert.equal(reused, ids[3], "Redis hands out the id again");
    await newEpoch(keys.meta, ids[0]);
    const after = await append(a, "after");
    await waitFor(() => a.sink.ids.includes(after), 10_000, "the next event");
    assert.notEqual(after.split("-")[0], ids[0].split("-")[0], "a new epoch");
    assert.deepEqual(a.sink.log, [...ids, `gap:${ids[4]}`, after]);
    assert.equal(after.split("-")[1], "4", "the sequence goes on");

    // Noticed on a reconnect, before anything new is published.
    const d = await node(`p${paths++}`);
    const dKeys = pathKeys("wsevent:", d.topic.path);
    const dIds: string[] = [];
    for (let i = 0; i < 3; i++) dIds.push(await append(d, `d${i}`));
    await waitFor(() => d.sink.ids.length === 3, 10_000, "3 events");
    await redis.cli("XDEL", dKeys.log, "0-3");
    await redis.cli("XSETID", dKeys.log, "0-2");
    await redis.cli("HSET", dKeys.meta, "seq", "2");
    await redis.cli("CLIENT", "KILL", "TYPE", "pubsub");
    await newEpoch(dKeys.meta, dIds[0]);
    await waitFor(() => d.sink.log.length === 4, 10_000, "the gap notice");
    assert.deepEqual(d.sink.log, [...dIds, `gap:${dIds[2]}`]);

    // A resume from an id the log has not reached, on an instance that
    // never delivered it: a gap notice for that subscriber, then the log.
    const b = await node(`p${paths++}`);
    const bKeys = pathKeys("wsevent:", b.topic.path);
    const bIds: string[] = [];
    for (let i = 0; i < 4; i++) bIds.push(await append(b, `b${i}`));
    await redis.cli("XDEL", bKeys.log, "0-4");
    await redis.cli("XSETID", bKeys.log, "0-3");
    await redis.cli("HSET", bKeys.meta, "seq", "3");
    const fresh = createHub({ bufferSize: 10 }).addTopic(b.topic.path, "x");
    const c = createRedisEngine({ url: new URL(redis.url) });
    engines.push(c);
    c.open(fresh);
    await waitFor(() => c.status!.connected, 10_000, "the engine");
    const resumed = new FakeSink();
    fresh.subscribe(resumed, { lastEventId: bIds[3] });
    await waitFor(() => resumed.log.length >= 4, 10_000, "the resume");
    assert.deepEqual(resumed.log, [`gap:${bIds[3]}`, ...bIds.slice(0, 3)]);
  });

  test("createRedisEngine() answers a resume from before the point where Redis lost its latest writes (epoch kept, ids reused) with a gap notice, not with the new events under the reused ids", async () => {
    const path = `p${paths++}`;
    const a = await node(path);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await append(a, `e${i}`));
    await waitFor(() => a.sink.ids.length === 5, 10_000, "5 events");
    const keys = pathKeys("wsevent:", path);
    await redis.cli("XDEL", keys.log, "0-4", "0-5");
    await redis.cli("XSETID", keys.log, "0-3");
    await redis.cli("HSET", keys.meta, "seq", "3");
    assert.equal(await append(a, "new 3"), ids[3], "Redis reuses the id");
    await newEpoch(keys.meta, ids[0]);
    const after = await append(a, "after");
    // A subscriber that saw e0..e2 (e3 and e4, acknowledged, are lost).
    const b = await node(path);
    const resumed = new FakeSink();
    b.topic.subscribe(resumed, { lastEventId: ids[2] });
    await waitFor(() => resumed.ids.includes(after), 10_000, "the resume");
    assert.deepEqual(resumed.log, [`gap:${ids[2]}`, after]);
  });

  test("createRedisEngine() answers a resume from an id the log never reached (forged, or another cluster's) with a gap notice and the log for that subscriber alone: the epoch stays, live subscribers get no gap notice", async () => {
    const path = `p${paths++}`;
    const a = await node(path);
    const b = await node(path);
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await append(a, `e${i}`));
    await waitFor(() => b.sink.ids.length === 3, 10_000, "3 events");
    const epoch = ids[0].split("-")[0];
    const forged = new FakeSink();
    b.topic.subscribe(forged, { lastEventId: `${epoch}-999999` });
    await waitFor(() => forged.log.length >= 4, 10_000, "the resume");
    assert.deepEqual(forged.log, [`gap:${epoch}-999999`, ...ids]);
    const next = await append(a, "next");
    assert.equal(next, `${epoch}-3`, "the epoch stays");
    await waitFor(() => a.sink.ids.includes(next), 10_000, "the event on a");
    await waitFor(() => b.sink.ids.includes(next), 10_000, "the event on b");
    await waitFor(() => forged.ids.includes(next), 10_000, "the event");
    assert.deepEqual(a.sink.log, [...ids, next]);
    assert.deepEqual(b.sink.log, [...ids, next]);
    const honest = new FakeSink();
    b.topic.subscribe(honest, { lastEventId: ids[2] });
    await waitFor(() => honest.log.length >= 1, 10_000, "the honest resume");
    assert.deepEqual(honest.log, [next]);
  });

  test("createRedisEngine() goes on in a new epoch after the stream when the counter is behind it (meta restored alone), with a gap notice", async () => {
    const path = `p${paths++}`;
    const a = await node(path);
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await append(a, `e${i}`));
    await waitFor(() => a.sink.ids.length === 5, 10_000, "5 events");
    await redis.cli("HSET", pathKeys("wsevent:", path).meta, "seq", "1");
    const next = await append(a, "next");
    assert.notEqual(next.split("-")[0], ids[0].split("-")[0], "a new epoch");
    assert.equal(next.split("-")[1], "5", "after the stream's last id");
    await waitFor(() => a.sink.ids.includes(next), 10_000, "the event");
    assert.deepEqual(a.sink.log, [...ids, `gap:${ids[4]}`, next]);
    assert.equal(await append(a, "then"), `${next.split("-")[0]}-6`);
  });

  test("createRedisEngine() starts a new epoch when the meta hash was edited by hand (an epoch or a counter that is not an id's): every 202 id is a valid id, delivered on every instance after a gap notice", async () => {
    const cases: [field: string, value: string, dropLog?: boolean][] = [
      ["epoch", "ABC"],
      ["epoch", ""],
      ["epoch", "a-b"],
      ["epoch", "a:b"],
      ["epoch", "x".repeat(33)],
      ["seq", "abc"],
      ["seq", "-5", true],
      ["seq", "99999999999999999"],
    ];
    for (const [field, bad, dropLog] of cases) {
      const what = `${field} ${JSON.stringify(bad)}`;
      const path = `p${paths++}`;
      const keys = pathKeys("wsevent:", path);
      const a = await node(path);
      const b = await node(path);
      const first = await append(a, "first");
      await waitFor(() => b.sink.ids.length === 1, 10_000, "the first");
      await redis.cli("HSET", keys.meta, field, bad);
      if (dropLog) await redis.cli("DEL", keys.log);
      const ids: string[] = [];
      for (const n of [a, b]) {
        ids.push(
          await append(n, "next").catch((e) => `${what}: ${e.message}`),
        );
      }
      for (const id of ids) assert.notEqual(parseEventId(id), undefined, id);
      assert.notEqual(ids[0].split("-")[0], first.split("-")[0], what);
      // After the stream's last entry; from 0 without a stream.
      assert.deepEqual(seqs(ids), dropLog ? [0, 1] : [1, 2], what);
      for (const n of [a, b]) {
        await waitFor(
          () => n.sink.ids.length >= 3,
          10_000,
          `both events after ${what}: ${n.sink.log}`,
        );
        assert.deepEqual(n.sink.log, [first, `gap:${first}`, ...ids], what);
      }
    }
  });

  test("createRedisEngine() answers a resume older than the cache from the stream, exactly; older than the stream with a gap notice first", async () => {
    const path = `p${paths++}`;
    await redis.cli("CONFIG", "SET", "stream-node-max-entries", "4");
    try {
      const a = await node(path, { bufferSize: 3, maxLength: 6 });
      const ids: string[] = [];
      for (let i = 0; i < 30; i++) ids.push(await append(a, `e${i}`));
      await waitFor(() => a.sink.ids.length === 30, 10_000, "30 events");
      const kept = Number(
        await redis.cli("XLEN", pathKeys("wsevent:", path).log),
      );
      assert.ok(kept >= 6 && kept < 20, `the stream was trimmed to ${kept}`);
      // Within the stream, older than the 3 cached: exact.
      const exact = new FakeSink();
      a.topic.subscribe(exact, { lastEventId: ids[30 - kept] });
      await waitFor(() => exact.ids.length >= kept - 1, 10_000, "the history");
      assert.deepEqual(exact.log, ids.slice(31 - kept));
      // Older than the stream: the gap notice first, then what is kept.
      const late = new FakeSink();
      a.topic.subscribe(late, { lastEventId: ids[2] });
      await waitFor(() => late.ids.length >= kept, 10_000, "the history");
      assert.deepEqual(late.log, [`gap:${ids[2]}`, ...ids.slice(30 - kept)]);
      // Live events follow both, once.
      const next = await append(a, "live");
      await waitFor(() => late.ids.at(-1) === next, 10_000, "the live event");
      await waitFor(() => exact.ids.at(-1) === next, 10_000, "the live event");
      assert.equal(new Set(late.ids).size, late.ids.length);
      assert.equal(new Set(exact.ids).size, exact.ids.length);
    } finally {
      await redis.cli("CONFIG", "SET", "stream-node-max-entries", "100");
    }
  });

  test("createRedisEngine() with a history TTL sets it on the path's log at each append, and 30 days more on its meta; without one they do not expire", async () => {
    const path = `p${paths++}`;
    const a = await node(path, { historyTtlSeconds: 600 });
    await append(a, "kept ten minutes");
    const keys = pathKeys("wsevent:", path);
    const logTtl = Number(await redis.cli("TTL", keys.log));
    assert.ok(logTtl > 590 && logTtl <= 600, `TTL of the log: ${logTtl}`);
    const metaTtl = Number(await redis.cli("TTL", keys.meta));
    const month = META_TTL_EXTRA_SECONDS;
    assert.equal(month, 30 * 86400);
    assert.ok(
      metaTtl > month + 590 && metaTtl <= month + 600,
      `TTL of the meta: ${metaTtl}`,
    );
    const other = `p${paths++}`;
    const b = await node(other);
    await append(b, "kept");
    const otherKeys = pathKeys("wsevent:", other);
    for (const key of [otherKeys.meta, otherKeys.log]) {
      assert.equal(await redis.cli("TTL", key), "-1", key);
    }
  });

  test("createRedisEngine() with a history TTL goes on numbering after the history expired: live subscribers get no gap notice; a resume from an expired id gets one first, a resume from the last id none", async () => {
    const path = `p${paths++}`;
    const a = await node(path, { historyTtlSeconds: 1 });
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) ids.push(await append(a, `e${i}`));
    await waitFor(() => a.sink.ids.length === 3, 10_000, "3 events");
    const keys = pathKeys("wsevent:", path);
    // EXISTS also expires the key when its time is up.
    const deadline = Date.now() + 15_000;
    while (await redis.cli("EXISTS", keys.log) !== "0") {
      assert.ok(Date.now() < deadline, "the history did not expire");
      await new Promise((r) => setTimeout(r, 100));
    }
    // Resumes on an instance that never cached them: from the first id
    // (two events expired) and from the last one (nothing missed).
    const c = createRedisEngine({ url: new URL(redis.url) });
    engines.push(c);
    const fresh = createHub({ bufferSize: 10 }).addTopic(path, "unused");
    c.open(fresh);
    await waitFor(() => c.status!.connected, 10_000, "the engine");
    const expired = new FakeSink();
    fresh.subscribe(expired, { lastEventId: ids[0] });
    const current = new FakeSink();
    fresh.subscribe(current, { lastEventId: ids[2] });
    const next = await append(a, "after the expiry");
    await waitFor(() => a.sink.ids.includes(next), 10_000, "the live event");
    assert.deepEqual(a.sink.log, [...ids, next], "no gap notice live");
    assert.equal(next, `${ids[0].split("-")[0]}-3`, "same epoch, next seq");
    await waitFor(() => expired.ids.includes(next), 10_000, "the event");
    await waitFor(() => current.ids.includes(next), 10_000, "the event");
    assert.deepEqual(expired.log, [`gap:${ids[0]}`, next]);
    assert.deepEqual(current.log, [next]);
    // And from the stream, now that it holds the new event.
    const late = new FakeSink();
    fresh.subscribe(late, { lastEventId: ids[1] });
    await waitFor(() => late.log.length >= 2, 10_000, "the resume");
    assert.deepEqual(late.log, [`gap:${ids[1]}`, next]);
  });

  test("createRedisEngine() warns once per path at start when the last instance to append had another -buffer (the stream is trimmed to the publisher's)", async () => {
    const path = `p${paths++}`;
    const a = await node(path, { maxLength: 50 });
    await append(a, "trimmed to 50");
    const keys = pathKeys("wsevent:", path);
    assert.equal(await redis.cli("HGET", keys.meta, "len"), "50");
    const started = async (maxLength: number): Promise<string[]> => {
      const warnings: string[] = [];
      const engine = createRedisEngine({
        url: new URL(redis.url),
        maxLength,
        log: { ...quiet, warn: (m: string) => void warnings.push(m) },
      });
      engines.push(engine);
      const topic = createHub().addTopic(path, "unused");
      engine.open(topic);
      // Ready once each path's log was read: compared by then.
      await waitFor(() => engine.status!.connected, 10_000, "the engine");
      await engine.append(topic, `from ${maxLength}`);
      return warnings;
    };
    assert.deepEqual(await started(50), [], "the same -buffer: no warning");
    const warnings = await started(1000);
    assert.equal(warnings.length, 1, warnings.join("\n"));
    assert.match(
      warnings[0],
      new RegExp(
        `\\{${path}\\}:log was last trimmed to 50 events .* this one has -buffer 1000`,
      ),
    );
    assert.equal(await redis.cli("HGET", keys.meta, "len"), "1000");
  });

  test("createRedisEngine() opens and releases topics at run time: a subscriber let in once opened() settles gets what is appended elsewhere from then on, once; a released topic gets nothing more", async () => {
    const count = 20;
    const paths = Array.from({ length: count }, (_, i) => `ondemand${i}`);
    const a = await node("unused-a");
    const b = await node("unused-b");
    const topicsA = paths.map((path) => {
      const topic = createHub().addTopic(path, "unused");
      a.engine.open(topic);
      return topic;
    });
    await waitFor(() => a.engine.status!.connected, 10_000, "paths on a");
    const hubB = createHub();
    const sinks = await Promise.all(
      paths.map((path) => {
        const topic = hubB.addTopic(path, "unused");
        b.engine.open(topic);
        return topic;
      }).map(async (topic, i) => {
        // As the app does: subscribe once the new topic's feed is placed.
        await b.engine.opened?.(topic);
        const sink = new FakeSink();
        topic.subscribe(sink);
        // No wait: the append goes out with the new topic's SUBSCRIBE.
        a.engine.append(topicsA[i], `first ${i}`);
        return sink;
      }),
    );
    await waitFor(
      () => sinks.every((sink) => sink.ids.length >= 1),
      10_000,
      "the first event of every new topic",
    );
    for (const [i, sink] of sinks.entries()) {
      assert.deepEqual(sink.events.map((e) => e.data), [`first ${i}`]);
    }
    // Released: nothing more reaches it, and the others go on.
    const released = hubB.topic(paths[0])!;
    b.engine.release(released);
    await a.engine.append(topicsA[0], "after release");
    const last = await a.engine.append(topicsA[1], "still open");
    await waitFor(() => sinks[1].ids.includes(last), 10_000, "the open one");
    assert.equal(sinks[0].ids.length, 1);
  });

  test("createRedisEngine() answers 503 after the command timeout when Redis hangs (SIGSTOP), is not ready meanwhile, and recovers once Redis answers (SIGCONT)", async () => {
    const path = `p${paths++}`;
    const a = await node(path, { commandTimeoutMs: 800 });
    await append(a, "before");
    const info = await redis.cli("INFO", "server");
    const pid = Number(/process_id:(\d+)/.exec(info)?.[1]);
    assert.ok(pid > 0, info);
    process.kill(pid, "SIGSTOP");
    let late: Promise<unknown> | undefined;
    try {
      const started = Date.now();
      late = Promise.resolve(append(a, "late")).catch((e: unknown) => e);
      const outcome = await Promise.race([
        late,
        new Promise((r) => setTimeout(() => r("still waiting"), 8_000)),
      ]);
      assert.ok(
        outcome instanceof EngineUnavailableError,
        `a 503, not ${String(outcome)}`,
      );
      assert.ok(Date.now() - started < 8_000);
      assert.equal(a.engine.status!.connected, false, "not ready while hung");
      await assert.rejects(append(a, "refused"), EngineUnavailableError);
    } finally {
      process.kill(pid, "SIGCONT");
    }
    await waitFor(() => a.engine.status!.connected, 10_000, "ready again");
    const id = await append(a, "after");
    await waitFor(() => a.sink.ids.includes(id), 10_000, "the event");
    // Redis ran the append it got before it hung: delivered, in order.
    assert.deepEqual(a.sink.events.map((e) => e.data), [
      "before",
      "late",
      "after",
    ]);
  });

  test("createRedisEngine() connects to an IPv6 address in brackets (redis://[::1]:port)", async () => {
    assert.equal(
      await redis.cli("CONFIG", "SET", "bind", "127.0.0.1 ::1"),
      "OK",
    );
    const engine = createRedisEngine({
      url: new URL(`redis://[::1]:${redis.port}`),
    });
    engines.push(engine);
    const topic = createHub().addTopic(`p${paths++}`, "unused");
    engine.open(topic);
    await waitFor(() => engine.status!.connected, 10_000, "the engine on ::1");
    assert.match(await engine.append(topic, "over IPv6"), /^[0-9a-z]+-0$/);
  });

  test("createRedisEngine() stores appends while only its Pub/Sub connection is down (it cannot reconnect), and delivers them once it is back", async () => {
    const path = `p${paths++}`;
    const a = await node(path);
    await append(a, "before");
    await waitFor(() => a.sink.ids.length === 1, 10_000, "1 event");
    // An admin connection of its own: no new connection is let in below.
    const admin = createClient({ url: redis.url });
    await admin.connect();
    try {
      await admin.sendCommand(["CONFIG", "SET", "maxclients", "1"]);
      await admin.sendCommand(["CLIENT", "KILL", "TYPE", "pubsub"]);
      await waitFor(() => !a.engine.status!.connected, 10_000, "the loss");
      const id = await append(a, "while away");
      assert.deepEqual(a.sink.ids.length, 1, "not live yet");
      await admin.sendCommand(["CONFIG", "SET", "maxclients", "10000"]);
      await waitFor(() => a.sink.ids.includes(id), 10_000, "the event");
      assert.deepEqual(a.sink.events.map((e) => e.data), [
        "before",
        "while away",
      ]);
    } finally {
      await admin.sendCommand(["CONFIG", "SET", "maxclients", "10000"]);
      await admin.close();
    }
  });

  test("createRedisEngine() refuses an append when the log's key holds another type, naming it, and goes on without a hole once the key is freed", async () => {
    const path = `p${paths++}`;
    const a = await node(path);
    const first = await append(a, "first");
    const keys = pathKeys("wsevent:", path);
    await redis.cli("DEL", keys.log);
    await redis.cli("SET", keys.log, "not a stream");
    await assert.rejects(append(a, "refused"), /WRONGTYPE/);
    await assert.rejects(append(a, "refused"), EngineUnavailableError);
    await redis.cli("DEL", keys.log);
    const next = await append(a, "next");
    assert.deepEqual(seqs([first, next]), [0, 1], "no number lost");
    await waitFor(() => a.sink.ids.includes(next), 10_000, "the event");
    assert.deepEqual(a.sink.log, [first, next]);
  });

  test("createRedisEngine() with rediss:// against a plain Redis stays unready, refuses appends and says the port may not speak TLS", async () => {
    const warnings: string[] = [];
    const log = {
      debug() {},
      info() {},
      warn: (message: string) => void warnings.push(message),
      error() {},
    };
    const engine = createRedisEngine({
      url: new URL(`rediss://127.0.0.1:${redis.port}`),
      log,
    });
    engines.push(engine);
    const topic = createHub().addTopic(`p${paths++}`, "unused");
    engine.open(topic);
    await waitFor(() => warnings.length > 0, 15_000, "a warning");
    assert.match(warnings[0], /is that port a TLS one\?/);
    assert.equal(engine.status!.connected, false);
    await assert.rejects(
      Promise.resolve(engine.append(topic, "x")),
      EngineUnavailableError,
    );
  });

  test("createRedisEngine() refuses an append at once while Redis is down, and stores again once it is back", async () => {
    const path = `p${paths++}`;
    const a = await node(path);
    await append(a, "before");
    await redis.kill();
    await waitFor(() => !a.engine.status!.connected, 10_000, "the loss");
    await assert.rejects(append(a, "lost"), EngineUnavailableError);
    assert.ok(a.engine.status!.publishErrors >= 1);
    await redis.restart();
    await waitFor(() => a.engine.status!.connected, 10_000, "the reconnect");
    const id = await append(a, "after");
    await waitFor(() => a.sink.ids.includes(id), 10_000, "the event");
    assert.deepEqual(a.sink.events.at(-1)?.data, "after");
  });
});
