/**
 * Slow consumers (issue 4): a subscriber that stops reading is disconnected
 * (or skipped ahead) without delaying the others, and the server's memory
 * stays bounded.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createConnection } from "node:net";
import process from "node:process";
import {
  connectSse,
  connectWs,
  RUNTIME,
  type Service,
  startHub,
  waitFor,
} from "./_helpers.ts";
import {
  metric,
  publishMany,
  rawConnect,
  type RawWs,
  rssOf,
  serverSideState,
} from "./_raw_ws.ts";

const MB = 1 << 20;

/**
 * RSS growth allowed while 10,000 1 KB events go to three subscribers and a
 * stalled one. Measured on a 2-core machine (max growth seen): node 156 MB
 * (V8 grows its heap with the allocation rate, with or without the stalled
 * subscriber), deno 108 MB, bun 47 MB. 10,000 x 1 KB kept for the stalled
 * subscriber is only 10 MB, lost in that noise: the 64 KB test below is the
 * one that tells a bounded queue from an unbounded one.
 */
const RSS_BOUND_1K: Record<typeof RUNTIME, number> = {
  node: 220 * MB,
  deno: 170 * MB,
  bun: 110 * MB,
};

/**
 * RSS growth allowed for the second of two runs of 64 KB events (1,000 to
 * warm the heap up, then 3,000 measured: 192 MB that an unbounded queue would
 * keep for the subscriber that never reads). Measured second-run growth with
 * the bounded queue (2 MB) vs an effectively unbounded one
 * (`WSEVENT_TEST_MAX_QUEUE=2147483648`, which makes this test fail as it
 * should): node 37-70 MB vs 244 MB, deno 17 MB vs 223 MB, bun 6 MB vs
 * 495 MB. With 1,500 events and a 64 MB bound
 * this test failed once on node under the full suite's load (78 MB): V8's
 * heap growth while the 64 KB buffers churn is that noisy, so the measured
 * run is longer and the bound wider, and the gap to an unbounded queue
 * grew.
 */
const RSS_BOUND_64K = 100 * MB;

/** A hub's flags for a 256 KiB queue bound, for events of 64 KB. */
const SMALL_QUEUE_ARGS = [
  "--max-queue",
  String(256 * 1024),
  "--max-body",
  String(128 * 1024),
];

/** Events in the measured run: 192 MB that an unbounded queue would keep. */
const SECOND_RUN = 3000;

interface Envelope {
  id?: string;
  data?: string;
  type?: string;
}

function seq(id: string): number {
  return Number(id.slice(id.lastIndexOf("-") + 1));
}

function payload(i: number, size: number): string {
  const head = `${i}:`;
  return head + "x".repeat(size - head.length);
}

/**
 * Events a JSON subscriber got, without parsing: control messages (a
 * heartbeat every 15 s on a slow run) start with `{"type"`.
 */
function eventCount(client: { messages: string[] }): number {
  let n = 0;
  for (const m of client.messages) if (!m.startsWith('{"type"')) n++;
  return n;
}

/**
 * Waits for `promise`, at most `ms`, leaving no timer behind (a pending
 * timer would keep the test process alive after its tests).
 */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    promise,
    new Promise((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}

/** Samples the child's RSS every 25 ms; `stop()` returns the largest value seen. */
function sampleRss(pid: number): { stop(): number } {
  let max = rssOf(pid);
  const timer = setInterval(() => (max = Math.max(max, rssOf(pid))), 25);
  return {
    stop() {
      clearInterval(timer);
      return Math.max(max, rssOf(pid));
    },
  };
}

/**
 * Publishes 64 KB events in batches of `batch` (two connections) until the
 * instance's counter `name` is above 0; fails with `failure` past `limit`
 * events.
 *
 * @returns How many events were published.
 */
async function publishUntilCounted(
  hub: Service,
  name: string,
  batch: number,
  limit: number,
  failure: string,
): Promise<number> {
  let sent = 0;
  while (await metric(hub.http, name) < 1) {
    assert.ok(sent < limit, failure);
    await publishMany(
      hub.port,
      "events",
      batch,
      (i) => payload(sent + i, 64 * 1024),
      2,
    );
    sent += batch;
  }
  return sent;
}

/**
 * Publishes 64 KB events in batches until the instance has closed a slow
 * subscriber; fails past `limit` events.
 *
 * @returns How many events were published.
 */
function publishUntilSlowClosed(
  hub: Service,
  batch: number,
  limit: number,
  what: string,
): Promise<number> {
  return publishUntilCounted(
    hub,
    "wsevent_slow_consumer_disconnects_total",
    batch,
    limit,
    `${what} was never closed`,
  );
}

/**
 * Polls the slow-close count beside the test's publishing; `closedAt` is
 * when it first went above 0 (or when `stop()` was called, if earlier).
 */
function watchSlowClose(
  hub: Service,
): { closedAt: Promise<number>; stop(): void } {
  let closedAt = 0;
  const polled = (async () => {
    while (closedAt === 0) {
      const closes = await metric(
        hub.http,
        "wsevent_slow_consumer_disconnects_total",
      ).catch(() => 0);
      if (closes > 0 && closedAt === 0) closedAt = Date.now();
      else await new Promise((r) => setTimeout(r, 10));
    }
    return closedAt;
  })();
  return {
    closedAt: polled,
    stop() {
      if (closedAt === 0) closedAt = Date.now();
    },
  };
}

/**
 * Publishes 64 KB events in batches of 50 until the subscriber on
 * `clientPort` is closed as slow (see {@link publishUntilSlowClosed}), then
 * gives the server 6 s at most to drop that connection. The close is noticed
 * by a poller running beside the publishing (not only between batches), so
 * `held` is within one metrics request of the time from the close.
 *
 * @returns How many events were published, and the ms from the close to now.
 */
async function publishUntilLetGo(
  hub: Service,
  clientPort: number,
  limit: number,
  what: string,
): Promise<{ sent: number; held: number }> {
  const watching = watchSlowClose(hub);
  const sent = await publishUntilSlowClosed(hub, 50, limit, what).finally(
    () => watching.stop(),
  );
  const closedAt = await watching.closedAt;
  await waitFor(
    () => serverSideState(hub.port, clientPort) !== "01",
    6_000,
    "the server to drop the connection",
  ).catch(() => {});
  return { sent, held: Date.now() - closedAt };
}

async function subscribers(hub: Service): Promise<number> {
  return await metric(
    hub.http,
    "wsevent_subscribers",
    '{transport="websocket"}',
  ) + await metric(hub.http, "wsevent_subscribers", '{transport="sse"}');
}

async function waitForCount(hub: Service, n: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (await subscribers(hub) !== n) {
    if (Date.now() > deadline) {
      throw new Error(
        `Expected ${n} subscribers, have ${await subscribers(hub)}`,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function waitForMetric(
  hub: Service,
  name: string,
  check: (value: number) => boolean,
  timeoutMs: number,
): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  while (true) {
    const value = await metric(hub.http, name);
    if (check(value)) return value;
    if (Date.now() > deadline) {
      throw new Error(`Timed out waiting for ${name}: last value ${value}`);
    }
    await new Promise((r) => setTimeout(r, 25));
  }
}

describe("slow consumers", { timeout: 90_000 }, () => {
  test(
    "a subscriber that never reads is disconnected as slow (and only it) while WS, WS json and SSE subscribers get all 10,000 1 KB events in order",
    { timeout: 60_000 },
    async () => {
      const count = 10_000;
      const hub = await startHub([
        "--max-queue",
        "262144",
      ]);
      let slow: RawWs | undefined;
      const ws = connectWs(hub.url);
      const json = connectWs(`${hub.url}?format=json`);
      const sse = connectSse(`${hub.http}/events`);
      try {
        slow = await rawConnect(hub.url, { pauseAfterHandshake: true });
        assert.equal(slow.status, 101);
        await Promise.all([ws.opened, json.opened, sse.headers]);
        await waitForCount(hub, 4);
        const pid = hub.proc.pid!;
        const rssBefore = rssOf(pid);
        const rss = sampleRss(pid);
        const started = Date.now();
        let slowClosedAt = 0;
        // For the log line: when the stalled subscriber was closed.
        void waitForMetric(
          hub,
          "wsevent_slow_consumer_disconnects_total",
          (v) => v >= 1,
          30_000,
        ).then(() => (slowClosedAt = Date.now()), () => {});
        const lastPublish = await publishMany(
          hub.port,
          "events",
          count,
          (i) => payload(i, 1024),
        );
        const events = (): Envelope[] =>
          json.messages.map((m) => JSON.parse(m) as Envelope).filter((m) =>
            m.type === undefined
          );
        // Counts only while waiting (no parsing of 10,000 messages every
        // poll).
        await waitFor(
          () =>
            ws.messages.length >= count && eventCount(json) >= count &&
            sse.messages.length >= count,
          20_000,
          "all 10,000 events on the three normal subscribers",
        ).catch((error) => {
          throw new Error(
            `${error.message} (received ws ${ws.messages.length}, json ${
              eventCount(json)
            }, sse ${sse.messages.length}; closed ws ${ws.isClosed()}, json ${json.isClosed()})`,
          );
        });
        const lastDelivered = Date.now();
        const growth = rss.stop() - rssBefore;
        // By now the stalled subscriber has had 10 MB sent its way against
        // a 256 KiB bound: it must have been closed as slow.
        await waitForMetric(
          hub,
          "wsevent_slow_consumer_disconnects_total",
          (v) => v >= 1,
          5_000,
        ).catch(() => {});
        assert.equal(
          await metric(hub.http, "wsevent_slow_consumer_disconnects_total"),
          1,
          "the subscriber that never reads was closed as slow, and only it (5 s after the three others had every event)",
        );
        console.log(
          `[${RUNTIME}] 10,000 x 1 KB: published in ${
            lastPublish - started
          } ms, last delivered ${
            lastDelivered - lastPublish
          } ms after the last publish, slow subscriber closed after ${
            slowClosedAt - started
          } ms, RSS ${(rssBefore / MB).toFixed(1)} MB + ${
            (growth / MB).toFixed(1)
          } MB`,
        );
        // All of them, in order, none lost or repeated.
        const received = events();
        assert.equal(received.length, count);
        assert.deepEqual(
          received.map((e) => seq(e.id!)),
          Array.from({ length: count }, (_, i) => i),
        );
        assert.deepEqual(
          sse.messages.map((m) => m.id),
          received.map((e) => e.id),
        );
        assert.deepEqual(ws.messages, received.map((e) => e.data));
        assert.deepEqual(
          new Set(received.map((e) => Number(e.data!.split(":")[0]))).size,
          count,
        );
        // Not held back by the stalled one (which would stall them for good:
        // the bound is wide for a loaded machine).
        assert.ok(
          lastDelivered - lastPublish < 5000,
          `last event delivered ${
            lastDelivered - lastPublish
          } ms after the last publish`,
        );
        // The stalled one was disconnected, and only it.
        assert.equal(await subscribers(hub), 3);
        assert.equal(
          await metric(
            hub.http,
            "wsevent_subscribers",
            '{transport="websocket"}',
          ),
          2,
        );
        assert.equal(ws.isClosed() || json.isClosed(), false);
        // A sanity bound only: 10,000 x 1 KB kept for the stalled
        // subscriber is 10 MB, lost in V8's heap noise, so the 64 KB test
        // below is the one that tells a bounded queue from an unbounded one.
        assert.ok(
          growth < RSS_BOUND_1K[RUNTIME],
          `RSS grew by ${(growth / MB).toFixed(1)} MB`,
        );
        // Reading again (long after the server's 1 s close timeout), it
        // finds the connection ended after a gapless prefix of the stream.
        // Whether the 1008 close frame is still among what it reads depends
        // on the kernel (the server dropped the connection): the test "a
        // slow subscriber that reads again at once" checks the close frame.
        slow.resume();
        await within(slow.ended, 10_000);
        assert.equal(slow.isEnded(), true, "the TCP connection ended");
        assert.ok(slow.messages.length < count, "it did not get everything");
        assert.deepEqual(
          slow.messages,
          ws.messages.slice(0, slow.messages.length),
          "what it read is the start of what the others got",
        );
      } finally {
        slow?.destroy();
        ws.close();
        json.close();
        sse.close();
        await hub.stop();
      }
    },
  );

  test(
    `64 KB events: after a warm-up, 3,000 more (192 MB) past a subscriber that never reads grow RSS by less than ${
      RSS_BOUND_64K / MB
    } MB`,
    { timeout: 60_000 },
    async () => {
      const count = 1000;
      const hub = await startHub([
        "--max-queue",
        process.env.WSEVENT_TEST_MAX_QUEUE ?? String(2 * MB),
        "--max-body",
        String(128 * 1024),
      ]);
      const json = connectWs(`${hub.url}?format=json`);
      const slow: RawWs[] = [];
      try {
        await json.opened;
        const pid = hub.proc.pid!;
        const run = async (from: number, n: number): Promise<number> => {
          const before = rssOf(pid);
          const rss = sampleRss(pid);
          await publishMany(
            hub.port,
            "events",
            n,
            (i) => payload(from + i, 64 * 1024),
            2,
          );
          await waitFor(
            () => eventCount(json) >= from + n,
            20_000,
            "the normal subscriber to get every event",
          );
          return rss.stop() - before;
        };
        // Warm-up: the same load with the stalled subscriber's twin, so the
        // heap has grown to what this load needs.
        slow.push(await rawConnect(hub.url, { pauseAfterHandshake: true }));
        const first = await run(0, count);
        slow.push(await rawConnect(hub.url, { pauseAfterHandshake: true }));
        const second = await run(count, SECOND_RUN);
        console.log(
          `[${RUNTIME}] 1,000 + 3,000 x 64 KB: RSS_SEEN first run +${
            (first / MB).toFixed(1)
          } MB, second run +${(second / MB).toFixed(1)} MB`,
        );
        assert.equal(
          await metric(hub.http, "wsevent_slow_consumer_disconnects_total"),
          2,
        );
        assert.equal(json.isClosed(), false);
        assert.equal(eventCount(json), count + SECOND_RUN);
        assert.ok(
          second < RSS_BOUND_64K,
          `RSS grew by ${(second / MB).toFixed(1)} MB in the second run`,
        );
      } finally {
        for (const s of slow) s.destroy();
        json.close();
        await hub.stop();
      }
    },
  );

  test(
    "a slow subscriber that reads again at once finds close code 1008 and a reason naming the limit after its queued events (bun: the connection is dropped without one)",
    { timeout: 30_000 },
    async () => {
      const hub = await startHub(SMALL_QUEUE_ARGS);
      let slow: RawWs | undefined;
      try {
        slow = await rawConnect(`${hub.url}?format=json`, {
          pauseAfterHandshake: true,
        });
        const sent = await publishUntilSlowClosed(
          hub,
          10,
          2000,
          "the slow subscriber",
        );
        slow.resume();
        await within(slow.ended, 5000);
        console.log(
          `[${RUNTIME}] closed as slow after ${sent} x 64 KB; read ${slow.messages.length} events, then ${
            JSON.stringify(slow.closeFrame)
          }`,
        );
        assert.equal(slow.isEnded(), true);
        if (RUNTIME === "bun") {
          // src/runtime/bun.ts drops a slow subscriber at once: Bun cannot
          // drop a socket once it is closing, and the close frame would wait
          // behind the queue of a peer that may never read.
          assert.equal(slow.closeFrame, null);
        } else {
          assert.equal(slow.closeFrame?.code, 1008);
          assert.match(
            slow.closeFrame?.reason ?? "",
            /slow consumer: \d+ bytes queued, limit 262144/,
          );
        }
        // What it got before the close is a gapless prefix of the stream:
        // all of it when the close came with the last event of a batch
        // (the publisher stops between batches), never more.
        const seqs = slow.messages.map((m) => seq(JSON.parse(m).id));
        assert.ok(
          seqs.length > 0 && seqs.length <= sent,
          `read ${seqs.length} of ${sent}`,
        );
        assert.deepEqual(seqs, seqs.map((_, i) => i));
      } finally {
        slow?.destroy();
        await hub.stop();
      }
    },
  );

  test(
    "the server lets go of a slow subscriber's connection 1 s after closing it (its close timeout; 2 s allowed on a loaded machine), even if the client never reads",
    { timeout: 30_000 },
    async () => {
      const hub = await startHub(SMALL_QUEUE_ARGS);
      let slow: RawWs | undefined;
      try {
        slow = await rawConnect(hub.url, { pauseAfterHandshake: true });
        const clientPort = slow.socket.localPort!;
        assert.equal(serverSideState(hub.port, clientPort), "01");
        // Enough to fill both kernel buffers (a few MB on loopback) and the
        // queue; `held` is close to the timeout.
        const { sent, held } = await publishUntilLetGo(
          hub,
          clientPort,
          2000,
          "the slow subscriber",
        );
        console.log(
          `[${RUNTIME}] slow subscriber closed after ${sent} x 64 KB; server side ${
            serverSideState(hub.port, clientPort)
          } ${held} ms later`,
        );
        assert.notEqual(
          serverSideState(hub.port, clientPort),
          "01",
          `the server still holds the connection ${held} ms after closing it as slow (the close frame waits behind the queue the client never reads)`,
        );
        // Measured from when the test saw the close (after the server made
        // it), so `held` is at most the close timeout (1 s) plus timer and
        // polling delays: 1.75 s allows for a loaded machine and still
        // fails a timeout of 2 s.
        assert.ok(held <= 1750, `held for ${held} ms`);
      } finally {
        slow?.destroy();
        await hub.stop();
      }
    },
  );

  test(
    "--slow-policy skip: a subscriber that stops reading and resumes gets a gap notice, then later events, and stays connected",
    { timeout: 30_000 },
    async () => {
      const hub = await startHub([
        "--slow-policy",
        "skip",
        "--max-queue",
        "262144",
        "--max-body",
        String(128 * 1024),
      ]);
      let lagging: RawWs | undefined;
      const normal = connectWs(`${hub.url}?format=json`);
      try {
        lagging = await rawConnect(`${hub.url}?format=json`, {
          pauseAfterHandshake: true,
        });
        await normal.opened;
        const sent = await publishUntilCounted(
          hub,
          "wsevent_events_dropped_total",
          50,
          2000,
          "nothing was ever dropped for the lagging subscriber",
        );
        lagging.resume();
        // Once it has drained its queue, the next event comes after a gap notice.
        const parsed = (): Envelope[] =>
          lagging!.messages.map((m) => JSON.parse(m) as Envelope);
        let extra = 0;
        while (!parsed().some((m) => m.type === "gap")) {
          assert.ok(extra < 200, "no gap notice");
          await publishMany(hub.port, "events", 1, () => `after-${extra}`, 1);
          extra++;
          await new Promise((r) => setTimeout(r, 20));
        }
        await publishMany(hub.port, "events", 3, (i) => `late-${i}`, 1);
        await waitFor(
          () => parsed().some((m) => m.data === "late-2"),
          5_000,
          "events after the gap",
        );
        const messages = parsed().filter((m) => m.type !== "heartbeat");
        const gapAt = messages.findIndex((m) => m.type === "gap");
        const before = messages.slice(0, gapAt);
        const after = messages.slice(gapAt + 1);
        assert.ok(before.length > 0 && after.length >= 3);
        const gap = messages[gapAt] as Envelope & { lastEventId?: string };
        assert.equal(gap.lastEventId, before.at(-1)!.id);
        const beforeSeqs = before.map((m) => seq(m.id!));
        const afterSeqs = after.map((m) => seq(m.id!));
        assert.deepEqual(
          beforeSeqs,
          beforeSeqs.map((_, i) => beforeSeqs[0] + i),
          "in order before the gap",
        );
        assert.ok(afterSeqs[0] > beforeSeqs.at(-1)! + 1, "events were skipped");
        assert.deepEqual(
          afterSeqs,
          afterSeqs.map((_, i) => afterSeqs[0] + i),
          "in order after the gap",
        );
        assert.equal(lagging.closeFrame, null);
        assert.equal(lagging.isEnded(), false);
        assert.equal(
          await metric(hub.http, "wsevent_slow_consumer_disconnects_total"),
          0,
        );
        assert.ok(await metric(hub.http, "wsevent_gaps_total") >= 1);
        assert.equal(normal.messages.length, sent + extra + 3);
      } finally {
        lagging?.destroy();
        normal.close();
        await hub.stop();
      }
    },
  );

  test(
    "an SSE subscriber that never reads is disconnected as slow (its queue counted by the runtime's SSE output) while a WebSocket subscriber gets every event",
    { timeout: 60_000 },
    async () => {
      const hub = await startHub(SMALL_QUEUE_ARGS);
      const json = connectWs(`${hub.url}?format=json`);
      // Sends the request, then never reads: the kernel buffers fill, then
      // the server's own queue for it.
      const stalled = createConnection({ host: "127.0.0.1", port: hub.port });
      stalled.on("error", () => {});
      const connected = new Promise<void>((ok) =>
        stalled.once("connect", () => ok())
      );
      try {
        await json.opened;
        await connected;
        stalled.write(
          "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
        );
        stalled.pause();
        await waitForCount(hub, 2);
        const clientPort = stalled.localPort!;
        assert.equal(serverSideState(hub.port, clientPort), "01");
        const { sent, held } = await publishUntilLetGo(
          hub,
          clientPort,
          3000,
          "the stalled SSE subscriber",
        );
        console.log(
          `[${RUNTIME}] stalled SSE subscriber: server side ${
            serverSideState(hub.port, clientPort)
          } ${held} ms after its slow close`,
        );
        // As for WebSocket: let go of 1 s after the close (1.75 s allowed).
        assert.notEqual(
          serverSideState(hub.port, clientPort),
          "01",
          `the server still holds the stalled SSE connection ${held} ms after closing it as slow`,
        );
        assert.ok(held <= 1750, `held for ${held} ms`);
        await waitForCount(hub, 1);
        assert.equal(
          await metric(hub.http, "wsevent_subscribers", '{transport="sse"}'),
          0,
        );
        await waitFor(
          () => eventCount(json) >= sent,
          20_000,
          "the WebSocket subscriber to get every event",
        );
        const seqs = json.messages.filter((m) => !m.startsWith('{"type"'))
          .map((m) => seq((JSON.parse(m) as Envelope).id ?? ""));
        assert.deepEqual(seqs, seqs.map((_, i) => i), "all, in order");
        assert.equal(json.isClosed(), false);
        console.log(
          `[${RUNTIME}] stalled SSE subscriber closed after ${sent} x 64 KB`,
        );
      } finally {
        stalled.destroy();
        json.close();
        await hub.stop();
      }
    },
  );
});
