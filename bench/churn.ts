/**
 * Connection churn benchmark (issue 18): starts one instance with gc()
 * exposed, lets `--total` WebSocket and SSE subscribers connect, receive
 * a little and leave (half cleanly, half by a TCP RST), `--concurrency`
 * at a time, in `--rounds` rounds, and after each round collects garbage
 * (SIGUSR2) and prints the instance's fds, RSS and heap. The figures in
 * docs/churn.md come from it.
 *
 * ```sh
 * nice -n 10 node_modules/node/bin/node bench/churn.ts --runtime node
 * nice -n 10 node_modules/.bin/deno run -A bench/churn.ts --runtime bun --total 100000
 * ```
 *
 * @module
 */

import { spawn } from "node:child_process";
import { resolve } from "node:path";
import process from "node:process";
import { parseArgs } from "node:util";
import { churn, gcExposedArgs, procSample } from "./lib/churn.ts";

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
    "warm-up": { type: "string", default: "2000" },
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
const warmUp = Number(values["warm-up"]);
const concurrency = Number(values.concurrency);
for (const [name, value] of Object.entries({ total, rounds, concurrency })) {
  if (!Number.isInteger(value) || value <= 0) {
    throw new RangeError(`Cannot use --${name}: expected a positive integer`);
  }
}

const child = spawn(BINARIES[runtime], [
  ...gcExposedArgs(runtime, resolve(ROOT, "cli.ts")),
  "-serve-address",
  "127.0.0.1:0",
  "-interval",
  values.interval!,
  // A small replay buffer, full within seconds: not mistaken for growth.
  "-buffer",
  values.buffer!,
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

const mb = (bytes: number) => (bytes / 2 ** 20).toFixed(1);
const rows: string[] = [];
async function row(label: string, connections: number, rate: string) {
  await collect();
  const sample = procSample(pid);
  const heap = await heapUsed();
  rows.push(
    `| ${label} | ${connections} | ${rate} | ${sample.fds} | ${
      mb(sample.rssBytes)
    } | ${mb(heap)} |`,
  );
  console.log(rows.at(-1));
  return sample;
}

console.log(
  `${runtime}: ${total} connections in ${rounds} rounds, ${concurrency} in flight`,
);
console.log("| after | connections | rate/s | fds | RSS MB | heap MB |");
console.log("| --- | ---: | ---: | ---: | ---: | ---: |");
await row("start", 0, "");
let done = 0;
const warm = await churn({ port, total: warmUp, concurrency });
done += warm.completed;
const base = await row("warm-up", done, "");
let failed = warm.failed;
const reasons = [...warm.reasons];
let elapsed = 0;
for (let i = 0; i < rounds; i++) {
  const result = await churn({ port, total: total / rounds, concurrency });
  done += result.completed;
  failed += result.failed;
  elapsed += result.elapsedMs;
  reasons.push(...result.reasons);
  await until(() => procSample(pid).fds <= base.fds, "fds back");
  await row(
    `round ${i + 1}`,
    done,
    String(Math.round(result.completed / result.elapsedMs * 1000)),
  );
}
const last = procSample(pid);
console.log(
  `${runtime}: ${done} connections (${failed} failed${
    reasons.length ? ": " + reasons.slice(0, 3).join("; ") : ""
  }), ${
    Math.round((done - warm.completed) / elapsed * 1000)
  }/s; fds ${base.fds} -> ${last.fds}; RSS ${mb(base.rssBytes)} -> ${
    mb(last.rssBytes)
  } MB (${((last.rssBytes / base.rssBytes - 1) * 100).toFixed(1)}%)`,
);
child.kill("SIGTERM");
