/**
 * SIGTERM to a relay mid-stream, its subscribers behind the fault proxy with
 * latency (issue 18): origin -> relay A and relay B; two WebSocket (JSON)
 * and two SSE subscribers reach A through the proxy (40 ± 30 ms a chunk)
 * while events flow. A gets SIGTERM: every WebSocket subscriber gets a
 * close frame with 1001 through the delay, every SSE stream ends, and each
 * resumes on B from the last id it got, with every event once and in order.
 */

import assert from "node:assert/strict";
import { test } from "node:test";
import { startFaultProxy } from "./_fault_proxy.ts";
import {
  connectSse,
  connectWs,
  publish,
  relayConnected,
  RUNTIME,
  type Service,
  startService,
  waitFor,
} from "./_helpers.ts";

const HEARTBEAT_MS = 1000;

interface Received {
  name: string;
  ids: () => string[];
}

function wsIds(messages: string[]): string[] {
  const ids: string[] = [];
  for (const text of messages) {
    const message = JSON.parse(text) as { id?: string; type?: string };
    if (message.type === "gap") ids.push("GAP");
    else if (message.id !== undefined) ids.push(message.id);
  }
  return ids;
}

test(
  `faults on ${RUNTIME}: SIGTERM to a relay mid-stream, subscribers behind 40 ± 30 ms of latency: close 1001 through the delay, each resumes on another relay with every event once and in order`,
  { timeout: 90_000 },
  async () => {
    const common = [
      "-serve-address",
      "127.0.0.1:0",
      "-no-produce",
      "-heartbeat",
      String(HEARTBEAT_MS),
      "-buffer",
      "5000",
    ];
    const services: Service[] = [];
    const start = async (args: string[]) => {
      const service = await startService([...common, ...args]);
      services.push(service);
      return service;
    };
    const closers: (() => void)[] = [];
    let publishing = true;
    let publisher: Promise<void> = Promise.resolve();
    let proxy: Awaited<ReturnType<typeof startFaultProxy>> | undefined;
    try {
      const origin = await start([]);
      const consume = ["-consume-url", `ws://127.0.0.1:${origin.port}/events`];
      const relayA = await start(consume);
      const relayB = await start(consume);
      proxy = await startFaultProxy(relayA.port);
      proxy.set({ kind: "latency", ms: 40, jitterMs: 30 });
      const published: string[] = [];
      // Both relays have the stream from its first event on.
      for (const relay of [relayA, relayB]) await relayConnected(relay, 15_000);
      published.push(await publish(origin.http, "events", "first"));
      const via = `127.0.0.1:${proxy.port}/events`;
      // Subscribers from the first event on (on relay A, once it has it).
      for (const relay of [relayA, relayB]) {
        const probe = connectWs(
          `ws://127.0.0.1:${relay.port}/events?format=json&replay=all`,
        );
        closers.push(() => probe.close());
        await waitFor(
          () => wsIds(probe.messages).includes(published[0]),
          10_000,
          "the first event on each relay",
        );
        probe.close();
      }
      const ws = [1, 2].map(() =>
        connectWs(`ws://${via}?format=json&lastEventId=${published[0]}`)
      );
      const sse = [1, 2].map(() =>
        connectSse(`http://${via}`, { "Last-Event-ID": published[0] })
      );
      for (const client of [...ws, ...sse]) {
        closers.push(() => client.close());
      }
      await Promise.all(ws.map((c) => c.opened));
      await Promise.all(sse.map((c) => c.headers));
      const first: Received[] = [
        ...ws.map((c, i) => ({
          name: `ws ${i}`,
          ids: () => wsIds(c.messages),
        })),
        ...sse.map((c, i) => ({
          name: `sse ${i}`,
          ids: () => c.messages.map((m) => m.event === "gap" ? "GAP" : m.id),
        })),
      ];
      publisher = (async () => {
        while (publishing) {
          published.push(
            await publish(origin.http, "events", `e${published.length}`),
          );
          await new Promise((r) => setTimeout(r, 20));
        }
      })();
      await waitFor(
        () => first.every((s) => s.ids().length >= 10),
        15_000,
        "events through the delay",
      );
      await relayA.stop("SIGTERM");
      const codes = await Promise.all(ws.map((c) => c.closed));
      for (const { code } of codes) assert.equal(code, 1001, "close 1001");
      await Promise.all(sse.map((c) => c.done));
      // Each resumes on B from the last id it got.
      const second: Received[] = first.map((s, i) => {
        const last = s.ids().at(-1)!;
        if (i < 2) {
          const client = connectWs(
            `ws://127.0.0.1:${relayB.port}/events?format=json&lastEventId=${last}`,
          );
          closers.push(() => client.close());
          return { name: s.name, ids: () => wsIds(client.messages) };
        }
        const client = connectSse(`http://127.0.0.1:${relayB.port}/events`, {
          "Last-Event-ID": last,
        });
        closers.push(() => client.close());
        return {
          name: s.name,
          ids: () =>
            client.messages.map((m) => m.event === "gap" ? "GAP" : m.id),
        };
      });
      await new Promise((r) => setTimeout(r, 300));
      publishing = false;
      await publisher;
      const lastId = published.at(-1)!;
      await waitFor(
        () => second.every((s) => s.ids().includes(lastId)),
        15_000,
        `every subscriber to get ${lastId} on relay B`,
      );
      for (let i = 0; i < first.length; i++) {
        const got = [...first[i].ids(), ...second[i].ids()];
        assert.deepEqual(
          got,
          published.slice(1),
          `${first[i].name}: every event once and in order across the move`,
        );
      }
    } finally {
      publishing = false;
      await publisher.catch(() => {});
      for (const close of closers) close();
      await proxy?.close();
      for (const service of services.reverse()) await service.stop();
    }
  },
);
