/**
 * The process-level parts of a runtime adapter that Node and Bun share
 * (Bun implements `node:process`).
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import process from "node:process";
import { onceOnSignals, type Runtime } from "./types.ts";

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
};
