/**
 * The process-level parts of a runtime adapter that Node and Bun share
 * (Bun implements `node:process`).
 *
 * @module
 */

import { readdirSync } from "node:fs";
import { readFile } from "node:fs/promises";
import process from "node:process";
import type { ProcessStats } from "../http/metrics.ts";
import { exposedGc, onceOnSignals, type Runtime } from "./types.ts";

/** Signals, standard streams, exit and arguments through `node:process`. */
export const processParts: Pick<
  Runtime,
  | "onShutdownSignal"
  | "onReloadSignal"
  | "stdout"
  | "stderr"
  | "exit"
  | "args"
  | "stderrIsTerminal"
  | "readTextFile"
  | "processStats"
  | "collectOnSignal"
> = {
  onShutdownSignal: (handler) =>
    onceOnSignals(
      (signal, listener) => void process.on(signal, listener),
      handler,
    ),
  onReloadSignal: (handler) => void process.on("SIGHUP", handler),
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  exit: (code) => process.exit(code),
  args: () => process.argv.slice(2),
  stderrIsTerminal: () => process.stderr.isTTY === true,
  readTextFile: (path) => readFile(path, "utf8"),
  processStats,
  collectOnSignal(collected) {
    const gc = exposedGc();
    if (gc === undefined) return false;
    process.on("SIGUSR2", () => {
      gc();
      collected();
    });
    return true;
  },
};

/** Open file descriptors, where `/proc/self/fd` can be read (Linux). */
function openFds(): number | undefined {
  try {
    return readdirSync("/proc/self/fd").length;
  } catch {
    return undefined;
  }
}

function processStats(): ProcessStats {
  const memory = process.memoryUsage();
  return {
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
    externalBytes: memory.external,
    openFds: openFds(),
  };
}
