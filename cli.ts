#!/usr/bin/env -S deno run --allow-net --allow-env
/**
 * The wsevent command: serve (producer, relay or hub) or `subscribe`.
 * The only place that prints usage errors and exits.
 *
 * @module
 */

import process from "node:process";
import { formatUsage, parseConfig } from "./src/config.ts";
import { UsageError } from "./src/errors.ts";
import { createLogger } from "./src/log.ts";
import { redactUrl } from "./src/redact.ts";
import type { Runtime } from "./src/runtime/types.ts";
import { ServeError } from "./src/runtime/types.ts";
import { startService } from "./src/service.ts";
import { loadRuntime } from "./src/runtime/load.ts";
import { parseSubscribeArgs, runSubscribe } from "./src/subscribe.ts";
import { VERSION } from "./src/version.ts";

/**
 * Runs the command line and returns the exit code (the process keeps
 * serving until a shutdown signal).
 *
 * @param args Arguments after the program name.
 * @param runtime The runtime adapter.
 * @returns The exit code.
 */
export async function main(args: string[], runtime: Runtime): Promise<number> {
  try {
    if (args[0] === "subscribe") return await subscribe(args.slice(1), runtime);
    return await serve(args, runtime);
  } catch (error) {
    if (error instanceof UsageError) {
      runtime.stderr(`error: ${error.message}\nRun "wsevent -h" for usage.\n`);
      return 2;
    }
    runtime.stderr(
      `error: ${error instanceof Error ? error.message : String(error)}\n`,
    );
    return 1;
  }
}

async function serve(args: string[], runtime: Runtime): Promise<number> {
  const command = parseConfig(args, runtime.env());
  if (command.kind === "help") {
    runtime.stdout(formatUsage("wsevent"));
    return 0;
  }
  if (command.kind === "version") {
    runtime.stdout(`wsevent ${VERSION} (${runtime.name})\n`);
    return 0;
  }
  const { config } = command;
  const log = createLogger({
    level: config.logLevel,
    json: config.logJson,
    write: runtime.stderr,
  });
  // Listen for signals before serving, so an early SIGTERM still exits 0.
  const stopped = new Promise<string>((resolve) =>
    runtime.onShutdownSignal(resolve)
  );
  runtime.stdout(
    config.consumeUrl !== null
      ? "Starting as proxy service...\n"
      : config.produce
      ? "Starting as producer...\n"
      : "Starting as publish/subscribe hub...\n",
  );
  if (config.consumeUrl !== null) {
    runtime.stdout(`Consuming from: ${redactUrl(config.consumeUrl)}\n`);
  }
  let service;
  try {
    service = await startService(config, runtime, log);
  } catch (error) {
    if (error instanceof ServeError) throw new Error(error.message);
    throw error;
  }
  for (const url of service.urls) runtime.stdout(`Serving on: ${url}\n`);
  const signal = await stopped;
  log.info(`received ${signal}: closing subscribers and stopping`);
  await service.shutdown();
  return 0;
}

async function subscribe(args: string[], runtime: Runtime): Promise<number> {
  const command = parseSubscribeArgs(args, runtime.env());
  if (command === "help") {
    runtime.stdout(formatUsage("wsevent"));
    return 0;
  }
  const controller = new AbortController();
  runtime.onShutdownSignal(() => controller.abort());
  // `wsevent subscribe URL | head -1`: once the reader is gone, stop
  // quietly with 0, as a filter does. Deno and Bun throw from the write,
  // Node emits an error on process.stdout.
  let readerGone = false;
  const pipeClosed = (error: unknown): boolean => {
    const { code, name } = (error ?? {}) as { code?: string; name?: string };
    if (code !== "EPIPE" && name !== "BrokenPipe") return false;
    readerGone = true;
    controller.abort();
    return true;
  };
  const onStdoutError = (error: unknown): void => {
    if (!pipeClosed(error)) throw error;
  };
  process.stdout.on("error", onStdoutError);
  const stdout = (text: string): void => {
    if (readerGone) return;
    try {
      runtime.stdout(text);
    } catch (error) {
      if (!pipeClosed(error)) throw error;
    }
  };
  return await runSubscribe(command, {
    stdout,
    stderr: runtime.stderr,
    signal: controller.signal,
    statusLine: runtime.stderrIsTerminal(),
  });
}

function isEntryPoint(): boolean {
  const meta = import.meta as ImportMeta & { main?: boolean };
  if (typeof meta.main === "boolean") return meta.main;
  // Node before 24.2 has no import.meta.main: compare with the script path.
  const script =
    (globalThis as { process?: { argv?: string[] } }).process?.argv?.[1] ?? "";
  return script !== "" &&
    import.meta.url.endsWith(
      script.replace(/\\/g, "/").split("/").pop() ?? "\0",
    );
}

if (isEntryPoint()) {
  const runtime = await loadRuntime();
  runtime.exit(await main(runtime.args(), runtime));
}
