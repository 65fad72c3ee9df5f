/**
 * The wsevent benchmark (issue 7). Starts each server as a real process on
 * 127.0.0.1 (wsevent and a framework-free baseline, on Deno, Bun and Node),
 * drives it with a load client in a separate process, and prints one
 * Markdown table.
 *
 * The load client is `bench/native/client.c` by default, compiled on demand
 * (see bench/native/build.ts): the TypeScript client `bench/client.ts`
 * (`--client bun`, `deno` or `node`) used a whole core of a 2-core machine
 * in the fan-out scenarios, so the servers got less than the rest.
 *
 * Usage: `deno run -A bench/run.ts [--quick] [--runtime deno,bun,node]
 * [--scenario a,b,c,d,e,r] [--server wsevent,baseline]
 * [--client native|bun|deno|node] [--subscriber raw|web] [--inflight N]
 * [--repeat N] [--profile DIR]`, or `bash bench/run ...`, which first raises
 * the open files limit. `--subscriber` applies to the TypeScript client only.
 *
 * Scenario r compares the Redis engine (in the wsevent column) with the
 * memory engine (in the baseline column), each in a wsevent process, with a
 * redis-server of its own (Debian's `redis-server` must be installed); run
 * it alone with `--scenario r`.
 *
 * The fan-out, idle and engine scenarios (a, c, e, r) run `--repeat` times (3 by default, 1 with
 * --quick), wsevent and baseline taking turns (ABBA), and report each
 * server's median run: the machine is shared and the two processes share
 * its cores, so one run of a few seconds varies by ±15%. Lost and duplicated messages
 * and errors are summed over every run.
 *
 * Exits 1 when a message was lost or duplicated or a run failed, never
 * because of timings; 2 on a usage error.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { readOpenFilesLimit } from "./lib/process.ts";
import { buildNativeClient } from "./native/build.ts";
import type { SubscriberKind } from "./lib/protocol.ts";
import { engine, fanout, idle, relay, steady } from "./lib/scenarios.ts";
import type {
  Context,
  Outcome,
  Runtime,
  ServerKind,
  Sizes,
} from "./lib/harness.ts";
import {
  deriveFigures,
  renderTable,
  resultKey,
  scenarioRows,
} from "./lib/table.ts";
import type { Results } from "./lib/table.ts";

const FULL: Sizes = {
  fanoutSubscribers: 1000,
  fanoutEvents: 2000,
  fanoutInflight: 16,
  steadySubscribers: 1000,
  steadyRate: 200,
  steadySeconds: 10,
  idleSubscribers: 10_000,
  relaySubscribers: 100,
  relayRate: 200,
  relaySeconds: 5,
  quietMs: 3000,
  deadlineMs: 120_000,
  settleMs: 1000,
  engineFixedRate: 400,
  engineFixedEvents: 2000,
  enginePublishEvents: 20_000,
};

const QUICK: Sizes = {
  fanoutSubscribers: 50,
  fanoutEvents: 200,
  fanoutInflight: 16,
  steadySubscribers: 50,
  steadyRate: 100,
  steadySeconds: 1,
  idleSubscribers: 500,
  relaySubscribers: 20,
  relayRate: 100,
  relaySeconds: 1,
  quietMs: 2000,
  deadlineMs: 20_000,
  settleMs: 200,
  engineFixedRate: 100,
  engineFixedEvents: 200,
  enginePublishEvents: 1000,
};

const RUNTIMES: Runtime[] = ["deno", "bun", "node"];
/** The native load client, or the TypeScript one on a runtime. */
type ClientKind = "native" | Runtime;
const CLIENTS: ClientKind[] = ["native", ...RUNTIMES];
const SCENARIOS = ["a", "b", "c", "d", "e", "r"];
/**
 * Scenarios run `--repeat` times: fan-out, whose rate swings with the
 * machine, and idle memory, whose RSS includes garbage of the connection
 * burst that the runtime may or may not have collected yet.
 */
const REPEATED = ["a", "c", "e", "r"];
const KINDS: ServerKind[] = ["wsevent", "baseline"];
/** Descriptors the client and the runner need beside the subscribers. */
const SPARE_FILES = 200;

class UsageError extends Error {
  override name = "UsageError";
}

function list<T extends string>(
  value: string | undefined,
  allowed: readonly T[],
  flag: string,
): T[] {
  if (value === undefined) return [...allowed];
  const items = value.split(",").filter((item) => item !== "");
  for (const item of items) {
    if (!allowed.includes(item as T)) {
      throw new UsageError(
        `Cannot parse --${flag}: expected some of ${
          allowed.join(",")
        }, received "${item}"`,
      );
    }
  }
  return items as T[];
}

function run(
  scenario: string,
  context: Context,
  runtime: Runtime,
  kind: ServerKind,
): Promise<Outcome> | undefined {
  switch (scenario) {
    case "a":
      return fanout(context, runtime, kind, "ws");
    case "b":
      return steady(context, runtime, kind);
    case "c":
      return idle(context, runtime, kind);
    case "d":
      return kind === "wsevent" ? relay(context, runtime) : undefined;
    case "r":
      return engine(context, runtime, kind);
    default:
      return fanout(context, runtime, kind, "sse");
  }
}

/**
 * The run with the median delivery rate (the upper one of an even count),
 * with the lost, duplicated and errors of every run.
 */
function medianRun(outcomes: Outcome[]): Outcome {
  // By deliveries/s in the fan-out scenarios, by memory in the idle one.
  const key = (o: Outcome) => o.figures.rate ?? o.figures.kbPerConnection ?? 0;
  const sorted = [...outcomes].sort((x, y) => key(x) - key(y));
  const median = sorted[Math.floor(sorted.length / 2)];
  return {
    ...median,
    lost: outcomes.reduce((sum, o) => sum + o.lost, 0),
    duplicated: outcomes.reduce((sum, o) => sum + o.duplicated, 0),
    errors: outcomes.flatMap((o) => o.errors),
  };
}

/** The 1-minute load average, from `/proc/loadavg`. */
function readLoadAverage(): string {
  return Deno.readTextFileSync("/proc/loadavg").split(" ")[0];
}

/** `a/deno/wsevent 63/73, ...` for every run that published. */
function cpuSummary(results: Results): string {
  const parts: string[] = [];
  for (const [key, outcome] of results) {
    if (outcome instanceof Error || Number.isNaN(outcome.clientCpuPct)) {
      continue;
    }
    parts.push(
      `${key} ${outcome.clientCpuPct.toFixed(0)}/${
        outcome.serverCpuPct.toFixed(0)
      }`,
    );
  }
  return parts.join(", ");
}

function summary(outcome: Outcome): string {
  const figures = Object.entries(outcome.figures)
    .map(([key, value]) =>
      `${key}=${Number.isInteger(value) ? value : value.toFixed(2)}`
    )
    .join(" ");
  const cpu = Number.isNaN(outcome.clientCpuPct)
    ? ""
    : ` client-cpu=${outcome.clientCpuPct.toFixed(0)}% server-cpu=${
      outcome.serverCpuPct.toFixed(0)
    }%`;
  return `${figures} lost=${outcome.lost} dup=${outcome.duplicated}${cpu}`;
}

async function main(args: string[]): Promise<number> {
  const { values } = parseArgs({
    args,
    options: {
      quick: { type: "boolean", default: false },
      runtime: { type: "string" },
      scenario: { type: "string" },
      server: { type: "string" },
      client: { type: "string", default: "native" },
      subscriber: { type: "string", default: "raw" },
      profile: { type: "string" },
      inflight: { type: "string" },
      repeat: { type: "string" },
    },
  });
  const runtimes = list(values.runtime, RUNTIMES, "runtime");
  const scenarios = list(values.scenario, SCENARIOS, "scenario");
  const kinds = list(values.server, KINDS, "server");
  const [clientKind] = list(values.client, CLIENTS, "client");
  const [subscriberKind] = list<SubscriberKind>(values.subscriber, [
    "raw",
    "web",
  ], "subscriber");
  if (clientKind === "native" && subscriberKind === "web") {
    throw new UsageError(
      "Cannot use --subscriber web with the native client: pass --client bun (or deno, node)",
    );
  }
  const sizes = { ...(values.quick ? QUICK : FULL) };
  if (values.inflight !== undefined) {
    sizes.fanoutInflight = Number(values.inflight);
    if (!Number.isInteger(sizes.fanoutInflight) || sizes.fanoutInflight < 1) {
      throw new UsageError(
        `Cannot parse --inflight: expected a positive integer, received "${values.inflight}"`,
      );
    }
  }
  const repeat = Number(values.repeat ?? (values.quick ? 1 : 3));
  if (!Number.isInteger(repeat) || repeat < 1) {
    throw new UsageError(
      `Cannot parse --repeat: expected a positive integer, received "${values.repeat}"`,
    );
  }
  const root = fileURLToPath(new URL("..", import.meta.url));
  if (kinds.includes("wsevent") && !existsSync(join(root, "cli.ts"))) {
    throw new UsageError(
      "Cannot find cli.ts: run with --server baseline until wsevent exists",
    );
  }
  const bin = join(root, "node_modules", ".bin");
  // Node 24 from the `node` package: node_modules/.bin/node may be another
  // major version's (the `node22` package installs one there too).
  const node24 = join(root, "node_modules", "node", "bin", "node");
  const binary = (runtime: Runtime) =>
    runtime === "node" && existsSync(node24)
      ? node24
      : existsSync(join(bin, runtime))
      ? join(bin, runtime)
      : runtime;
  const needed = Math.max(sizes.idleSubscribers, sizes.fanoutSubscribers) +
    SPARE_FILES;
  if (scenarios.includes("c") && readOpenFilesLimit() < needed) {
    throw new UsageError(
      `The open files limit is ${readOpenFilesLimit()}, scenario c needs ${needed}: run "ulimit -n ${needed}" or bash bench/run`,
    );
  }
  const clientCommand = clientKind === "native"
    ? [await buildNativeClient(root)]
    : [
      binary(clientKind),
      ...(clientKind === "deno" ? ["run", "-A"] : []),
      "bench/client.ts",
    ];
  const context: Context = {
    root,
    sizes,
    clientCommand,
    subscriberKind,
    profileDir: values.profile,
    binary,
  };
  const results: Results = new Map();
  const started = performance.now();
  const loadBefore = readLoadAverage();
  console.error(`load average before the run: ${loadBefore}`);
  for (const scenario of scenarios) {
    const rounds = REPEATED.includes(scenario) ? repeat : 1;
    for (const runtime of runtimes) {
      const runs = new Map<ServerKind, Outcome[]>();
      for (let round = 0; round < rounds; round++) {
        // Servers take turns, first one then the other first (ABBA), so
        // neither always runs just after the other's connections closed.
        const order = round % 2 === 0 ? kinds : [...kinds].reverse();
        for (const kind of order) {
          const running = run(scenario, context, runtime, kind);
          if (running === undefined) continue;
          const label = `${scenario} ${runtime} ${kind}${
            rounds > 1 ? ` (run ${round + 1}/${rounds})` : ""
          }`;
          try {
            const outcome = await running;
            runs.set(kind, [...(runs.get(kind) ?? []), outcome]);
            console.error(
              `${label}: ${summary(outcome)}${
                outcome.errors.length
                  ? ` ERRORS: ${outcome.errors.join("; ")}`
                  : ""
              }`,
            );
          } catch (error) {
            const failure = error instanceof Error
              ? error
              : new Error(String(error));
            results.set(resultKey(scenario, runtime, kind), failure);
            console.error(`${label}: ERROR ${failure.message}`);
          }
        }
      }
      for (const [kind, outcomes] of runs) {
        const key = resultKey(scenario, runtime, kind);
        if (!results.has(key)) results.set(key, medianRun(outcomes));
      }
    }
  }
  deriveFigures(results, runtimes);
  const rows = scenarioRows(sizes).filter((row) => scenarios.includes(row.id));
  console.log(renderTable(rows, results, runtimes));
  let lost = 0;
  let duplicated = 0;
  let errors = 0;
  for (const [key, outcome] of results) {
    if (outcome instanceof Error) {
      errors++;
      console.log(`error: ${key}: ${outcome.message}`);
      continue;
    }
    lost += outcome.lost;
    duplicated += outcome.duplicated;
    errors += outcome.errors.length;
    for (const message of outcome.errors) {
      console.log(`error: ${key}: ${message}`);
    }
  }
  const seconds = ((performance.now() - started) / 1000).toFixed(0);
  const mode = values.quick ? "quick" : "full";
  const client = clientKind === "native"
    ? "native load client"
    : `load client on ${clientKind} (${subscriberKind} subscribers)`;
  console.log(
    `\n${mode} run in ${seconds} s, ${client}, ${navigator.hardwareConcurrency} CPUs, ` +
      `load average ${loadBefore} before, ${readLoadAverage()} after`,
  );
  console.log(
    `CPU % of one core during publishing, load client / server: ${
      cpuSummary(results)
    }`,
  );
  console.log(`result: lost=${lost} duplicated=${duplicated} errors=${errors}`);
  return lost + duplicated + errors === 0 ? 0 : 1;
}

if (import.meta.main) {
  try {
    Deno.exit(await main(Deno.args));
  } catch (error) {
    console.error(`error: ${error instanceof Error ? error.message : error}`);
    Deno.exit(
      error instanceof UsageError ||
        (error instanceof TypeError && "code" in error)
        ? 2
        : 1,
    );
  }
}
