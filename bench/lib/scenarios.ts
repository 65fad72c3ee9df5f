/**
 * The benchmark's scenarios (issue 7). Each starts fresh server processes,
 * runs the load client against them and returns an {@link Outcome}.
 *
 * @module
 */

import type { ResultMessage, SubscriberGroup, Transport } from "./protocol.ts";
import { readRssKb } from "./process.ts";
import { startRedis } from "./redis.ts";
import type { ServerProcess } from "./process.ts";
import {
  clientConfig,
  drive,
  latencyFigures,
  outcomeOf,
  serverCommand,
  withServers,
} from "./harness.ts";
import type { Context, Outcome, Runtime, ServerKind } from "./harness.ts";

/** (a) and (e): fan-out as fast as the server accepts events. */
export function fanout(
  context: Context,
  runtime: Runtime,
  kind: ServerKind,
  transport: Transport,
): Promise<Outcome> {
  const { fanoutSubscribers, fanoutEvents } = context.sizes;
  return withServers(
    context,
    [() => serverCommand(context, runtime, kind, [])],
    async ([server]) => {
      const groups = [{
        name: "fanout",
        url: server.url,
        count: fanoutSubscribers,
        transport,
      }];
      const config = clientConfig(context, server.url, groups, fanoutEvents, 0);
      const { result, serverCpuPct } = await drive(context, config, server);
      return outcomeOf(result, serverCpuPct, {
        rate: result.deliveriesPerS,
        ...latencyFigures(result.groups[0]),
      });
    },
  );
}

/** (b): a steady rate of events. */
export function steady(
  context: Context,
  runtime: Runtime,
  kind: ServerKind,
): Promise<Outcome> {
  const { steadySubscribers, steadyRate, steadySeconds } = context.sizes;
  return withServers(
    context,
    [() => serverCommand(context, runtime, kind, [])],
    async ([server]) => {
      const groups: SubscriberGroup[] = [{
        name: "steady",
        url: server.url,
        count: steadySubscribers,
        transport: "ws",
      }];
      const config = clientConfig(
        context,
        server.url,
        groups,
        steadyRate * steadySeconds,
        steadyRate,
      );
      const { result, serverCpuPct } = await drive(context, config, server);
      return outcomeOf(result, serverCpuPct, latencyFigures(result.groups[0]));
    },
  );
}

/** (c): resident memory per idle WebSocket connection. */
export function idle(
  context: Context,
  runtime: Runtime,
  kind: ServerKind,
): Promise<Outcome> {
  const { idleSubscribers, settleMs } = context.sizes;
  return withServers(
    context,
    [() => serverCommand(context, runtime, kind, [])],
    async ([server]) => {
      await new Promise((resolve) => setTimeout(resolve, settleMs));
      const before = readRssKb(server.pid);
      let after = before;
      const groups: SubscriberGroup[] = [{
        name: "idle",
        url: server.url,
        count: idleSubscribers,
        transport: "ws",
      }];
      const config = clientConfig(context, server.url, groups, 0, 0);
      const { result, serverCpuPct } = await drive(
        context,
        config,
        server,
        async () => {
          await new Promise((resolve) => setTimeout(resolve, settleMs));
          after = readRssKb(server.pid);
        },
      );
      const outcome = outcomeOf(result, serverCpuPct, {
        kbPerConnection: (after - before) / idleSubscribers,
      });
      // Nothing is published: CPU use over an empty publish phase means nothing.
      return { ...outcome, clientCpuPct: NaN, serverCpuPct: NaN };
    },
  );
}

/** (d): producer -> relay -> relay, subscribers on each, latency per hop (wsevent only). */
export function relay(context: Context, runtime: Runtime): Promise<Outcome> {
  const { relaySubscribers, relayRate, relaySeconds } = context.sizes;
  const consume = (
    server: ServerProcess,
  ) => ["--consume-url", `ws://127.0.0.1:${server.port}/events`];
  return withServers(context, [
    () => serverCommand(context, runtime, "wsevent", []),
    ([producer]) =>
      serverCommand(context, runtime, "wsevent", consume(producer)),
    ([, relay1]) => serverCommand(context, runtime, "wsevent", consume(relay1)),
  ], async ([producer, relay1, relay2]) => {
    const groups: SubscriberGroup[] = [
      {
        name: "producer",
        url: producer.url,
        count: relaySubscribers,
        transport: "ws",
      },
      {
        name: "relay-1",
        url: relay1.url,
        count: relaySubscribers,
        transport: "ws",
      },
      {
        name: "relay-2",
        url: relay2.url,
        count: relaySubscribers,
        transport: "ws",
      },
    ];
    const config = clientConfig(
      context,
      producer.url,
      groups,
      relayRate * relaySeconds,
      relayRate,
    );
    const { result, serverCpuPct } = await drive(context, config, relay1);
    const [p0, p1, p2] = result.groups.map((g) => g.latency.p50);
    return outcomeOf(result, serverCpuPct, {
      producerP50: p0,
      relay1P50: p1,
      relay2P50: p2,
      hop1: p1 - p0,
      hop2: p2 - p1,
      perHop: (p2 - p0) / 2,
    });
  });
}

/**
 * (r): the Redis engine (kind `wsevent`) against the memory engine (kind
 * `baseline`: wsevent with no `--engine`), one instance each, in three
 * phases on the same server: fan-out as in (a), publishing as fast as 16
 * POSTs in flight allow to one subscriber, and a steady rate as in (b). With
 * the Redis engine the benchmark starts its own redis-server (see redis.ts)
 * and measures its CPU beside the server's.
 */
export async function engine(
  context: Context,
  runtime: Runtime,
  kind: ServerKind,
): Promise<Outcome> {
  const redis = kind === "wsevent" ? await startRedis() : undefined;
  try {
    const extra = redis === undefined
      ? []
      : ["--engine", redis.url, "--engine-prefix", "wsevent-bench:"];
    return await withServers(
      context,
      [() => serverCommand(context, runtime, "wsevent", extra)],
      async ([server]) => {
        // The Redis engine answers 503 until it is connected and subscribed.
        await waitForReady(server);
        return await enginePhases(context, server, redis?.pid);
      },
    );
  } finally {
    await redis?.stop();
  }
}

const READY_TIMEOUT_MS = 20_000;

/** Polls the server's /readyz until it answers 200. */
async function waitForReady(server: ServerProcess): Promise<void> {
  const url = `http://127.0.0.1:${server.port}/readyz`;
  const deadline = Date.now() + READY_TIMEOUT_MS;
  for (;;) {
    const status = await fetch(url).then(async (response) => {
      await response.body?.cancel();
      return response.status;
    }, () => 0);
    if (status === 200) return;
    if (Date.now() > deadline) {
      throw new Error(`${url} answered ${status} for ${READY_TIMEOUT_MS} ms`);
    }
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
}

async function enginePhases(
  context: Context,
  server: ServerProcess,
  redisPid: number | undefined,
): Promise<Outcome> {
  const sizes = context.sizes;
  const others = redisPid === undefined ? [] : [redisPid];
  const outcomes: Outcome[] = [];
  const figures: Record<string, number> = {};
  const deliveries = (result: ResultMessage) =>
    result.groups.reduce((sum, g) => sum + g.received - g.duplicated, 0);

  // Fan-out, as scenario a.
  const fan = await drive(
    context,
    clientConfig(
      context,
      server.url,
      [{
        name: "fanout",
        url: server.url,
        count: sizes.fanoutSubscribers,
        transport: "ws",
      }],
      sizes.fanoutEvents,
      0,
    ),
    server,
    undefined,
    others,
  );
  outcomes.push(outcomeOf(fan.result, fan.serverCpuPct, {}));
  const delivered = deliveries(fan.result);
  figures.rate = fan.result.deliveriesPerS;
  figures.p50 = fan.result.groups[0].latency.p50;
  figures.p99 = fan.result.groups[0].latency.p99;
  figures.serverCpuPct = fan.serverCpuPct;
  figures.cpuUs = fan.serverCpuPct / 100 * fan.seconds * 1e6 / delivered;
  figures.redisCpuPct = redisPid === undefined ? NaN : fan.otherCpuPct[0];
  figures.redisCpuUs = redisPid === undefined
    ? NaN
    : fan.otherCpuPct[0] / 100 * fan.seconds * 1e6 / delivered;

  // The same fan-out at a fixed, open-loop rate, equal for both engines:
  // CPU per delivery where neither server is saturated and both deliver
  // the same events per second (the fan-out above runs each as fast as it
  // goes, so the engine that delivers faster also writes bigger batches).
  const fixed = await drive(
    context,
    clientConfig(
      context,
      server.url,
      [{
        name: "fixed",
        url: server.url,
        count: sizes.fanoutSubscribers,
        transport: "ws",
      }],
      sizes.engineFixedEvents,
      sizes.engineFixedRate,
    ),
    server,
    undefined,
    others,
  );
  outcomes.push(outcomeOf(fixed.result, fixed.serverCpuPct, {}));
  figures.fixedCpuUs = fixed.serverCpuPct / 100 * fixed.seconds * 1e6 /
    deliveries(fixed.result);
  figures.fixedServerCpuPct = fixed.serverCpuPct;
  figures.fixedP50 = fixed.result.groups[0].latency.p50;

  // Publishing: one subscriber, so the POSTs (and the engine) are the limit.
  const pub = await drive(
    context,
    clientConfig(
      context,
      server.url,
      [{
        name: "publish",
        url: server.url,
        count: 1,
        transport: "ws",
      }],
      sizes.enginePublishEvents,
      0,
    ),
    server,
    undefined,
    others,
  );
  outcomes.push(outcomeOf(pub.result, pub.serverCpuPct, {}));
  figures.publishRate = pub.result.deliveriesPerS;
  // CPU per published event: what the publish path costs, whatever the
  // machine's load does to the rate (which waits on round trips).
  figures.publishCpuUs = pub.serverCpuPct / 100 * pub.seconds * 1e6 /
    deliveries(pub.result);
  figures.publishRedisCpuUs = redisPid === undefined
    ? NaN
    : pub.otherCpuPct[0] / 100 * pub.seconds * 1e6 /
      deliveries(pub.result);

  // Publishing over one WebSocket (`?publish`), the same number of events
  // in flight: what a publisher pays without an HTTP request per event.
  const wsPub = await drive(
    context,
    {
      ...clientConfig(
        context,
        server.url,
        [{
          name: "publish-ws",
          url: server.url,
          count: 1,
          transport: "ws",
        }],
        sizes.enginePublishEvents,
        0,
      ),
      publishVia: "ws",
    },
    server,
    undefined,
    others,
  );
  outcomes.push(outcomeOf(wsPub.result, wsPub.serverCpuPct, {}));
  figures.wsPublishRate = wsPub.result.deliveriesPerS;
  figures.wsPublishCpuUs = wsPub.serverCpuPct / 100 * wsPub.seconds * 1e6 /
    deliveries(wsPub.result);
  figures.wsPublishServerCpuPct = wsPub.serverCpuPct;
  figures.wsPublishClientCpuPct = wsPub.result.clientCpuPct;
  figures.wsPublishRedisCpuUs = redisPid === undefined
    ? NaN
    : wsPub.otherCpuPct[0] / 100 * wsPub.seconds * 1e6 /
      deliveries(wsPub.result);
  figures.wsPublishRedisCpuPct = redisPid === undefined
    ? NaN
    : wsPub.otherCpuPct[0];

  // A steady rate, as scenario b.
  const steady = await drive(
    context,
    clientConfig(
      context,
      server.url,
      [{
        name: "steady",
        url: server.url,
        count: sizes.steadySubscribers,
        transport: "ws",
      }],
      sizes.steadyRate * sizes.steadySeconds,
      sizes.steadyRate,
    ),
    server,
  );
  outcomes.push(outcomeOf(steady.result, steady.serverCpuPct, {}));
  figures.steadyP50 = steady.result.groups[0].latency.p50;
  figures.steadyP99 = steady.result.groups[0].latency.p99;

  return {
    figures,
    lost: outcomes.reduce((sum, o) => sum + o.lost, 0),
    duplicated: outcomes.reduce((sum, o) => sum + o.duplicated, 0),
    errors: outcomes.flatMap((o, i) =>
      o.errors.map((e) =>
        `${
          ["fan-out", "fixed rate", "publish", "publish over WS", "steady"][i]
        }: ${e}`
      )
    ),
    clientCpuPct: outcomes[0].clientCpuPct,
    serverCpuPct: fan.serverCpuPct,
  };
}
