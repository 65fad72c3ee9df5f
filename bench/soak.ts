/**
 * Soak run (issue 18), not for CI: an origin and a relay on one runtime,
 * steady publishing (`--rate` events/s, POSTed to the origin, each with
 * its send time), `--subscribers` long-lived subscribers (four fifths on
 * the origin, one fifth on the relay, half WebSocket, half SSE, each with
 * the client module's reconnect and resume), connection churn against the
 * origin throughout, and the relay restarted on its port every
 * `--restart-min` minutes. Every `--sample-s` seconds it samples both
 * processes' /metrics (RSS, heap, fds, event-loop delay) and the delivery
 * latency p50/p99 of the window. At the end it checks that every
 * subscriber got every event once and in order, and writes
 * `soak-<runtime>.json`, `.md` (table, RSS slope, p99 first vs last five
 * minutes) and `.svg` (plot) into `--out`.
 *
 * With `--engine redis` (default `memory`) it starts a redis-server of its
 * own (free 127.0.0.1 port, temporary directory, AOF everysec as
 * docs/deploy/redis.conf) and two instances A and B on it with the same
 * paths: publishing alternates between A and B, the subscribers are split
 * in thirds over A, B and the relay (which consumes from A), churn runs
 * against A, the relay is restarted every `--restart-min` minutes and B
 * too, half a period later (its subscribers resume on the restarted B with
 * their last id). Every subscriber must get every event once, in order,
 * with the same id everywhere (the ids are compared, on both engines).
 * Each sample adds B's /metrics, both instances' engine read lag and
 * redis-server's RSS and CPU (/proc). Output: `soak-<runtime>-redis.*`.
 *
 * ```sh
 * bench/soak --runtime node --duration-min 30      # niced, raised fd limit
 * bench/soak --engine redis --duration-min 2 --restart-min 0.5 -- bun
 * ```
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { connectUpstream, type Upstream } from "../src/upstream.ts";
import { churn, gcExposedArgs, procSample } from "./lib/churn.ts";
import { procCpuSeconds, type RedisProcess, startRedis } from "./lib/redis.ts";
import {
  plotSoak,
  quantile,
  slope,
  type SoakSample,
  tableOf,
} from "./lib/soak_report.ts";

const ROOT = resolve(import.meta.dirname ?? ".", "..");
const BINARIES = {
  node: resolve(ROOT, "node_modules/node/bin/node"),
  deno: resolve(ROOT, "node_modules/.bin/deno"),
  bun: resolve(ROOT, "node_modules/.bin/bun"),
} as const;
type RuntimeName = keyof typeof BINARIES;

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    runtime: { type: "string", default: "node" },
    "duration-min": { type: "string", default: "30" },
    subscribers: { type: "string", default: "1000" },
    rate: { type: "string", default: "10" },
    "restart-min": { type: "string", default: "5" },
    "sample-s": { type: "string", default: "5" },
    "churn-concurrency": { type: "string", default: "10" },
    heartbeat: { type: "string", default: "5000" },
    buffer: { type: "string", default: "3000" },
    out: { type: "string", default: "docs/soak" },
    engine: { type: "string", default: "memory" },
  },
});

function positive(name: string): number {
  const value = Number(values[name as keyof typeof values]);
  if (!(value > 0)) {
    throw new RangeError(`Cannot use --${name}: expected a positive number`);
  }
  return value;
}

const runtime = values.runtime as RuntimeName;
if (!(runtime in BINARIES)) {
  throw new TypeError(
    `Cannot run on "${values.runtime}": expected node, deno or bun`,
  );
}
const engine = values.engine;
if (engine !== "memory" && engine !== "redis") {
  throw new TypeError(
    `Cannot use --engine "${engine}": expected memory or redis`,
  );
}
/** Two instances A and B on a Redis of the soak's own. */
const redisMode = engine === "redis";
const durationS = positive("duration-min") * 60;
const subscriberCount = Math.round(positive("subscribers"));
const rate = positive("rate");
const restartS = positive("restart-min") * 60;
const sampleS = positive("sample-s");
const churnConcurrency = Math.round(positive("churn-concurrency"));
const heartbeatMs = Math.round(positive("heartbeat"));
// The replay buffer covers a relay restart (the restarted relay replays
// it all) and fills within the first minutes, after which it stops
// growing: what grows after that is not the buffer.
const bufferEvents = String(Math.round(positive("buffer")));
const outDir = resolve(ROOT, values.out!);

/** A running wsevent process. */
interface Server {
  child: ChildProcess;
  port: number;
  exited: Promise<void>;
  stderr(): string;
}

/** Children still running: killed if the soak exits early (an error). */
const children = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of children) child.kill("SIGKILL");
});

async function startServer(args: string[]): Promise<Server> {
  // With gc() exposed, so that a SIGUSR2 collects (see collectFigures).
  const child = spawn(BINARIES[runtime], [
    ...gcExposedArgs(runtime, resolve(ROOT, "cli.ts")),
    ...args,
  ], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
  children.add(child);
  child.once("exit", () => children.delete(child));
  let stdout = "";
  let stderr = "";
  child.stdout!.setEncoding("utf8").on("data", (t) => (stdout += t));
  // Only the tail: a long run logs a line per relay reconnect.
  child.stderr!.setEncoding("utf8").on(
    "data",
    (t) => (stderr = (stderr + t).slice(-20_000)),
  );
  const exited = new Promise<void>((done) => child.once("exit", () => done()));
  const deadline = Date.now() + 30_000;
  while (!/Serving on: \S+/.test(stdout)) {
    if (Date.now() > deadline || child.exitCode !== null) {
      child.kill("SIGKILL");
      throw new Error(`wsevent did not start: ${stdout}\n${stderr}`);
    }
    await sleep(20);
  }
  const port = Number(/Serving on: ws:\/\/[^\s]*:(\d+)\//.exec(stdout)![1]);
  return { child, port, exited, stderr: () => stderr };
}

/**
 * Starts a server again on its port, retrying for a while: a churned
 * client's socket may hold that port for a moment (EADDRINUSE).
 */
async function restartOn(args: string[]): Promise<Server> {
  for (let attempt = 1;; attempt++) {
    try {
      return await startServer(args);
    } catch (error) {
      if (attempt === 10) throw error;
      console.error(`restart failed (attempt ${attempt}), retrying: ${error}`);
      await sleep(1000);
    }
  }
}

async function stopServer(server: Server): Promise<void> {
  server.child.kill("SIGTERM");
  const timer = setTimeout(() => server.child.kill("SIGKILL"), 5000);
  await server.exited;
  clearTimeout(timer);
}

function sleep(ms: number): Promise<void> {
  return new Promise((r) => setTimeout(r, ms));
}

/** The process figures of an instance's /metrics. */
async function processFigures(port: number) {
  const figures = {
    rssMb: NaN,
    heapMb: NaN,
    fds: NaN,
    loopP99Ms: NaN,
    readLagMs: NaN,
  };
  try {
    const text = await (await fetch(`http://127.0.0.1:${port}/metrics`, {
      signal: AbortSignal.timeout(5000),
    })).text();
    const read = (prefix: string) =>
      Number(
        text.split("\n").find((l) => l.startsWith(prefix + " "))?.slice(
          prefix.length + 1,
        ),
      );
    figures.rssMb = read("wsevent_process_resident_memory_bytes") / 2 ** 20;
    figures.heapMb = read('wsevent_process_heap_bytes{state="used"}') / 2 ** 20;
    figures.fds = read("wsevent_process_open_fds");
    figures.loopP99Ms =
      read('wsevent_event_loop_delay_seconds{quantile="0.99"}') * 1000;
    // Labelled with the engine's name: the first such line.
    const lag = text.split("\n").find((l) =>
      l.startsWith("wsevent_engine_read_lag_seconds{")
    );
    if (lag !== undefined) {
      figures.readLagMs = Number(lag.slice(lag.lastIndexOf(" ") + 1)) * 1000;
    }
  } catch {
    // Restarting: the sample shows a hole.
  }
  return figures;
}

/**
 * The origin's RSS and heap right after a full collection (SIGUSR2): what
 * it really holds, without the garbage and the young generation the
 * runtime keeps between collections. Once a minute.
 */
async function collectFigures(): Promise<{ rssMb: number; heapMb: number }> {
  const count = () =>
    origin.stderr().split("garbage collected on SIGUSR2").length - 1;
  const before = count();
  origin.child.kill("SIGUSR2");
  const deadline = Date.now() + 10_000;
  while (count() === before && Date.now() < deadline) await sleep(20);
  const figures = await processFigures(origin.port);
  return { rssMb: figures.rssMb, heapMb: figures.heapMb };
}

/** Waits until an instance answers /readyz with 200 (its engine connected). */
async function waitReady(port: number): Promise<void> {
  const deadline = Date.now() + 30_000;
  for (;;) {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/readyz`, {
        signal: AbortSignal.timeout(2000),
      });
      await response.arrayBuffer();
      if (response.status === 200) return;
    } catch {
      // Not up yet.
    }
    if (Date.now() > deadline) {
      throw new Error(`127.0.0.1:${port} not ready after 30 s`);
    }
    await sleep(50);
  }
}

/** What one subscriber received. */
interface Tally {
  next: number;
  received: number;
  duplicates: number;
  outOfOrder: number;
  gaps: number;
  upstream?: Upstream;
}

const redis: RedisProcess | undefined = redisMode
  ? await startRedis({ aof: true })
  : undefined;
if (redis !== undefined) {
  // Not left running if the soak stops early (its directory may stay).
  process.once("exit", () => {
    try {
      process.kill(redis.pid, "SIGKILL");
    } catch {
      // Already stopped.
    }
  });
}
// The origin (A with --engine redis) and B: same paths, same engine.
const instanceArgs = (port: number) => [
  "-serve-address",
  `127.0.0.1:${port}`,
  "-no-produce",
  "-heartbeat",
  String(heartbeatMs),
  "-buffer",
  bufferEvents,
  ...(redis === undefined ? [] : ["-engine", redis.url]),
];
const origin = await startServer(instanceArgs(0));
let second: Server | undefined;
if (redis !== undefined) {
  await waitReady(origin.port);
  second = await startServer(instanceArgs(0));
  await waitReady(second.port);
}
const secondPort = second?.port ?? 0;
const relayArgs = (port: number) => [
  "-serve-address",
  `127.0.0.1:${port}`,
  "-consume-url",
  `ws://127.0.0.1:${origin.port}/events`,
  "-no-produce",
  "-heartbeat",
  String(heartbeatMs),
  "-buffer",
  bufferEvents,
];
let relay = await startServer(relayArgs(0));
const relayPort = relay.port;

const started = performance.now();
const elapsedS = () => (performance.now() - started) / 1000;
let latencies: number[] = [];
const allLatencies: { t: number; ms: number }[] = [];
let delivered = 0;
// The id each event got (from the 202, or from whoever saw it first):
// every delivery of it must carry the same.
const idOf = new Map<number, string>();
let idMismatches = 0;
function checkId(seq: number, id: string | null): void {
  if (id === null) {
    idMismatches++;
    return;
  }
  const known = idOf.get(seq);
  if (known === undefined) idOf.set(seq, id);
  else if (known !== id) idMismatches++;
}

function subscribe(port: number, transport: "ws" | "sse"): Tally {
  const tally: Tally = {
    next: 0,
    received: 0,
    duplicates: 0,
    outOfOrder: 0,
    gaps: 0,
  };
  tally.upstream = connectUpstream({
    url: new URL(
      `${transport === "ws" ? "ws" : "http"}://127.0.0.1:${port}/events`,
    ),
    heartbeatMs,
    replayAll: true,
    onEvent(event) {
      const text = typeof event.data === "string" ? event.data : "";
      const space = text.indexOf(" ");
      const seq = Number(text.slice(0, space));
      const sent = Number(text.slice(space + 1));
      const ms = Date.now() - sent;
      latencies.push(ms);
      delivered++;
      checkId(seq, event.id);
      if (seq < tally.next) tally.duplicates++;
      else {
        if (seq > tally.next) tally.outOfOrder++;
        tally.next = seq + 1;
        tally.received++;
      }
    },
    onGap: () => void tally.gaps++,
  });
  return tally;
}

// Memory: four fifths on the origin, one on the relay. Redis: a third
// each on A, B and the relay.
const portOf = (i: number) =>
  redisMode
    ? [origin.port, secondPort, relayPort][i % 3]
    : i % 5 === 4
    ? relayPort
    : origin.port;
const tallies: Tally[] = [];
for (let i = 0; i < subscriberCount; i++) {
  tallies.push(subscribe(portOf(i), i % 2 === 0 ? "ws" : "sse"));
  if (i % 100 === 99) await sleep(100);
}
const connectedCount = () =>
  tallies.filter((t) => t.upstream?.connected).length;
while (connectedCount() < subscriberCount && elapsedS() < 60) await sleep(100);
console.log(
  `${runtime}${
    redisMode ? " (Redis engine)" : ""
  }: ${connectedCount()} of ${subscriberCount} subscribers connected in ${
    elapsedS().toFixed(1)
  } s; running ${durationS / 60} min`,
);

// Publishing: `rate` events a second, each with its sequence and send time.
// With --engine redis, to A and B in turn (only A while B restarts: the
// restart waits for a POST in flight to B, so none is cut off and retried).
let published = 0;
let publishErrors = 0;
const publishedTo = { a: 0, b: 0 };
let secondAvailable = redisMode;
let postingTo = 0;
let running = true;
const publishing = (async () => {
  const period = 1000 / rate;
  let due = performance.now();
  let turn = 0;
  while (running) {
    const toSecond = secondAvailable && turn++ % 2 === 1;
    postingTo = toSecond ? secondPort : origin.port;
    try {
      const response = await fetch(`http://127.0.0.1:${postingTo}/events`, {
        method: "POST",
        body: `${published} ${Date.now()}`,
      });
      const body = await response.text();
      if (response.status === 202) {
        checkId(published, (JSON.parse(body) as { id: string | null }).id);
        published++;
        publishedTo[toSecond ? "b" : "a"]++;
      } else publishErrors++;
    } catch {
      publishErrors++;
    }
    postingTo = 0;
    due += period;
    await sleep(Math.max(0, due - performance.now()));
  }
})();

// Churn against the origin throughout. It stops before publishing does:
// a churned subscriber leaves after its first event, and without events
// each would wait for a heartbeat (the last batch took 90 s that way).
let churned = 0;
let churnFailed = 0;
let churnRunning = true;
const churning = (async () => {
  while (churnRunning) {
    const result = await churn({
      port: origin.port,
      total: 400,
      concurrency: churnConcurrency,
    });
    churned += result.completed;
    churnFailed += result.failed;
  }
})();

// Relay restarts on the same port.
const restarts: number[] = [];
const restarting = (async () => {
  while (running) {
    const next = (restarts.length + 1) * restartS;
    while (running && elapsedS() < next) await sleep(200);
    if (!running) break;
    restarts.push(elapsedS());
    await stopServer(relay);
    relay = await restartOn(relayArgs(relayPort));
  }
})();

// With --engine redis, B restarted on its port too, half a period after
// the relay: its subscribers resume there from their last id.
const secondRestarts: number[] = [];
const restartingSecond = (async () => {
  while (redisMode && running) {
    const next = (secondRestarts.length + 0.5) * restartS;
    while (running && elapsedS() < next) await sleep(200);
    if (!running) break;
    secondRestarts.push(elapsedS());
    secondAvailable = false;
    while (postingTo === secondPort) await sleep(10);
    await stopServer(second!);
    second = await restartOn(instanceArgs(secondPort));
    await waitReady(secondPort);
    secondAvailable = true;
  }
})();

const samples: SoakSample[] = [];
let collected = { rssMb: NaN, heapMb: NaN };
let redisCpu = { t: elapsedS(), s: redis ? procCpuSeconds(redis.pid) : NaN };
while (elapsedS() < durationS) {
  if (samples.length % Math.max(1, Math.round(60 / sampleS)) === 0) {
    collected = await collectFigures();
  }
  await sleep(sampleS * 1000);
  const window = latencies;
  latencies = [];
  const t = elapsedS();
  for (let i = 0; i < window.length; i += 50) {
    allLatencies.push({ t, ms: window[i] });
  }
  const [o, r, b] = await Promise.all([
    processFigures(origin.port),
    processFigures(relayPort),
    redisMode ? processFigures(secondPort) : undefined,
  ]);
  const sample: SoakSample = {
    t,
    originRssMb: o.rssMb,
    originHeapMb: o.heapMb,
    originFds: o.fds,
    originLoopP99Ms: o.loopP99Ms,
    relayRssMb: r.rssMb,
    relayFds: r.fds,
    relayLoopP99Ms: r.loopP99Ms,
    deliveryP50Ms: quantile(window.slice(), 0.5),
    deliveryP99Ms: quantile(window, 0.99),
    published,
    delivered,
    subscribers: connectedCount(),
    churned,
    originRssAfterGcMb: collected.rssMb,
    originHeapAfterGcMb: collected.heapMb,
  };
  if (redis !== undefined && b !== undefined) {
    const cpu = { t: elapsedS(), s: procCpuSeconds(redis.pid) };
    let redisRssMb = NaN;
    try {
      redisRssMb = procSample(redis.pid).rssBytes / 2 ** 20;
    } catch {
      // Gone: a hole in the plot.
    }
    Object.assign(sample, {
      secondRssMb: b.rssMb,
      secondHeapMb: b.heapMb,
      secondFds: b.fds,
      secondLoopP99Ms: b.loopP99Ms,
      originReadLagMs: o.readLagMs,
      secondReadLagMs: b.readLagMs,
      redisRssMb,
      redisCpuPercent: (cpu.s - redisCpu.s) / (cpu.t - redisCpu.t) * 100,
    });
    redisCpu = cpu;
  }
  samples.push(sample);
  if (samples.length % Math.max(1, Math.round(60 / sampleS)) === 0) {
    console.log(
      `${(t / 60).toFixed(1)} min: ${redisMode ? "A" : "origin"} ${
        o.rssMb.toFixed(1)
      } MB, heap ${o.heapMb.toFixed(1)} MB, ${o.fds} fds; ${
        b === undefined
          ? ""
          : `B ${b.rssMb.toFixed(1)} MB, ${b.fds} fds; read lag A/B ${
            o.readLagMs.toFixed(1)
          }/${b.readLagMs.toFixed(1)} ms; redis-server ${
            sample.redisRssMb?.toFixed(1)
          } MB, ${sample.redisCpuPercent?.toFixed(1)}% CPU; `
      }relay ${r.rssMb.toFixed(1)} MB; delivery p99 ${
        sample.deliveryP99Ms.toFixed(1)
      } ms; ${published} published, ${churned} churned`,
    );
  }
}
churnRunning = false;
await churning;
running = false;
await Promise.all([publishing, restarting, restartingSecond]);

// Every subscriber gets the last event, or is counted short.
const settleDeadline = Date.now() + 60_000;
while (
  tallies.some((t) => t.next < published) && Date.now() < settleDeadline
) await sleep(100);
const reconnectsOf = tallies.map((t) => t.upstream?.reconnects ?? 0);
for (const tally of tallies) tally.upstream?.close();
await Promise.all([
  stopServer(relay),
  stopServer(origin),
  ...(second === undefined ? [] : [stopServer(second)]),
]);
const redisCpuSeconds = redis === undefined
  ? undefined
  : procCpuSeconds(redis.pid);
await redis?.stop();

// Reconnects of the subscribers, by where they are: the relay's and B's
// resume across every restart.
const subscriberReconnects: Record<string, number> = {};
reconnectsOf.forEach((reconnects, i) => {
  const place = redisMode
    ? ["a", "b", "relay"][i % 3]
    : i % 5 === 4
    ? "relay"
    : "origin";
  subscriberReconnects[place] = (subscriberReconnects[place] ?? 0) +
    reconnects;
});
const lost = tallies.reduce((n, t) => n + (published - t.received), 0);
const duplicates = tallies.reduce((n, t) => n + t.duplicates, 0);
const outOfOrder = tallies.reduce((n, t) => n + t.outOfOrder, 0);
const gaps = tallies.reduce((n, t) => n + t.gaps, 0);
// The slope leaves out the first five minutes (a third of shorter runs):
// the replay buffer filling and the runtime warming up.
const warmUpS = Math.min(300, durationS / 3);
const steady = samples.filter((s) => s.t > warmUpS);
const rssSlopeMbPerHour = slope(
  steady.filter((s) => Number.isFinite(s.originRssMb)).map((
    s,
  ) => [s.t / 3600, s.originRssMb]),
);
const afterGc = (pick: (s: SoakSample) => number | undefined) =>
  slope(
    steady.filter((s) => Number.isFinite(pick(s))).map((
      s,
    ) => [s.t / 3600, pick(s)!]),
  );
const rssAfterGcSlopeMbPerHour = afterGc((s) => s.originRssAfterGcMb);
const heapAfterGcSlopeMbPerHour = afterGc((s) => s.originHeapAfterGcMb);
const heapSlopeMbPerHour = slope(
  steady.filter((s) => Number.isFinite(s.originHeapMb)).map((
    s,
  ) => [s.t / 3600, s.originHeapMb]),
);
const window5 = Math.min(300, durationS / 3);
// The last window ends with the last sample, not after the final check
// (which takes up to a minute and has no samples).
const samplingEndS = samples.at(-1)?.t ?? elapsedS();
const p99Of = (from: number, to: number) =>
  quantile(
    allLatencies.filter((l) => l.t > from && l.t <= to).map((l) => l.ms),
    0.99,
  );
const finite = (pick: (s: SoakSample) => number | undefined) =>
  samples.map(pick).filter((v): v is number => Number.isFinite(v));
const maxOf = (values: number[]) =>
  values.length === 0 ? null : +Math.max(...values).toFixed(1);
const engineFigures = redisMode
  ? {
    publishedTo,
    secondRestarts: secondRestarts.length,
    secondRssMb: {
      first: finite((s) => s.secondRssMb)[0],
      last: finite((s) => s.secondRssMb).at(-1),
    },
    secondRssSlopeMbPerHour: +slope(
      steady.filter((s) => Number.isFinite(s.secondRssMb)).map((
        s,
      ) => [s.t / 3600, s.secondRssMb!]),
    ).toFixed(2),
    readLagMaxMs: {
      a: maxOf(finite((s) => s.originReadLagMs)),
      b: maxOf(finite((s) => s.secondReadLagMs)),
    },
    redisRssMb: {
      first: finite((s) => s.redisRssMb)[0],
      last: finite((s) => s.redisRssMb).at(-1),
    },
    redisCpuSeconds,
    redisCpuPercentMax: maxOf(finite((s) => s.redisCpuPercent)),
  }
  : {};
const summary = {
  runtime,
  engine,
  durationMin: +(elapsedS() / 60).toFixed(1),
  subscribers: subscriberCount,
  rate,
  published,
  publishErrors,
  delivered,
  lost,
  duplicates,
  outOfOrder,
  gaps,
  idMismatches,
  churned,
  churnFailed,
  relayRestarts: restarts.length,
  subscriberReconnects,
  rssSlopeMbPerHour: +rssSlopeMbPerHour.toFixed(2),
  heapSlopeMbPerHour: +heapSlopeMbPerHour.toFixed(2),
  rssAfterGcSlopeMbPerHour: +rssAfterGcSlopeMbPerHour.toFixed(2),
  heapAfterGcSlopeMbPerHour: +heapAfterGcSlopeMbPerHour.toFixed(2),
  deliveryP99FirstMs: p99Of(0, window5),
  deliveryP99LastMs: p99Of(samplingEndS - window5, samplingEndS),
  originRssMb: {
    first: samples[0]?.originRssMb,
    last: samples.at(-1)?.originRssMb,
  },
  ...engineFigures,
};
console.log(JSON.stringify(summary));
const name = `soak-${runtime}${redisMode ? "-redis" : ""}`;
mkdirSync(outDir, { recursive: true });
writeFileSync(
  resolve(outDir, `${name}.json`),
  JSON.stringify({ summary, restarts, secondRestarts, samples }, null, 1) +
    "\n",
);
writeFileSync(
  resolve(outDir, `${name}.svg`),
  plotSoak(samples, {
    title: redisMode
      ? `wsevent soak on ${runtime}, Redis engine: ${summary.durationMin} min, ${subscriberCount} subscribers (A, B, relay), ${rate} events/s`
      : `wsevent soak on ${runtime}: ${summary.durationMin} min, ${subscriberCount} subscribers, ${rate} events/s, churn, relay restarts`,
    restarts,
    secondRestarts,
  }),
);
const engineLine = redisMode
  ? `Redis engine: instances A and B on one redis-server (AOF everysec), ${publishedTo.a} events published to A and ${publishedTo.b} to B, subscribers a third each on A, B and the relay (from A); ${secondRestarts.length} restarts of B; subscriber reconnects (each a resume from its last id) on A ${subscriberReconnects.a}, B ${subscriberReconnects.b}, relay ${subscriberReconnects.relay}; ids differing between subscribers: ${idMismatches}; B RSS ${
    engineFigures.secondRssMb?.first?.toFixed(1)
  } → ${
    engineFigures.secondRssMb?.last?.toFixed(1)
  } MB (slope ${engineFigures.secondRssSlopeMbPerHour} MB/h); engine read lag max A ${engineFigures.readLagMaxMs?.a} ms, B ${engineFigures.readLagMaxMs?.b} ms; redis-server RSS ${
    engineFigures.redisRssMb?.first?.toFixed(1)
  } → ${engineFigures.redisRssMb?.last?.toFixed(1)} MB, CPU ${
    redisCpuSeconds?.toFixed(1)
  } s in all (at most ${engineFigures.redisCpuPercentMax}% in a sample)\n\n`
  : "";
writeFileSync(
  resolve(outDir, `${name}.md`),
  engineLine +
    `${runtime}: ${summary.durationMin} min; ${published} events to ${subscriberCount} subscribers (${delivered} deliveries); lost ${lost}, duplicated ${duplicates}, out of order ${outOfOrder}, gap notices ${gaps}; ${churned} churned connections (${churnFailed} failed); ${restarts.length} relay restarts; origin RSS slope ${summary.rssSlopeMbPerHour} MB/h (heap ${summary.heapSlopeMbPerHour} MB/h; after a collection, once a minute: RSS ${summary.rssAfterGcSlopeMbPerHour} MB/h, heap ${summary.heapAfterGcSlopeMbPerHour} MB/h) after the first ${
      Math.round(warmUpS)
    } s; delivery p99 first ${
      (window5 / 60).toFixed(0)
    } min ${summary.deliveryP99FirstMs} ms, last ${summary.deliveryP99LastMs} ms\n\n` +
    tableOf(samples, 60),
);
process.exit(lost === 0 && duplicates === 0 && idMismatches === 0 ? 0 : 1);
