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
  startHub,
  startRelay,
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
 * The period of the drop test. On every runtime (Deno's CLI serves through
 * node:http and ws like Node) the service pings every sink each heartbeat
 * and terminates one that did not pong since the previous beat: a peer that
 * never answers goes one period after its first ping, and between 1 and 2
 * periods after its handshake (the first beat comes up to 1 period after
 * it). The bounds below are one period more than that, 1.5 s for timers on
 * a loaded 2-core machine.
 */
const DROP_HEARTBEAT_MS = 1500;

/**
 * The period of the relay tests: the relay judges an upstream silent after
 * 1.5 periods without a byte, checking ten times a period, so it notices
 * between 1.5 and 1.6 periods after the last byte; bounded by 2 periods plus
 * a second for timers on a loaded machine.
 */
const RELAY_HEARTBEAT_MS = 2000;

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
    `--heartbeat ${DROP_HEARTBEAT_MS}: a peer that reads but never answers pings is dropped within 2 periods of its first ping (1 expected), and one that stops reading within 3 periods of its handshake (2 expected)`,
    { timeout: 30_000 },
    async () => {
      const hub = await startHub([
        "--heartbeat",
        String(DROP_HEARTBEAT_MS),
      ]);
      const clients: RawWs[] = [];
      try {
        const deaf = await rawConnect(hub.url, {
          autoPong: false,
          autoClose: false,
        });
        const stalled = await rawConnect(hub.url, {
          pauseAfterHandshake: true,
          autoPong: false,
          autoClose: false,
        });
        const stalledAt = Date.now();
        clients.push(deaf, stalled);
        assert.equal(deaf.status, 101);
        assert.equal(stalled.status, 101);
        const bound = 2 * DROP_HEARTBEAT_MS;
        const [deafMs, stalledMs] = await Promise.all([
          (async () => {
            await waitFor(
              () => deaf.pings >= 1,
              bound,
              "the first ping to the peer that does not answer",
            );
            return await droppedAfter(hub, deaf, Date.now(), bound + 3000);
          })(),
          droppedAfter(hub, stalled, stalledAt, 3 * DROP_HEARTBEAT_MS + 3000),
        ]);
        console.log(
          `[${RUNTIME}] dropped after: not answering pings ${deafMs} ms (pings seen ${deaf.pings}, close frame ${
            JSON.stringify(deaf.closeFrame)
          }), not reading ${stalledMs} ms`,
        );
        assert.ok(
          deafMs <= bound,
          `peer not answering pings held for ${deafMs} ms after its first ping`,
        );
        // Dropped at the beat after its first unanswered ping, not pinged
        // again: a timing-free check that one missed pong is enough (a
        // bound of 2 periods cannot tell 1 missed pong from 2).
        await waitFor(() => deaf.isEnded(), 5000, "the dropped peer's end");
        assert.equal(
          deaf.pings,
          1,
          `the peer not answering pings was pinged ${deaf.pings} times before it was dropped`,
        );
        assert.ok(
          stalledMs <= 3 * DROP_HEARTBEAT_MS,
          `peer not reading held for ${stalledMs} ms after its handshake`,
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
      const hub = await startHub([
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
      `--heartbeat ${RELAY_HEARTBEAT_MS}: a relay whose ${kind} upstream says one heartbeat and goes silent notices within 1.5 to 2 periods (given a second of load) and reconnects after the retry delay it logs`,
      { timeout: 30_000 },
      async () => {
        const upstream = await startSilentUpstream(kind);
        const url = kind === "ws"
          ? `ws://127.0.0.1:${upstream.port}/events`
          : `http://127.0.0.1:${upstream.port}/events`;
        let relay: Service | undefined;
        try {
          relay = await startRelay(url, [
            "--heartbeat",
            String(RELAY_HEARTBEAT_MS),
            "--verbose",
          ]);
          await waitFor(
            () => upstream.accepted.length >= 2,
            3 * RELAY_HEARTBEAT_MS + 6000,
            "a second connection to the silent upstream",
          );
          // The fake sends its one heartbeat as it accepts: silence starts
          // there. The reconnection comes after the retry delay the relay
          // logs with the reason, so what is left is when it noticed.
          const gap = upstream.accepted[1] - upstream.accepted[0];
          const log = relay.stderr();
          const retry = /went silent; retrying in (\d+) ms/.exec(log);
          assert.ok(retry, `no 'went silent; retrying in' line:\n${log}`);
          const retryMs = Number(retry[1]);
          const noticed = gap - retryMs;
          console.log(
            `[${RUNTIME}] ${kind} upstream: noticed silence after ${noticed} ms, reconnected after ${gap} ms`,
          );
          assert.ok(retryMs <= 250, `first retry after ${retryMs} ms`);
          // Silence of 1.5 periods, checked ten times a period: within
          // two periods of the last byte, a second allowed for load.
          assert.ok(
            noticed >= 1.5 * RELAY_HEARTBEAT_MS - 100,
            `noticed after ${noticed} ms: too early`,
          );
          assert.ok(
            noticed <= 2 * RELAY_HEARTBEAT_MS + 1000,
            `noticed after ${noticed} ms`,
          );
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
