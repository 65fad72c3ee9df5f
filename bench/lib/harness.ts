/**
 * What the benchmark's scenarios share: server commands, starting and
 * stopping servers, driving the load client through its ready/go/result
 * exchange, and turning a client result into an {@link Outcome}.
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
} from "./protocol.ts";
import { readCpuS, startClient, startServer } from "./process.ts";
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
  /**
   * Scenario r's fixed-rate fan-out: events per second, the same open-loop
   * rate for both engines (to the fan-out's subscribers).
   */
  engineFixedRate: number;
  /** Events in scenario r's fixed-rate fan-out. */
  engineFixedEvents: number;
  /** Events POSTed to one subscriber to measure publishing (scenario r). */
  enginePublishEvents: number;
}

/** What every scenario needs. */
export interface Context {
  /** The project root (where cli.ts is). */
  root: string;
  sizes: Sizes;
  /**
   * How to start the load client: the native one's binary (the default, see
   * bench/native/build.ts), or e.g. `["bun", "bench/client.ts"]`. The
   * config is appended as JSON.
   */
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

export function serverCommand(
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
  // wsevent, and the Bun baseline (which exits on SIGTERM, so its profile
  // gets written), each in its own folder; every 100 us on Bun and Node:
  // their default of 1 ms gives too few samples in a scenario of a second
  // or two.
  const profiled = kind === "wsevent" || runtime === "bun";
  const profile = !profiled || context.profileDir === undefined ? [] : [
    "--cpu-prof",
    `--cpu-prof-dir=${context.profileDir}/${kind}`,
    ...(runtime === "deno" ? [] : ["--cpu-prof-interval=100"]),
  ];
  return runtime === "deno"
    ? [binary, "run", "-A", ...profile, script, ...args]
    : [binary, ...profile, script, ...args];
}

export function clientConfig(
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
export async function withServers<T>(
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
 * publish phase, and on the processes `alsoMeasured` (e.g. redis-server),
 * whose figures come back in `otherCpuPct`, in the same order.
 */
export async function drive(
  context: Context,
  config: ClientConfig,
  measured: ServerProcess,
  onReady?: (ready: ReadyMessage) => Promise<void>,
  alsoMeasured: number[] = [],
): Promise<
  {
    result: ResultMessage;
    serverCpuPct: number;
    otherCpuPct: number[];
    /** Seconds from the go to the result, over which CPU use was measured. */
    seconds: number;
  }
> {
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
    const othersBefore = alsoMeasured.map(readCpuS);
    const start = performance.now();
    await client.go();
    const result = await client.next();
    if (result.type !== "result") {
      throw new Error(
        result.type === "error" ? result.message : "unexpected client message",
      );
    }
    const seconds = (performance.now() - start) / 1000;
    const serverCpuPct = (readCpuS(measured.pid) - cpuBefore) / seconds * 100;
    const otherCpuPct = alsoMeasured.map((pid, i) =>
      (readCpuS(pid) - othersBefore[i]) / seconds * 100
    );
    return { result, serverCpuPct, otherCpuPct, seconds };
  } finally {
    await client.close();
  }
}

export function outcomeOf(
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

export function latencyFigures(group: GroupResult): Record<string, number> {
  return {
    p50: group.latency.p50,
    p99: group.latency.p99,
    max: group.latency.max,
  };
}
