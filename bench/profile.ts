/**
 * Summarizes V8 CPU profiles (`.cpuprofile`, as written by `deno run
 * --cpu-prof`, `node --cpu-prof` and `bun --cpu-prof`): the functions with
 * the most self time and the most total (inclusive) time, in percent of the
 * busy samples (idle excluded).
 *
 * Usage: `deno run -A bench/profile.ts [--top N] FILE.cpuprofile...`
 *
 * @module
 */

import { parseArgs } from "node:util";
import { readFileSync } from "node:fs";

/** The parts of a `.cpuprofile` this tool reads. */
interface CpuProfile {
  nodes: {
    id: number;
    callFrame: { functionName: string; url: string; lineNumber: number };
    children?: number[];
  }[];
  samples: number[];
  timeDeltas: number[];
}

/** Self and total sample counts per function. */
interface FunctionTimes {
  self: Map<string, number>;
  total: Map<string, number>;
  busy: number;
  idle: number;
  seconds: number;
}

function label(
  frame: CpuProfile["nodes"][number]["callFrame"],
  root: string,
): string {
  const name = frame.functionName === "" ? "(anonymous)" : frame.functionName;
  if (frame.url === "") return name;
  const file = frame.url.replace(/^file:\/\//, "").replace(root, "").replace(
    /^.*\/node_modules\//,
    "npm:",
  );
  return `${name} ${file}:${frame.lineNumber + 1}`;
}

/**
 * Counts samples per function.
 *
 * @param profile A parsed profile.
 * @param root Path prefix to strip from file names.
 * @returns Self and total counts.
 */
export function summarize(profile: CpuProfile, root: string): FunctionTimes {
  const byId = new Map(profile.nodes.map((node) => [node.id, node]));
  const parent = new Map<number, number>();
  for (const node of profile.nodes) {
    for (const child of node.children ?? []) parent.set(child, node.id);
  }
  const times: FunctionTimes = {
    self: new Map(),
    total: new Map(),
    busy: 0,
    idle: 0,
    seconds: 0,
  };
  profile.samples.forEach((id, index) => {
    times.seconds += (profile.timeDeltas[index] ?? 0) / 1e6;
    const node = byId.get(id);
    if (node === undefined) return;
    const name = label(node.callFrame, root);
    if (name === "(idle)") {
      times.idle++;
      return;
    }
    times.busy++;
    times.self.set(name, (times.self.get(name) ?? 0) + 1);
    const seen = new Set<string>();
    for (
      let at: number | undefined = id;
      at !== undefined;
      at = parent.get(at)
    ) {
      const frame = byId.get(at);
      if (frame === undefined) break;
      const caller = label(frame.callFrame, root);
      if (seen.has(caller)) continue;
      seen.add(caller);
      times.total.set(caller, (times.total.get(caller) ?? 0) + 1);
    }
  });
  return times;
}

function top(
  counts: Map<string, number>,
  busy: number,
  count: number,
): string[] {
  return [...counts.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, count)
    .map(([name, n]) =>
      `  ${(n / busy * 100).toFixed(1).padStart(5)}%  ${name}`
    );
}

if (import.meta.main) {
  const { values, positionals } = parseArgs({
    args: Deno.args,
    allowPositionals: true,
    options: { top: { type: "string", default: "25" } },
  });
  const root = `${Deno.cwd()}/`;
  for (const file of positionals) {
    const times = summarize(
      JSON.parse(readFileSync(file, "utf8")) as CpuProfile,
      root,
    );
    const busyPct = times.busy / Math.max(1, times.busy + times.idle) * 100;
    console.log(
      `${file}: ${times.seconds.toFixed(1)} s sampled, busy ${
        busyPct.toFixed(0)
      }%`,
    );
    console.log("self time (% of busy samples):");
    console.log(top(times.self, times.busy, Number(values.top)).join("\n"));
    console.log("total time (% of busy samples):");
    console.log(top(times.total, times.busy, Number(values.top)).join("\n"));
  }
}
