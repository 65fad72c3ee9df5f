/**
 * A partition between a relay and its origin that lasts longer than the
 * origin's replay buffer can cover (issue 18): origin (`-buffer 20`) ->
 * fault proxy -> relay -> subscribers (WebSocket and SSE, client module).
 * While the link is stalled (no FIN, no RST) the origin takes more events
 * than its buffer holds. After healing, the relay resumes, the origin can
 * no longer replay from its last id, and every subscriber must get
 * exactly one gap notice, at the hole, with nothing lost outside it,
 * nothing twice and nothing out of order; the relay counts the notices it
 * sent.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { startFaultProxy } from "./_fault_proxy.ts";
import {
  type LoggedSubscriber,
  subscribeWsAndSse,
} from "./_logged_subscriber.ts";
import {
  publish,
  RUNTIME,
  type Service,
  startService,
  waitFor,
} from "./_helpers.ts";
import { metricIn } from "./_raw_ws.ts";

const HEARTBEAT_MS = 1000;
const ORIGIN_BUFFER = 20;
/** Events published while the link is down: well over the buffer. */
const DURING = 60;

async function gapsSent(service: Service): Promise<number> {
  const text = await (await fetch(`${service.http}/metrics`)).text();
  return metricIn(text, "wsevent_gaps_total");
}

test(
  `faults on ${RUNTIME}: a relay partitioned from its origin for longer than the origin's buffer: one gap notice at the hole for each subscriber, nothing else lost, twice or out of order`,
  { timeout: 90_000 },
  async () => {
    const common = [
      "-verbose",
      "-serve-address",
      "127.0.0.1:0",
      "-no-produce",
      "-heartbeat",
      String(HEARTBEAT_MS),
    ];
    const origin = await startService([
      ...common,
      "-buffer",
      String(ORIGIN_BUFFER),
    ]);
    const proxy = await startFaultProxy(origin.port).catch(async (error) => {
      await origin.stop();
      throw error;
    });
    let relay: Service | undefined;
    const subscribers: LoggedSubscriber[] = [];
    try {
      relay = await startService([
        ...common,
        "-buffer",
        "5000",
        "-consume-url",
        `ws://127.0.0.1:${proxy.port}/events`,
      ]);
      const at = `127.0.0.1:${relay.port}/events`;
      await subscribeWsAndSse(at, HEARTBEAT_MS, subscribers);
      const published: string[] = [];
      const send = async (n: number) => {
        for (let i = 0; i < n; i++) {
          published.push(
            await publish(origin.http, "events", `e${published.length}`),
          );
        }
      };
      await send(5);
      const arrived = (id: string) => () =>
        subscribers.every((s) => s.log.includes(id));
      await waitFor(arrived(published.at(-1)!), 15_000, "events before");
      const gapsBefore = await gapsSent(relay);

      const from = Date.now();
      proxy.set({ kind: "stall" });
      await send(DURING);
      // The relay finds the partition (and keeps trying into it).
      const stderr = relay.stderr;
      await waitFor(
        () => /went silent/.test(stderr().split("\n").slice(-200).join("\n")),
        10_000,
        "the relay to find the partition",
      );
      const left = 3.5 * HEARTBEAT_MS - (Date.now() - from);
      if (left > 0) await new Promise((r) => setTimeout(r, left));
      proxy.set({ kind: "none" });
      await send(5);
      await waitFor(arrived(published.at(-1)!), 20_000, "events after");

      for (const subscriber of subscribers) {
        const { name, log } = subscriber;
        const ids = log.filter((x) => x !== "GAP");
        assert.equal(
          log.length - ids.length,
          1,
          `${name}: one gap notice (${log.join(" ")})`,
        );
        assert.equal(new Set(ids).size, ids.length, `${name}: no duplicate`);
        const at = ids.map((id) => published.indexOf(id));
        assert.ok(at.every((i) => i >= 0), `${name}: only published ids`);
        for (let i = 1; i < at.length; i++) {
          assert.ok(at[i] > at[i - 1], `${name}: in order (${log.join(" ")})`);
        }
        // One hole, exactly where the notice is, no wider than what the
        // origin's buffer could not hold.
        const gap = log.indexOf("GAP");
        const before = published.indexOf(log[gap - 1]);
        const after = published.indexOf(log[gap + 1]);
        assert.deepEqual(
          at,
          [
            ...Array.from({ length: before + 1 }, (_, i) => i),
            ...Array.from(
              { length: published.length - after },
              (_, i) => after + i,
            ),
          ],
          `${name}: nothing lost outside the gap (${log.join(" ")})`,
        );
        // The origin's buffer held the last ORIGIN_BUFFER events published
        // when the relay resumed, at the latest after the last one.
        const missing = after - before - 1;
        assert.ok(
          missing >= 1 &&
            missing <= published.length - (before + 1) - ORIGIN_BUFFER,
          `${name}: ${missing} events in the gap`,
        );
      }
      assert.equal(
        (await gapsSent(relay)) - gapsBefore,
        subscribers.length,
        "the relay counts one notice per subscriber",
      );
    } finally {
      for (const subscriber of subscribers) subscriber.upstream.close();
      await proxy.close();
      await relay?.stop();
      await origin.stop();
    }
  },
);
