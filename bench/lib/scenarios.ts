/**
 * The benchmark's scenarios (issue 7). Each starts fresh server processes,
 * runs the load client against them and returns an {@link Outcome}.
 *
 * @module
 */

import type {
  ClientConfig,
  GroupResult,
  ReadyMessage,
  ResultMessage,
  SubscriberGroup,
  SubscriberKind,
  Transport,
} from "./protocol.ts";
import { readCpuS, readRssKb, startClient, startServer } from "./process.ts";
import type { ServerProcess } from "./process.ts";

/** A JavaScript runtime under test. */
export type Runtime = "deno" | "bun" | "node";

/** wsevent itself, or the runtime's framework-free baseline. */
export type ServerKind = "wsevent" | "baseline";

/** Sizes of every scenario. */
export interface Sizes {
  fanoutSubscribers: number;
  fanoutEvents: number;
  /** POST requests in flight in the fan-out scenarios (a, e). */
  fanoutInflight: number;
  steadySubscribers: number;
  steadyRate: number;
  steadySeconds: number;
  idleSubscribers: number;
  relaySubscribers: number;
  relayRate: number;
  relaySeconds: number;
  /** Wait this long for late deliveries before counting them lost. */
  quietMs: number;
  /** Hard limit of one client run's publish phase. */
  deadlineMs: number;
  /** Pause before reading memory in the idle scenario. */
  settleMs: number;
}

/** What every scenario needs. */
export interface Context {
  /** The project root (where cli.ts is). */
  root: string;
  sizes: Sizes;
  /** How to start the load client, e.g. `["bun", "bench/client.ts"]`. */
  clientCommand: string[];
  subscriberKind: SubscriberKind;
  /** Where wsevent servers write CPU profiles, if profiling. */
  profileDir?: string;
  /** Finds a runtime's executable. */
  binary(runtime: Runtime): string;
}

/** The figures of one scenario run against one server (or relay chain). */
export interface Outcome {
  figures: Record<string, number>;
  lost: number;
  duplicated: number;
  errors: string[];
  /** Client and server CPU use, to judge which side limited the run. */
  clientCpuPct: number;
  serverCpuPct: number;
}

const START_TIMEOUT_MS = 20_000;
const CONNECT_CONCURRENCY = 200;
const STEADY_INFLIGHT = 64;
const PAYLOAD_BYTES = 64;

function serverCommand(
  context: Context,
  runtime: Runtime,
  kind: ServerKind,
  extra: string[],
): string[] {
  const binary = context.binary(runtime);
  const script = kind === "wsevent" ? "cli.ts" : `bench/baseline/${runtime}.ts`;
  const args = kind === "wsevent"
    ? ["--serve-address", "127.0.0.1:0", "--no-produce", ...extra]
    : ["0"];
  const profile = kind === "wsevent" && context.profileDir !== undefined
    ? ["--cpu-prof", `--cpu-prof-dir=${context.profileDir}`]
    : [];
  return runtime === "deno"
    ? [binary, "run", "-A", ...profile, script, ...args]
    : [binary, ...profile, script, ...args];
}

function clientConfig(
  context: Context,
  publishUrl: string,
  groups: SubscriberGroup[],
  events: number,
  rate: number,
): ClientConfig {
  return {
    groups,
    publishUrl,
    events,
    rate,
    inflight: rate > 0 ? STEADY_INFLIGHT : context.sizes.fanoutInflight,
    payloadBytes: PAYLOAD_BYTES,
    connectConcurrency: CONNECT_CONCURRENCY,
    quietMs: context.sizes.quietMs,
    deadlineMs: context.sizes.deadlineMs,
    subscriberKind: context.subscriberKind,
  };
}

/** Starts the servers in order (each command may use the previous ports), runs `body`, stops them all. */
async function withServers<T>(
  context: Context,
  commands: ((previous: ServerProcess[]) => string[])[],
  body: (servers: ServerProcess[]) => Promise<T>,
): Promise<T> {
  const servers: ServerProcess[] = [];
  try {
    for (const command of commands) {
      servers.push(
        await startServer(command(servers), {
          cwd: context.root,
          timeoutMs: START_TIMEOUT_MS,
        }),
      );
    }
    return await body(servers);
  } finally {
    for (const server of servers.reverse()) await server.stop();
  }
}

/**
 * Runs the load client with `config`; `onReady` runs between the client's
 * ready line and its go. CPU use is measured on `measured` during the
 * publish phase.
 */
async function drive(
  context: Context,
  config: ClientConfig,
  measured: ServerProcess,
  onReady?: (ready: ReadyMessage) => Promise<void>,
): Promise<{ result: ResultMessage; serverCpuPct: number }> {
  const client = startClient(context.clientCommand, config, context.root);
  try {
    const ready = await client.next();
    if (ready.type !== "ready") {
      throw new Error(
        ready.type === "error" ? ready.message : "unexpected client message",
      );
    }
    if (onReady) await onReady(ready);
    const cpuBefore = readCpuS(measured.pid);
    const start = performance.now();
    await client.go();
    const result = await client.next();
    if (result.type !== "result") {
      throw new Error(
        result.type === "error" ? result.message : "unexpected client message",
      );
    }
    const serverCpuPct = (readCpuS(measured.pid) - cpuBefore) /
      ((performance.now() - start) / 1000) * 100;
    return { result, serverCpuPct };
  } finally {
    await client.close();
  }
}

function outcomeOf(
  result: ResultMessage,
  serverCpuPct: number,
  figures: Record<string, number>,
): Outcome {
  const errors: string[] = [];
  if (result.publishErrors > 0) {
    errors.push(`${result.publishErrors} publish errors`);
  }
  if (result.subscriberErrors > 0) {
    errors.push(`${result.subscriberErrors} subscriber errors`);
  }
  if (result.timedOut) {
    errors.push("deadline reached before every delivery arrived");
  }
  return {
    figures,
    lost: result.groups.reduce((sum, g) => sum + g.lost, 0),
    duplicated: result.groups.reduce((sum, g) => sum + g.duplicated, 0),
    errors,
    clientCpuPct: result.clientCpuPct,
    serverCpuPct,
  };
}

function latencyFigures(group: GroupResult): Record<string, number> {
  return {
    p50: group.latency.p50,
    p99: group.latency.p99,
    max: group.latency.max,
  };
}

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
