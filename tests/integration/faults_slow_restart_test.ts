/**
 * A subscriber behind a bandwidth cap while its relay restarts (issue 18):
 * origin -> relay (restarted on the same port mid-stream) -> fault proxy
 * at 1 KB/s a connection (below the stream's rate, so a backlog builds) ->
 * a WebSocket and an SSE subscriber (client module: reconnect and
 * resume). After the restart and the backlog, each has every event once
 * and in order, with no gap notice: the restarted relay replays the
 * origin's buffer before it serves a resume.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { startFaultProxy } from "./_fault_proxy.ts";
import {
  type LoggedSubscriber,
  subscribeWsAndSse,
} from "./_logged_subscriber.ts";
import {
  freePort,
  publish,
  relayConnected,
  RUNTIME,
  type Service,
  startService,
  waitFor,
} from "./_helpers.ts";

const HEARTBEAT_MS = 1000;

test(
  `faults on ${RUNTIME}: subscribers behind a 1 KB/s cap while their relay restarts: every event once and in order, no gap`,
  { timeout: 120_000 },
  async () => {
    const common = [
      "-no-produce",
      "-heartbeat",
      String(HEARTBEAT_MS),
      "-buffer",
      "5000",
    ];
    const origin = await startService([
      ...common,
      "-serve-address",
      "127.0.0.1:0",
    ]);
    const port = await freePort();
    const relayArgs = [
      ...common,
      "-verbose",
      "-serve-address",
      `127.0.0.1:${port}`,
      "-consume-url",
      `ws://127.0.0.1:${origin.port}/events`,
    ];
    let relay: Service | undefined;
    let proxy: Awaited<ReturnType<typeof startFaultProxy>> | undefined;
    const subscribers: LoggedSubscriber[] = [];
    try {
      relay = await startService(relayArgs);
      await relayConnected(relay, 15_000);
      proxy = await startFaultProxy(port);
      proxy.set({ kind: "bandwidth", bytesPerSecond: 1024 });
      const at = `127.0.0.1:${proxy.port}/events`;
      await subscribeWsAndSse(at, HEARTBEAT_MS, subscribers);
      const published: string[] = [];
      const send = async (n: number) => {
        for (let i = 0; i < n; i++) {
          published.push(
            await publish(
              origin.http,
              "events",
              `event ${published.length} `.padEnd(200, "x"),
            ),
          );
          await new Promise((r) => setTimeout(r, 40));
        }
      };
      // About 5 KB/s of events over a 1 KB/s link: a backlog of 4 KB
      // builds, and the relay restarts on the same port while it drains.
      await send(20);
      const opens = subscribers.map((s) => s.opened);
      // The cap did hold events back when the relay went away.
      const behind = subscribers.map((s) => published.length - s.log.length);
      assert.ok(behind.every((n) => n > 0), `events behind: ${behind}`);
      await relay.stop("SIGTERM");
      relay = await startService(relayArgs);
      await send(10);
      await waitFor(
        () => subscribers.every((s, i) => s.opened > opens[i]),
        30_000,
        "subscribers back on the restarted relay",
      );
      const last = published.at(-1)!;
      await waitFor(
        () => subscribers.every((s) => s.log.includes(last)),
        60_000,
        `every subscriber to get ${last}`,
      );
      for (const { name, log } of subscribers) {
        assert.deepEqual(
          log,
          published,
          `${name}: every event once and in order, no gap`,
        );
      }
    } finally {
      for (const subscriber of subscribers) subscriber.upstream.close();
      await proxy?.close();
      await relay?.stop();
      await origin.stop();
    }
  },
);
