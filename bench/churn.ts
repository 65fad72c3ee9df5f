/**
 * Connection churn benchmark (issue 18): starts one instance with gc()
 * exposed, lets `--total` WebSocket and SSE subscribers connect, receive
 * a little and leave (half cleanly, half by a TCP RST), `--concurrency`
 * at a time, in `--rounds` rounds, and after each round collects garbage
 * (SIGUSR2) and prints the instance's fds, RSS and heap. The figures in
 * docs/churn.md come from it.
 *
 * Warm-up, by the rule of tests/integration/churn_test.ts: rounds of
 * `--warm-up` connections until RSS after a collection settles (within 2%
 * of the round before) and at least `--warm-up-min` connections have come
 * and gone (at most `--warm-up-max`). A warm-up round is as large as a
 * measured round unless told otherwise: Deno's RSS grows with the length
 * of an uninterrupted churn (rounds of 2,000 settled at 76.6 MB after
 * 20,000 connections, and the first round of 20,000 after them took it to
 * 84.0 MB, flat after that), so smaller warm-up rounds settle short of the
 * level the measured rounds reach. Growth is reported against that settled
 * baseline, against the process's start (after a collection, before any
 * connection), and over the rounds after the first.
 *
 * With `--engine redis` the instance runs on a redis-server of its own
 * (free 127.0.0.1 port, temporary directory, AOF everysec): the demo
 * producer's events go through Redis to the churned subscribers.
 *
 * ```sh
 * nice -n 10 node_modules/node/bin/node bench/churn.ts --runtime node
 * nice -n 10 node_modules/.bin/deno run -A bench/churn.ts --runtime bun --total 100000
 * nice -n 10 node_modules/node/bin/node bench/churn.ts --runtime deno --engine redis
 * ```
 *
 * @module
 */

import { spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { churn, gcExposedArgs, procSample } from "./lib/churn.ts";
import { type RedisProcess, startRedis } from "./lib/redis.ts";

const ROOT = resolve(import.meta.dirname ?? ".", "..");
const BINARIES = {
  node: resolve(ROOT, "node_modules/node/bin/node"),
  deno: resolve(ROOT, "node_modules/.bin/deno"),
  bun: resolve(ROOT, "node_modules/.bin/bun"),
} as const;

const { values } = parseArgs({
  args: process.argv.slice(2),
  options: {
    runtime: { type: "string", default: "node" },
    total: { type: "string", default: "100000" },
    rounds: { type: "string", default: "5" },
    // Default: as large as a measured round (--total / --rounds).
    "warm-up": { type: "string" },
    "warm-up-min": { type: "string", default: "6000" },
    "warm-up-max": { type: "string", default: "40000" },
    engine: { type: "string", default: "memory" },
    concurrency: { type: "string", default: "200" },
    interval: { type: "string", default: "20" },
    buffer: { type: "string", default: "100" },
  },
});
const runtime = values.runtime as keyof typeof BINARIES;
if (!(runtime in BINARIES)) {
  throw new TypeError(
    `Cannot run on "${values.runtime}": expected node, deno or bun`,
  );
}
const total = Number(values.total);
const rounds = Number(values.rounds);
const warmUp = values["warm-up"] === undefined
  ? Math.round(total / rounds)
  : Number(values["warm-up"]);
const warmUpMin = Number(values["warm-up-min"]);
const warmUpMax = Number(values["warm-up-max"]);
const concurrency = Number(values.concurrency);
for (
  const [name, value] of Object.entries({
    total,
    rounds,
    concurrency,
    "warm-up": warmUp,
  })
) {
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`Cannot use --${name}: expected a positive integer`);
  }
}
for (
  const [name, value] of Object.entries({
    "warm-up-min": warmUpMin,
    "warm-up-max": warmUpMax,
  })
) {
  if (!Number.isInteger(value) || value < 0) {
    throw new RangeError(
      `Cannot use --${name}: expected a whole number of connections`,
    );
  }
}
if (warmUpMax < warmUpMin) {
  throw new RangeError(
    `Cannot use --warm-up-max ${warmUpMax}: less than --warm-up-min ${warmUpMin}`,
  );
}
const engine = values.engine;
if (engine !== "memory" && engine !== "redis") {
  throw new TypeError(
    `Cannot use --engine "${engine}": expected memory or redis`,
  );
}
const redis: RedisProcess | undefined = engine === "redis"
  ? await startRedis({ aof: true })
  : undefined;

const child = spawn(BINARIES[runtime], [
  ...gcExposedArgs(runtime, resolve(ROOT, "cli.ts")),
  "-serve-address",
  "127.0.0.1:0",
  "-interval",
  values.interval!,
  // A small replay buffer, full within seconds: not mistaken for growth.
  "-buffer",
  values.buffer!,
  ...(redis === undefined ? [] : ["-engine", redis.url]),
], { cwd: ROOT, stdio: ["ignore", "pipe", "pipe"] });
let stdout = "";
let stderr = "";
child.stdout.setEncoding("utf8").on("data", (text) => (stdout += text));
child.stderr.setEncoding("utf8").on("data", (text) => (stderr += text));

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out: ${what}\n${stderr}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

await until(() => /Serving on: \S+/.test(stdout), "Serving on:");
const port = Number(/Serving on: ws:\/\/[^\s]*:(\d+)\//.exec(stdout)![1]);
const pid = child.pid!;
if (redis !== undefined) {
  // The Redis engine answers 503 until it is connected and subscribed.
  await untilAsync(async () => {
    try {
      const response = await fetch(`http://127.0.0.1:${port}/readyz`);
      await response.arrayBuffer();
      return response.status === 200;
    } catch {
      return false;
    }
  }, "/readyz 200");
}

async function untilAsync(
  check: () => Promise<boolean>,
  what: string,
): Promise<void> {
  const deadline = Date.now() + 30_000;
  while (!(await check())) {
    if (Date.now() > deadline) throw new Error(`Timed out: ${what}\n${stderr}`);
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function heapUsed(): Promise<number> {
  const text = await (await fetch(`http://127.0.0.1:${port}/metrics`)).text();
  const line = text.split("\n").find((l) =>
    l.startsWith('wsevent_process_heap_bytes{state="used"}')
  );
  return Number(line?.split(" ")[1]);
}

async function collect(): Promise<void> {
  const count = () => stderr.split("garbage collected on SIGUSR2").length - 1;
  const before = count();
  process.kill(pid, "SIGUSR2");
  await until(() => count() > before, "a collection");
}

/**
 * Resident memory after collections: the least of four, a quarter second
 * apart, as churn_test does (an allocator gives pages back with a delay).
 */
async function settledSample(): Promise<{ rssBytes: number; fds: number }> {
  let rssBytes = Infinity;
  for (let i = 0; i < 4; i++) {
    await collect();
    await new Promise((r) => setTimeout(r, 250));
    rssBytes = Math.min(rssBytes, procSample(pid).rssBytes);
  }
  return { rssBytes, fds: procSample(pid).fds };
}

const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const rows: string[] = [];
/** The most fds the instance had open during the last churn round. */
let peakFds = 0;

/**
 * One round of churn, with the instance's open fds polled meanwhile: how
 * many sockets it held at once (more than the churn's own concurrency when
 * it falls behind closing them).
 */
async function measuredChurn(connections: number) {
  peakFds = 0;
  const poll = setInterval(() => {
    try {
      peakFds = Math.max(peakFds, procSample(pid).fds);
    } catch {
      // Gone: the round fails below.
    }
  }, 100);
  try {
    return await churn({ port, total: connections, concurrency });
  } finally {
    clearInterval(poll);
  }
}

async function row(label: string, connections: number, rate: string) {
  const sample = await settledSample();
  const heap = await heapUsed();
  rows.push(
    `| ${label} | ${connections} | ${rate} | ${
      connections === 0 ? "" : peakFds
    } | ${sample.fds} | ${mb(sample.rssBytes)} | ${mb(heap)} |`,
  );
  console.log(rows.at(-1));
  return sample;
}

console.log(
  `${runtime}${
    redis === undefined ? "" : " (Redis engine)"
  }: ${total} connections in ${rounds} rounds, ${concurrency} in flight; warm-up in rounds of ${warmUp} until RSS after a collection settles within 2%, at least ${warmUpMin}, at most ${warmUpMax}`,
);
console.log(
  "| after | connections | rate/s | peak fds during | fds | RSS MB | heap MB |",
);
console.log("| --- | ---: | ---: | ---: | ---: | ---: | ---: |");
const start = await row("start", 0, "");
let done = 0;
let failed = 0;
const reasons: string[] = [];
// The warm-up: rounds until RSS after a collection settles.
let base = start;
let warmUpDone = 0;
let settled = false;
while (warmUpDone < warmUpMax) {
  const round = Math.min(warmUp, warmUpMax - warmUpDone);
  const result = await measuredChurn(round);
  warmUpDone += round;
  done += result.completed;
  failed += result.failed;
  reasons.push(...result.reasons);
  const previous = base;
  base = await row(`warm-up`, done, "");
  if (
    warmUpDone >= warmUpMin && previous !== start &&
    base.rssBytes < previous.rssBytes * 1.02
  ) {
    settled = true;
    break;
  }
}
const warmUpConnections = done;
console.log(
  `warm-up: ${warmUpDone} connections (${
    settled
      ? "RSS settled within 2%"
      : "RSS not settled within 2%: stopped at --warm-up-max"
  }); baseline RSS ${mb(base.rssBytes)} MB, ${base.fds} fds`,
);
let elapsed = 0;
/** After the first measured round: what the later rounds add. */
let firstRound = base;
let firstRoundDone = done;
for (let i = 0; i < rounds; i++) {
  const result = await measuredChurn(total / rounds);
  done += result.completed;
  failed += result.failed;
  elapsed += result.elapsedMs;
  reasons.push(...result.reasons);
  await until(() => procSample(pid).fds <= base.fds, "fds back");
  const sample = await row(
    `round ${i + 1}`,
    done,
    String(Math.round(result.completed / result.elapsedMs * 1000)),
  );
  if (i === 0) {
    firstRound = sample;
    firstRoundDone = done;
  }
}
const last = await settledSample();
const percent = (from: number) =>
  `${last.rssBytes >= from ? "+" : ""}${
    ((last.rssBytes / from - 1) * 100).toFixed(1)
  }%`;
const load = (() => {
  try {
    return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(
      " ",
    );
  } catch {
    return "unknown";
  }
})();
console.log(
  `${runtime}${
    redis === undefined ? "" : " (Redis engine)"
  }: ${done} connections (${warmUpConnections} of them warm-up; ${failed} failed${
    reasons.length ? ": " + reasons.slice(0, 3).join("; ") : ""
  }), ${
    Math.round((done - warmUpConnections) / elapsed * 1000)
  }/s after the warm-up; fds ${start.fds} at start, ${base.fds} after the warm-up, ${last.fds} at the end; RSS after a collection: ${
    mb(start.rssBytes)
  } MB at start, ${mb(base.rssBytes)} MB after the warm-up, ${
    mb(last.rssBytes)
  } MB at the end: ${percent(base.rssBytes)} on the settled baseline, ${
    percent(start.rssBytes)
  } on the process start${
    rounds > 1
      ? `, ${
        percent(firstRound.rssBytes)
      } over the last ${(done - firstRoundDone)} connections (on ${
        mb(firstRound.rssBytes)
      } MB after round 1)`
      : ""
  }; load average ${load}`,
);
child.kill("SIGTERM");
await new Promise<void>((done) => {
  if (child.exitCode !== null || child.signalCode !== null) done();
  else child.once("exit", () => done());
});
await redis?.stop();
