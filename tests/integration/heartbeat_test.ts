/**
 * Heartbeats (issue 4): half-open peers are found and dropped, live ones
 * are kept, SSE streams get comments, and a relay whose upstream goes silent
 * reconnects.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  connectSse,
  connectWs,
  RUNTIME,
  type Service,
  startService,
  waitFor,
} from "./_helpers.ts";
import {
  metric,
  rawConnect,
  type RawWs,
  serverSideState,
  startSilentUpstream,
} from "./_raw_ws.ts";

const HEARTBEAT_MS = 1000;

/**
 * How long after its handshake a peer that never answers may stay
 * connected. On every runtime (Deno's CLI serves through node:http and ws
 * like Node) the service pings every sink each heartbeat and terminates one
 * that did not pong since the previous beat, so a peer goes between 1 and 2
 * intervals after it connects (the first beat comes up to 1 interval after
 * the handshake, the terminating one 1 interval later). 3.5 s leaves 1.5 s
 * for timers on a loaded 2-core machine.
 */
const DROP_BOUND_MS = 3500;

async function waitForSubscribers(hub: Service, n: number): Promise<void> {
  const deadline = Date.now() + 5000;
  while (true) {
    const ws = await metric(
      hub.http,
      "wsevent_subscribers",
      '{transport="websocket"}',
    );
    const sse = await metric(
      hub.http,
      "wsevent_subscribers",
      '{transport="sse"}',
    );
    if (ws + sse === n) return;
    if (Date.now() > deadline) {
      throw new Error(`Expected ${n} subscribers, have ${ws + sse}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Waits until the server side of `client`'s connection is no longer ESTABLISHED; returns ms since `since`. */
async function droppedAfter(
  hub: Service,
  client: RawWs,
  since: number,
  timeoutMs: number,
): Promise<number> {
  const port = client.socket.localPort!;
  await waitFor(
    () => serverSideState(hub.port, port) !== "01",
    timeoutMs,
    "the server to drop the connection",
  ).catch(() => {});
  return Date.now() - since;
}

describe("heartbeats", { timeout: 60_000 }, () => {
  test(
    `--heartbeat ${HEARTBEAT_MS}: a peer that reads but never answers pings, and one that stops reading, are dropped within ${DROP_BOUND_MS} ms of their handshake`,
    { timeout: 30_000 },
    async () => {
      const hub = await startService([
        "--serve-address",
        "127.0.0.1:0",
        "--no-produce",
        "--heartbeat",
        String(HEARTBEAT_MS),
      ]);
      const clients: RawWs[] = [];
      try {
        const start = Date.now();
        const deaf = await rawConnect(hub.url, {
          autoPong: false,
          autoClose: false,
        });
        const stalled = await rawConnect(hub.url, {
          pauseAfterHandshake: true,
          autoPong: false,
          autoClose: false,
        });
        clients.push(deaf, stalled);
        const connected = Date.now();
        assert.equal(deaf.status, 101);
        assert.equal(stalled.status, 101);
        const [deafMs, stalledMs] = await Promise.all([
          droppedAfter(hub, deaf, connected, DROP_BOUND_MS + 3000),
          droppedAfter(hub, stalled, start, DROP_BOUND_MS + 3000),
        ]);
        console.log(
          `[${RUNTIME}] dropped after: not answering pings ${deafMs} ms (pings seen ${deaf.pings}, close frame ${
            JSON.stringify(deaf.closeFrame)
          }), not reading ${stalledMs} ms`,
        );
        assert.ok(deaf.pings >= 1, "the server pinged the deaf peer");
        assert.ok(
          deafMs <= DROP_BOUND_MS,
          `peer not answering pings held for ${deafMs} ms`,
        );
        assert.ok(
          stalledMs <= DROP_BOUND_MS,
          `peer not reading held for ${stalledMs} ms`,
        );
        await waitForSubscribers(hub, 0);
        // Still serving.
        assert.equal((await fetch(`${hub.http}/healthz`)).status, 200);
      } finally {
        for (const client of clients) client.destroy();
        await hub.stop();
      }
    },
  );

  test(
    `--heartbeat ${HEARTBEAT_MS}: well-behaved WebSocket clients stay connected across 4 intervals; JSON clients see heartbeat messages; SSE gets ": heartbeat" comments`,
    { timeout: 30_000 },
    async () => {
      const hub = await startService([
        "--serve-address",
        "127.0.0.1:0",
        "--no-produce",
        "--heartbeat",
        String(HEARTBEAT_MS),
      ]);
      const ws = connectWs(hub.url);
      const json = connectWs(`${hub.url}?format=json`);
      const sse = connectSse(`${hub.http}/events`);
      let polite: RawWs | undefined;
      try {
        polite = await rawConnect(hub.url, { autoPong: true });
        await Promise.all([ws.opened, json.opened, sse.headers]);
        await waitForSubscribers(hub, 4);
        const start = Date.now();
        await waitFor(
          () => Date.now() - start >= 4 * HEARTBEAT_MS + 300,
          10_000,
          "4 intervals",
        );
        const comments = sse.raw().split(": heartbeat\n\n").length - 1;
        const jsonBeats = json.messages.filter((m) =>
          m === '{"type":"heartbeat"}'
        ).length;
        console.log(
          `[${RUNTIME}] after 4 intervals: SSE comments ${comments}, JSON heartbeats ${jsonBeats}, pings to a polite raw client ${polite.pings}`,
        );
        assert.equal(ws.isClosed(), false);
        assert.equal(json.isClosed(), false);
        assert.equal(polite.isEnded(), false);
        assert.equal(polite.closeFrame, null);
        assert.ok(comments >= 3, `${comments} SSE heartbeat comments`);
        assert.ok(jsonBeats >= 3, `${jsonBeats} JSON heartbeats`);
        assert.ok(polite.pings >= 1, "the polite client was pinged");
        await waitForSubscribers(hub, 4);
        const response = await fetch(`${hub.http}/events`, {
          method: "POST",
          body: "still here",
        });
        assert.equal(response.status, 202);
        await waitFor(
          () =>
            ws.messages.includes("still here") &&
            json.messages.some((m) => m.includes("still here")) &&
            sse.messages.some((m) => m.data === "still here") &&
            polite!.messages.includes("still here"),
          5_000,
          "the event on every client",
        );
      } finally {
        polite?.destroy();
        ws.close();
        json.close();
        sse.close();
        await hub.stop();
      }
    },
  );

  for (const kind of ["ws", "sse"] as const) {
    test(
      `a relay whose ${kind} upstream says one heartbeat and goes silent reconnects within ${
        2 * HEARTBEAT_MS + 1500
      } ms`,
      { timeout: 30_000 },
      async () => {
        const upstream = await startSilentUpstream(kind);
        const url = kind === "ws"
          ? `ws://127.0.0.1:${upstream.port}/events`
          : `http://127.0.0.1:${upstream.port}/events`;
        let relay: Service | undefined;
        try {
          relay = await startService([
            "--consume-url",
            url,
            "--no-produce",
            "--serve-address",
            "127.0.0.1:0",
            "--heartbeat",
            String(HEARTBEAT_MS),
            "--verbose",
          ]);
          await waitFor(
            () => upstream.accepted.length >= 2,
            2 * HEARTBEAT_MS + 6000,
            "a second connection to the silent upstream",
          );
          const gap = upstream.accepted[1] - upstream.accepted[0];
          const log = relay.stderr();
          console.log(
            `[${RUNTIME}] ${kind} upstream: reconnected after ${gap} ms`,
          );
          // Silence is judged after 2 intervals (checked every half
          // interval), then the first retry waits 125-250 ms.
          assert.ok(
            gap >= 2 * HEARTBEAT_MS - 100,
            `reconnected after ${gap} ms: too early`,
          );
          assert.ok(
            gap <= 2 * HEARTBEAT_MS + 1500,
            `reconnected after ${gap} ms`,
          );
          assert.match(log, /went silent/);
          await waitFor(
            () => (relay!.stderr().match(/connected to/g) ?? []).length >= 2,
            2000,
            "a second 'connected to' line",
          );
          assert.ok(
            (relay.stderr().match(/connecting to/g) ?? []).length >= 2,
            "two 'connecting to' lines",
          );
          assert.equal(relay.proc.exitCode, null, "the relay is still running");
        } finally {
          await relay?.stop();
          await upstream.close();
        }
      },
    );
  }
});
