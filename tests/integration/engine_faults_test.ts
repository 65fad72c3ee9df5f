/**
 * Faults between an instance and Redis (issues 13 and 18): three instances
 * on one private redis-server, each reaching it through its own TCP fault
 * proxy (_fault_proxy.ts; the instance gets `--engine redis://<proxy>`),
 * a WebSocket (JSON) and an SSE subscriber on every instance, and steady
 * publishes to every instance while faults are switched on and off:
 * latency with jitter on one instance's link, replies and Pub/Sub messages
 * in 1-3 byte segments, RSTs in the middle of replies and messages, a
 * partition (no FIN, no RST) of one instance's link for longer than
 * `--engine-timeout`, healed; the same for an instance that gets no
 * publishes; another ended by an RST; a Redis that accepts connections
 * and never answers when an instance starts; and a partition of only one
 * of an instance's two connections (Pub/Sub, or commands), never healed
 * until the instance has replaced it (a NAT or firewall that dropped it).
 *
 * What the clients saw is counted: every publish answers 202 with an id or
 * 503 `engine_unavailable`; after each fault every subscriber on every
 * instance has every 202 event exactly once, all of them the same ids in
 * the same order up to the stream's last entry in Redis, no gap notice, and
 * no subscriber was dropped. A 503 may still have been stored (Redis ran the
 * command, its answer was lost): those events are delivered too, and
 * counted. The figures are printed as a table (and appended to the file in
 * WSEVENT_ENGINE_FAULTS_TABLE when set).
 */

import assert from "node:assert/strict";
import { appendFileSync } from "node:fs";
import process from "node:process";
import { after, before, describe, test } from "node:test";
import {
  COMMAND_CONNECTION_NAME,
  PUBSUB_CONNECTION_NAME,
} from "../../src/engine/_redis_client.ts";
import {
  type Fault,
  type FaultProxy,
  startFaultProxy,
} from "./_fault_proxy.ts";
import {
  assertContiguous,
  connectSse,
  connectWs,
  readyStatus,
  RUNTIME,
  seqOf,
  type Service,
  sseIds,
  startService,
  waitFor,
  waitForReady,
  wsIds,
} from "./_helpers.ts";
import { type RedisServer, startRedis } from "./_redis.ts";

/** `--engine-timeout`: how long Redis may take to answer. */
const TIMEOUT_MS = 1000;
const HEARTBEAT_MS = 1000;
/** Publishes per second to each instance, one at a time. */
const RATE = 10;
/** How long a fault other than a partition stays on. */
const FAULT_MS = 2500;
/** A partition lasts well over the timeout. */
const PARTITION_MS = 3 * TIMEOUT_MS;
/** The engine's longest reconnect backoff (`_redis_client.ts`). */
const MAX_BACKOFF_MS = 2000;
/** How often each instance's /readyz is asked. */
const POLL_MS = 50;
/**
 * A stalled link is noticed once a command waited the timeout; a publish
 * arrives every 1000 / RATE ms; /readyz is asked every POLL_MS; one more
 * timeout for the timers of a loaded machine.
 */
const DETECT_BOUND_MS = 2 * TIMEOUT_MS + 1000 / RATE + POLL_MS;
/**
 * An instance that sends Redis nothing still notices a partition: it
 * checks its link once it was idle for the timeout, and that check waits
 * the timeout; plus a /readyz poll and one timeout of slack.
 */
const IDLE_DETECT_BOUND_MS = 4 * TIMEOUT_MS + POLL_MS;
const IDLE_PARTITION_MS = IDLE_DETECT_BOUND_MS + TIMEOUT_MS;
/** A healed stall delivers the late replies at once. */
const HEAL_BOUND_MS = 2 * TIMEOUT_MS;
/**
 * A new connection: an attempt that went into a silent link is given up
 * after the timeout, the next comes after at most the longest backoff,
 * and its handshake, subscriptions and catch-up take a few round trips.
 */
const RECONNECT_BOUND_MS = 3 * TIMEOUT_MS + MAX_BACKOFF_MS;
/**
 * Only the Pub/Sub connection partitioned, with live events flowing: it is
 * asked a PING once nothing came for the timeout, and given up when no
 * answer came within the timeout; plus a /readyz poll and one timeout of
 * slack.
 */
const PUBSUB_DETECT_BOUND_MS = 3 * TIMEOUT_MS + POLL_MS;
/**
 * Only the command connection partitioned: noticed as a partition of the
 * whole link (DETECT_BOUND_MS), replaced after one more timeout without a
 * reply; then a new connection's handshake (one more timeout of slack).
 */
const COMMAND_REPLACE_BOUND_MS = DETECT_BOUND_MS + 2 * TIMEOUT_MS;
/** Every subscriber has everything within this, once the faults are off. */
const SETTLE_MS = 20_000;

/** One publish as the client saw it. */
interface Outcome {
  sent: number;
  answered: number;
  status: number;
  /** The id of a 202; the error code and message of a 503. */
  id?: string;
  code?: string;
  error?: string;
}

interface Instance {
  name: string;
  service: Service;
  proxy: FaultProxy;
  outcomes: Outcome[];
  /** /readyz as it changed: when it was seen, and the status. */
  readiness: { at: number; status: number }[];
}

interface Subscriber {
  name: string;
  ids: string[];
  closed: boolean;
  /** Reads what arrived since the last call. */
  update(): void;
  close(): void;
}

/** One row of the figures. */
interface Row {
  fault: string;
  accepted: number;
  refused: number;
  storedAnyway: number;
  /** Events of the phase each subscriber got (202s and stored anyway). */
  delivered: number;
  lost: number;
  duplicated: number;
  outOfOrder: number;
  gaps: number;
  detect: string;
  recover: string;
}

const rows: Row[] = [];
let redis: RedisServer;
const instances: Instance[] = [];
const subscribers: Subscriber[] = [];
/** How many of the earliest subscriber's ids the last check covered. */
let checked = 0;
let stopWatching: (() => Promise<void>) | undefined;

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

async function startInstance(name: string, fault: Fault): Promise<Instance> {
  const proxy = await startFaultProxy(redis.port);
  proxy.set(fault);
  try {
    const service = await startService([
      "--serve-address",
      "127.0.0.1:0",
      "--no-produce",
      "--heartbeat",
      String(HEARTBEAT_MS),
      "--buffer",
      "5000",
      "--engine",
      `redis://127.0.0.1:${proxy.port}`,
      "--engine-timeout",
      String(TIMEOUT_MS),
    ]);
    const instance: Instance = {
      name,
      service,
      proxy,
      outcomes: [],
      readiness: [],
    };
    instances.push(instance);
    return instance;
  } catch (error) {
    await proxy.close();
    throw error;
  }
}

/** Asks every instance's /readyz every POLL_MS, recording each change. */
function watchReadiness(): () => Promise<void> {
  let on = true;
  const loops = instances.map(async (instance) => {
    while (on) {
      const status = await readyStatus(instance.service.http);
      if (instance.readiness.at(-1)?.status !== status) {
        instance.readiness.push({ at: Date.now(), status });
      }
      await sleep(POLL_MS);
    }
  });
  return async () => {
    on = false;
    await Promise.all(loops);
  };
}

/** The /readyz status seen at `time`. */
function statusAt(instance: Instance, time: number): number | undefined {
  return instance.readiness.findLast((r) => r.at <= time)?.status;
}

/** When /readyz was first seen answering `status` at or after `since`. */
function firstSeen(
  instance: Instance,
  since: number,
  status: number,
): number | undefined {
  if (statusAt(instance, since) === status) return since;
  return instance.readiness.find((r) => r.at >= since && r.status === status)
    ?.at;
}

async function publishOnce(instance: Instance): Promise<Outcome> {
  const sent = Date.now();
  try {
    const response = await fetch(`${instance.service.http}/events`, {
      method: "POST",
      body: `${instance.name} ${instance.outcomes.length}`,
      headers: { "Content-Type": "text/plain" },
    });
    const body = await response.json() as {
      id?: string;
      code?: string;
      error?: string;
    };
    return {
      sent,
      answered: Date.now(),
      status: response.status,
      id: body.id,
      code: body.code,
      error: body.error,
    };
  } catch (error) {
    return { sent, answered: Date.now(), status: 0, code: String(error) };
  }
}

/** Publishes to each of `to`, RATE a second each, until stopped. */
function startPublishing(to = instances): () => Promise<void> {
  let on = true;
  const loops = to.map(async (instance) => {
    while (on) {
      const outcome = await publishOnce(instance);
      instance.outcomes.push(outcome);
      await sleep(Math.max(0, 1000 / RATE - (Date.now() - outcome.sent)));
    }
  });
  return async () => {
    on = false;
    await Promise.all(loops);
  };
}

function accepted(outcomes: Outcome[]): Outcome[] {
  return outcomes.filter((o) => o.status === 202);
}

function subscribe(instance: Instance, kind: "ws" | "sse", after?: string) {
  const name = `${kind}@${instance.name}`;
  const base: Subscriber = {
    name,
    ids: [],
    closed: false,
    update() {},
    close() {},
  };
  let read = 0;
  if (kind === "ws") {
    const resume = after === undefined ? "" : `&lastEventId=${after}`;
    const ws = connectWs(`${instance.service.url}?format=json${resume}`);
    void ws.closed.then(() => (base.closed = true));
    base.update = () => {
      base.ids.push(...wsIds({ messages: ws.messages.slice(read) }));
      read = ws.messages.length;
    };
    base.close = ws.close;
    subscribers.push(base);
    return ws.opened;
  }
  const sse = connectSse(
    `${instance.service.http}/events`,
    after === undefined ? {} : { "Last-Event-ID": after },
  );
  void sse.done.then(() => (base.closed = true));
  base.update = () => {
    base.ids.push(...sseIds({ messages: sse.messages.slice(read) }));
    read = sse.messages.length;
  };
  base.close = sse.close;
  subscribers.push(base);
  return sse.headers;
}

/** The stream's last entry in Redis, read from the path's meta hash. */
async function lastStoredSeq(): Promise<number> {
  return Number(await redis.cli("HGET", "wsevent:{events}:meta", "seq")) - 1;
}

/**
 * Waits until every subscriber has every 202 event and all end at the
 * stream's last entry, then checks them and counts for `row`: every
 * subscriber the same ids in the same order as the earliest one (from
 * where it began), each the last plus one, no gap, none dropped.
 */
async function converge(row: Row): Promise<void> {
  const acked = instances.flatMap((i) => accepted(i.outcomes))
    .map((o) => o.id!);
  const deadline = Date.now() + SETTLE_MS;
  let last = await lastStoredSeq();
  const settled = () =>
    subscribers.every((s) => {
      s.update();
      const end = s.ids.at(-1);
      return end !== undefined && seqOf(end) >= last;
    });
  while (!settled() && Date.now() < deadline) {
    await sleep(100);
    last = await lastStoredSeq();
  }
  const reference = subscribers[0];
  const fromSeq = seqOf(reference.ids[0]);
  for (const s of subscribers) {
    const seen = new Set(s.ids);
    const start = seqOf(s.ids[0] ?? "x-Infinity");
    row.lost += acked.filter((id) => seqOf(id) >= start && !seen.has(id))
      .length;
    row.duplicated += s.ids.length - seen.size;
    row.gaps += s.ids.filter((id) => id === "gap").length;
    for (let i = 1; i < s.ids.length; i++) {
      if (seqOf(s.ids[i]) !== seqOf(s.ids[i - 1]) + 1) row.outOfOrder++;
    }
  }
  const ackedNow = new Set(acked);
  const fresh = reference.ids.slice(checked);
  row.storedAnyway = fresh.filter((id) => !ackedNow.has(id)).length;
  row.delivered = fresh.length;
  checked = reference.ids.length;
  report(row);
  assert.ok(
    acked.every((id) => seqOf(id) >= fromSeq),
    "every 202 event after the earliest subscriber's first",
  );
  for (const s of subscribers) {
    assert.equal(s.closed, false, `${s.name} stays connected`);
    assertContiguous(s.ids, s.name);
    const at = reference.ids.indexOf(s.ids[0]);
    assert.ok(at >= 0, `${s.name} began within ${reference.name}'s events`);
    assert.deepEqual(
      s.ids,
      reference.ids.slice(at),
      `${s.name} got the same events in the same order as ${reference.name}`,
    );
    assert.equal(
      seqOf(s.ids.at(-1)!),
      last,
      `${s.name} reached the stream's last entry in Redis`,
    );
  }
  assert.equal(row.lost + row.duplicated + row.gaps + row.outOfOrder, 0);
  // Nothing left behind: two connections per instance (commands and
  // Pub/Sub), at each proxy and at Redis (plus redis-cli's own).
  let clients = NaN;
  const connections = async () => {
    const info = await redis.cli("INFO", "clients");
    clients = Number(/connected_clients:(\d+)/.exec(info)?.[1]);
    return instances.every((i) => i.proxy.stats.open === 2) &&
      clients === 2 * instances.length + 1;
  };
  const until = Date.now() + RECONNECT_BOUND_MS;
  while (!(await connections()) && Date.now() < until) await sleep(100);
  assert.deepEqual(
    [...instances.map((i) => i.proxy.stats.open), clients],
    [...instances.map(() => 2), 2 * instances.length + 1],
    "connections at each proxy, and at Redis",
  );
  for (const instance of instances) {
    for (const outcome of instance.outcomes) {
      assert.ok(
        (outcome.status === 202 && typeof outcome.id === "string") ||
          (outcome.status === 503 && outcome.code === "engine_unavailable"),
        `${instance.name} answered a publish ${outcome.status} ${outcome.code}`,
      );
    }
  }
}

const ms = (figure: string) => /^\d+$/.test(figure) ? `${figure} ms` : figure;

function report(row: Row): void {
  rows.push(row);
  console.log(
    `engine fault on ${RUNTIME}: ${row.fault}: ${row.accepted} publishes 202, ${row.refused} 503 (${row.storedAnyway} of them stored anyway); ${row.delivered} events delivered to each subscriber; lost ${row.lost}, duplicated ${row.duplicated}, out of order ${row.outOfOrder}, gaps ${row.gaps}; detected ${
      ms(row.detect)
    }, recovered ${ms(row.recover)}`,
  );
}

function newRow(fault: string, from: number): Row {
  const outcomes = instances.flatMap((i) =>
    i.outcomes.filter((o) => o.sent >= from)
  );
  return {
    fault,
    accepted: accepted(outcomes).length,
    refused: outcomes.filter((o) => o.status !== 202).length,
    storedAnyway: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    outOfOrder: 0,
    gaps: 0,
    detect: "-",
    recover: "-",
  };
}

interface Phase {
  /** Whose Redis link gets the fault. */
  targets: Instance[];
  fault: Fault;
  durationMs: number;
  /**
   * Ends the fault with an RST on the targets' connections, publishing
   * stopped first: then only the catch-up after the reconnect can bring
   * what the fault held back.
   */
  endWithCut?: boolean;
  /** Gets no publishes during the phase. */
  quiet?: Instance;
}

/**
 * Publishes to every instance, switches the fault on the targets' links
 * for `durationMs` while traffic flows, heals it, waits until every
 * instance is ready and stores again; returns when it began and healed.
 */
async function underFault(
  phase: Phase,
): Promise<{ from: number; healed: number; start: number }> {
  const start = Date.now();
  const publishing = instances.filter((i) => i !== phase.quiet);
  const stop = startPublishing(publishing);
  let stopped = false;
  try {
    await waitFor(
      () =>
        publishing.every((i) =>
          accepted(i.outcomes.filter((o) => o.sent >= start)).length >= 3
        ),
      10_000 + 10 * TIMEOUT_MS,
      "publishes stored by every instance before the fault",
    );
    const from = Date.now();
    for (const target of phase.targets) target.proxy.set(phase.fault);
    await sleep(phase.durationMs);
    if (phase.endWithCut) {
      await stop();
      stopped = true;
      for (const target of phase.targets) target.proxy.cut();
    }
    const healed = Date.now();
    for (const target of phase.targets) target.proxy.set({ kind: "none" });
    const bound = healed + RECONNECT_BOUND_MS;
    await waitFor(
      () => instances.every((i) => statusAt(i, Date.now()) === 200),
      bound - Date.now(),
      "every instance ready again",
    );
    if (!stopped) {
      // Publishing goes on after healing until every instance stored one.
      await waitFor(
        () =>
          publishing.every((i) =>
            i.outcomes.some((o) => o.sent >= healed && o.status === 202)
          ),
        RECONNECT_BOUND_MS + 1000,
        "a publish stored by every instance after healing",
      );
    }
    return { from, healed, start };
  } finally {
    if (!stopped) await stop();
  }
}

/** How long the targets' /readyz took to come back after `healed`. */
function recovery(targets: Instance[], healed: number): number {
  return Math.max(...targets.map((t) => firstSeen(t, healed, 200)! - healed));
}

describe(
  `engine faults on ${RUNTIME}: three instances, each through its own fault proxy to one Redis`,
  { timeout: 180_000 },
  () => {
    before(async () => {
      redis = await startRedis();
      try {
        await Promise.all([
          startInstance("a", { kind: "none" }),
          startInstance("b", { kind: "none" }),
        ]);
        await Promise.all(
          instances.map((i) => waitForReady(i.service.http, true)),
        );
        for (const instance of [...instances]) {
          await subscribe(instance, "ws");
          await subscribe(instance, "sse");
        }
      } catch (error) {
        for (const i of instances) await i.service.stop();
        for (const i of instances) await i.proxy.close();
        await redis.stop();
        throw error;
      }
    });

    after(async () => {
      await stopWatching?.();
      for (const s of subscribers) s.close();
      for (const i of instances) await i.service.stop();
      for (const i of instances) await i.proxy.close();
      await redis?.stop();
      const table = [
        `engine faults on ${RUNTIME} (--engine-timeout ${TIMEOUT_MS} ms, ${RATE} publishes/s to each of 3 instances, 6 subscribers)`,
        "| fault | 202 | 503 (stored anyway) | delivered | lost | duplicated | out of order | gaps | detected (ms) | recovered (ms) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
        ...rows.map((r) =>
          `| ${r.fault} | ${r.accepted} | ${r.refused} (${r.storedAnyway}) | ${r.delivered} | ${r.lost} | ${r.duplicated} | ${r.outOfOrder} | ${r.gaps} | ${r.detect} | ${r.recover} |`
        ),
      ].join("\n");
      console.log(table);
      const file = process.env.WSEVENT_ENGINE_FAULTS_TABLE;
      if (file) appendFileSync(file, table + "\n\n");
    });

    test("accepted but never answered as it starts: the instance stays unready and answers publishes 503, gives the silent connections up, and is ready once Redis answers", async () => {
      const c = await startInstance("c", { kind: "blackhole" });
      stopWatching = watchReadiness();
      const start = Date.now();
      const stop = startPublishing();
      let stopped = false;
      try {
        // Long enough for each connection to be given up twice.
        const deadline = start + 3 * TIMEOUT_MS + MAX_BACKOFF_MS / 2;
        await waitFor(
          () => Date.now() >= deadline && c.proxy.stats.blackholed >= 4,
          deadline - Date.now() + RECONNECT_BOUND_MS,
          "the silent connections given up and tried again",
        );
        assert.deepEqual(
          [...new Set(c.readiness.map((r) => r.status))],
          [503],
          "/readyz answered 503 all along",
        );
        const refused = c.outcomes.filter((o) => o.sent >= start);
        assert.ok(refused.length >= 3, `${refused.length} publishes to c`);
        assert.deepEqual(
          [...new Set(refused.map((o) => `${o.status} ${o.code}`))],
          ["503 engine_unavailable"],
        );
        const healed = Date.now();
        c.proxy.set({ kind: "none" });
        await waitFor(
          () => statusAt(c, Date.now()) === 200,
          RECONNECT_BOUND_MS,
          "c ready once Redis answers",
        );
        const recover = firstSeen(c, healed, 200)! - healed;
        await waitFor(
          () => c.outcomes.some((o) => o.sent >= healed && o.status === 202),
          RECONNECT_BOUND_MS,
          "a publish to c stored",
        );
        await stop();
        stopped = true;
        // c's subscribers resume from the first event published: they
        // get it all from Redis, then live.
        const first = accepted(instances[0].outcomes)[0].id!;
        await subscribe(c, "ws", first);
        await subscribe(c, "sse", first);
        const row = newRow("accepted, never answered, at start", start);
        row.detect = "unready from the start";
        row.recover = String(recover);
        await converge(row);
        assert.ok(
          recover <= RECONNECT_BOUND_MS,
          `ready ${recover} ms after Redis answered`,
        );
      } finally {
        if (!stopped) await stop();
      }
    });

    test("latency 40 ± 30 ms on one instance's Redis link: everything stored reaches every subscriber once, in order", async () => {
      const { start } = await underFault({
        targets: [instances[0]],
        fault: { kind: "latency", ms: 40, jitterMs: 30 },
        durationMs: FAULT_MS,
      });
      await converge(newRow("latency 40 ± 30 ms (one link)", start));
    });

    test("replies and Pub/Sub messages in 1-3 byte segments on every link: everything stored reaches every subscriber once, in order", async () => {
      const before = instances.map((i) => ({ ...i.proxy.stats }));
      const { start } = await underFault({
        targets: instances,
        fault: { kind: "slice", maxSegment: 3 },
        durationMs: FAULT_MS,
      });
      // The bytes did go in tiny writes (counting those before and after
      // the fault at full size, on average under 3 bytes a write).
      for (const [n, i] of instances.entries()) {
        const writes = i.proxy.stats.writes - before[n].writes;
        const bytes = i.proxy.stats.bytes - before[n].bytes;
        assert.ok(writes * 4 > bytes / 3, `${bytes} bytes in ${writes} writes`);
      }
      await converge(newRow("segments of 1-3 bytes (every link)", start));
    });

    test("RST in the middle of replies and Pub/Sub messages, again and again, on every link: refused publishes answer 503, everything stored reaches every subscriber once, in order", async () => {
      const resets = instances.map((i) => i.proxy.stats.resets);
      const { start, healed } = await underFault({
        targets: instances,
        fault: { kind: "reset", maxBytes: 400 },
        durationMs: FAULT_MS,
      });
      const cuts = instances.reduce(
        (n, i, k) => n + i.proxy.stats.resets - resets[k],
        0,
      );
      assert.ok(cuts >= 3, `${cuts} connections cut`);
      const row = newRow("RST mid-reply (every link, 1-400 bytes)", start);
      row.detect = `at once (${cuts} cuts)`;
      row.recover = String(recovery(instances, healed));
      await converge(row);
    });

    test(`partition (no FIN, no RST) of one instance's Redis link for ${PARTITION_MS} ms, then healed: its publishes answer 503 and its /readyz 503 within ${DETECT_BOUND_MS} ms, its subscribers stay, and once healed everything stored reaches everyone`, async () => {
      const b = instances[1];
      const { from, healed, start } = await underFault({
        targets: [b],
        fault: { kind: "stall" },
        durationMs: PARTITION_MS,
      });
      const row = newRow("partition of one link, healed", start);
      const detected = firstSeen(b, from, 503);
      row.detect = String(detected === undefined ? "never" : detected - from);
      row.recover = String(recovery([b], healed));
      await converge(row);
      checkPartition(b, from, healed);
      assert.ok(
        recovery([b], healed) <= HEAL_BOUND_MS,
        `ready ${row.recover} ms after healing`,
      );
    });

    test(`partition of the Redis link of an instance that gets no publishes, for ${IDLE_PARTITION_MS} ms: its /readyz answers 503 within ${IDLE_DETECT_BOUND_MS} ms all the same, and once healed everything stored reaches everyone`, async () => {
      const c = instances[2];
      const { from, healed, start } = await underFault({
        targets: [c],
        fault: { kind: "stall" },
        durationMs: IDLE_PARTITION_MS,
        quiet: c,
      });
      const row = newRow("partition of an idle instance's link, healed", start);
      const detected = firstSeen(c, from, 503);
      row.detect = String(detected === undefined ? "never" : detected - from);
      row.recover = String(recovery([c], healed));
      await converge(row);
      assert.ok(detected !== undefined, "/readyz answered 503");
      assert.ok(
        detected - from <= IDLE_DETECT_BOUND_MS,
        `/readyz 503 after ${detected - from} ms`,
      );
      assert.ok(
        recovery([c], healed) <= HEAL_BOUND_MS,
        `ready ${row.recover} ms after healing`,
      );
    });

    test(`partition of one instance's Redis link for ${PARTITION_MS} ms ended by an RST, publishing stopped first: the catch-up after the reconnect brings every event the partition held back`, async () => {
      const b = instances[1];
      const { from, healed, start } = await underFault({
        targets: [b],
        fault: { kind: "stall" },
        durationMs: PARTITION_MS,
        endWithCut: true,
      });
      const row = newRow("partition of one link, ended by RST", start);
      const detected = firstSeen(b, from, 503);
      row.detect = String(detected === undefined ? "never" : detected - from);
      row.recover = String(recovery([b], healed));
      // Events the other instances stored during the partition, which b's
      // subscribers can only get from the stream.
      const held = instances.filter((i) => i !== b).flatMap((i) =>
        accepted(i.outcomes.filter((o) => o.sent > from + TIMEOUT_MS))
      );
      assert.ok(held.length >= 5, `${held.length} events held back`);
      await converge(row);
      checkPartition(b, from, healed);
      assert.ok(
        recovery([b], healed) <= RECONNECT_BOUND_MS,
        `ready ${row.recover} ms after the RST`,
      );
    });

    test(`partition of only the Pub/Sub connection of an instance with subscribers (a NAT or firewall dropped it; commands still answered), never healed meanwhile: /readyz 503 within ${PUBSUB_DETECT_BOUND_MS} ms, a new Pub/Sub connection, ready again, and every event stored reaches every subscriber once, in order`, async () => {
      const b = instances[1];
      const row = await oneConnection(b, PUBSUB_CONNECTION_NAME, {
        detectBound: PUBSUB_DETECT_BOUND_MS,
        // The new connection that went into the partition is given up
        // after its handshake's timeout, then one goes through.
        recoverBound: RECONNECT_BOUND_MS,
        newOnesToo: true,
        // Its appends are stored all along: the command connection works.
        refused: false,
      });
      await converge(row);
    });

    test(`partition of only the command connection of an instance, longer than ${COMMAND_REPLACE_BOUND_MS} ms: its publishes answer 503 and /readyz 503, it gives the connection up for a new one and publishes are stored again before the partition heals; everything stored reaches everyone once, in order`, async () => {
      const b = instances[1];
      const row = await oneConnection(b, COMMAND_CONNECTION_NAME, {
        detectBound: DETECT_BOUND_MS,
        recoverBound: COMMAND_REPLACE_BOUND_MS,
        newOnesToo: false,
        refused: true,
      });
      await converge(row);
    });
  },
);

/**
 * Partitions only `b`'s connection named `name` while every instance
 * publishes, and checks that b notices within `detectBound` of the fault's
 * start (/readyz 503), and is ready again and stores, with a new connection
 * of that kind, within `recoverBound` of the moment new connections go
 * through, the old one still silent (a NAT or firewall that dropped one
 * connection). With `newOnesToo`, the new connections are silent too until
 * /readyz answered 503 and one was given up (so that the 503 is seen: a new
 * connection that goes through is ready in a few ms). Then it heals (the
 * old connections are released at Redis) and returns the row.
 */
async function oneConnection(b: Instance, name: string, options: {
  detectBound: number;
  recoverBound: number;
  newOnesToo: boolean;
  /** Its publishes answer 503 until it is ready again (else 202). */
  refused: boolean;
}): Promise<Row> {
  const start = Date.now();
  const stop = startPublishing();
  let healed = false;
  try {
    await waitFor(
      () =>
        instances.every((i) =>
          accepted(i.outcomes.filter((o) => o.sent >= start)).length >= 3
        ),
      10_000 + 10 * TIMEOUT_MS,
      "publishes stored by every instance before the fault",
    );
    assert.equal(b.proxy.count(name), 1, `one ${name} connection`);
    const accepts = b.proxy.stats.accepted;
    const from = Date.now();
    const fault: Fault = { kind: "stall" };
    b.proxy.set(fault, { match: name, openOnly: !options.newOnesToo });
    await waitFor(
      () => firstSeen(b, from, 503) !== undefined,
      options.detectBound + TIMEOUT_MS,
      `/readyz 503 on ${b.name}`,
    );
    const detected = firstSeen(b, from, 503)!;
    let through = from;
    if (options.newOnesToo) {
      await waitFor(
        () => b.proxy.stats.accepted > accepts,
        RECONNECT_BOUND_MS,
        `a new ${name} connection`,
      );
      through = Date.now();
      b.proxy.set(fault, { match: name, openOnly: true });
    }
    await waitFor(
      () => firstSeen(b, detected, 200) !== undefined,
      through + options.recoverBound + TIMEOUT_MS - Date.now(),
      `${b.name} ready again with a new ${name} connection, unhealed`,
    );
    const recovered = firstSeen(b, detected, 200)!;
    await waitFor(
      () =>
        instances.every((i) =>
          i.outcomes.some((o) => o.sent >= recovered && o.status === 202)
        ),
      RECONNECT_BOUND_MS,
      "a publish stored by every instance after the new connection",
    );
    // The old connection is still open at Redis, silent at the proxy: a
    // new one took its place (and the other connection was kept).
    const silent = b.proxy.count(name);
    const accepts2 = b.proxy.stats.accepted - accepts;
    const list = await redis.cli("CLIENT", "LIST");
    await stop();
    b.proxy.set({ kind: "none" });
    healed = true;
    if (options.newOnesToo) {
      assert.ok(silent >= 2, `${silent} ${name} connections at b's proxy`);
    } else {
      assert.equal(silent, 2, `${name} connections at b's proxy`);
      assert.equal(accepts2, 1, "connections accepted");
    }
    assert.equal(
      list.split("\n").filter((l) => l.includes(` name=${name} `)).length,
      instances.length + 1,
      `${name} connections at Redis:\n${list}`,
    );
    assert.ok(
      detected - from <= options.detectBound,
      `/readyz 503 after ${detected - from} ms`,
    );
    assert.ok(
      recovered - through <= options.recoverBound,
      `ready ${recovered - through} ms after new connections went through`,
    );
    assert.ok(
      !b.readiness.some((r) =>
        r.at > detected && r.at < recovered && r.status !== 503
      ),
      "/readyz 503 until the new connection was ready",
    );
    // b's publishes from the fault's start: 503s (those that went to the
    // silent connection, or came while it was given up), then 202s (the new
    // one), never a 202 before a 503.
    const since = b.outcomes.filter((o) => o.sent >= from);
    const first = since.findIndex((o) => o.status === 202);
    const refused = first < 0 ? since : since.slice(0, first);
    const stored = first < 0 ? [] : since.slice(first);
    assert.ok(
      stored.every((o) => o.status === 202),
      `b answered ${since.map((o) => o.status)}`,
    );
    if (!options.refused) {
      assert.equal(refused.length, 0, "b's appends were stored all along");
    } else {
      assert.ok(refused.length >= 3, `${refused.length} publishes refused`);
      assert.ok(stored[0].answered >= detected, "no 202 before /readyz 503");
    }
    for (const o of refused) {
      assert.ok(
        o.answered - o.sent <= DETECT_BOUND_MS,
        `a publish answered after ${o.answered - o.sent} ms`,
      );
      assert.equal(o.status, 503);
      // Sent into the silent connection, an append may be run by Redis
      // once it heals: the answer must not say it was not stored.
      assert.match(
        o.error!,
        /^Cannot publish: the engine's Redis \(redis:\/\/127\.0\.0\.1:\d+\) (is not connected|did not confirm that it stored the event: Redis did not answer within 1000 ms)$/,
      );
    }
    const row = newRow(`partition of only the ${name} connection`, start);
    row.detect = String(detected - from);
    row.recover = `${recovered - through} (unhealed)`;
    return row;
  } finally {
    if (!healed) {
      await stop();
      b.proxy.set({ kind: "none" });
    }
  }
}

/**
 * During a partition of `b`'s link: /readyz 503 within the bound and until
 * healed, every publish answered in that time 503 within the bound.
 */
function checkPartition(b: Instance, from: number, healed: number): void {
  const detected = firstSeen(b, from, 503);
  assert.ok(detected !== undefined, "/readyz answered 503");
  assert.ok(
    detected - from <= DETECT_BOUND_MS,
    `/readyz 503 after ${detected - from} ms`,
  );
  assert.ok(
    !b.readiness.some((r) =>
      r.at > detected && r.at < healed && r.status !== 503
    ),
    "/readyz 503 until healed",
  );
  const during = b.outcomes.filter((o) =>
    o.sent >= from && o.answered < healed
  );
  assert.ok(during.length >= 3, `${during.length} publishes to b`);
  for (const o of during) {
    assert.equal(o.status, 503, "no 202 while partitioned");
    // Sent into the partition, an append may be run by Redis once it heals:
    // the answer must not say it was not stored.
    assert.match(
      o.error!,
      /^Cannot publish: the engine's Redis \(redis:\/\/127\.0\.0\.1:\d+\) (is not connected|did not confirm that it stored the event: Redis did not answer within 1000 ms)$/,
    );
    assert.ok(
      o.answered - o.sent <= DETECT_BOUND_MS,
      `a publish answered after ${o.answered - o.sent} ms`,
    );
  }
}
