/**
 * The entry for `deno serve mod.ts` and Deno Deploy-style edges: one
 * instance per process, configured from `WSEVENT_*` environment variables,
 * created on the first request.
 *
 * @module
 */

import { parseEnvConfig } from "./config.ts";
import { loadEngine } from "./engine/load.ts";
import { createInstance, type Instance, prepareInstance } from "./instance.ts";
import { createLogger } from "./log.ts";
import { loadRuntime } from "./runtime/load.ts";

let instance: Promise<Instance> | undefined;

/** Time left to the server to send its last bytes after subscribers are closed. */
const EXIT_GRACE_MS = 100;

async function start(): Promise<Instance> {
  const runtime = await loadRuntime();
  const config = parseEnvConfig(runtime.env());
  const log = createLogger({
    level: config.logLevel,
    json: config.logJson,
    write: runtime.stderr,
  });
  const support = runtime.fetchWebSocketSupport ?? runtime.websocketSupport;
  const websocket = support({
    heartbeatMs: config.heartbeatMs,
    maxFrameBytes: config.maxBodyBytes,
    maxQueueBytes: config.maxQueueBytes,
  });
  log.info(
    `edge instance serving ${
      [...config.servePaths, ...config.servePatterns].map((p) => `/${p}`)
        .join(", ")
    }`,
  );
  const parts = await prepareInstance(config, runtime.readTextFile);
  const engine = await loadEngine(config.engine, {
    bufferSize: config.bufferSize,
    log,
  });
  const created = createInstance(config, websocket, log, engine, parts);
  // `deno serve` answers SIGTERM by draining its server, but our timers
  // (heartbeat, producer, relay) would keep the process alive for ever:
  // close subscribers with 1001, stop the timers, then end the process.
  runtime.onShutdownSignal(async (signal) => {
    log.info(`received ${signal}: closing subscribers and stopping`);
    await created.drain();
    await created.stop();
    setTimeout(() => runtime.exit(0), EXIT_GRACE_MS);
  });
  return created;
}

/**
 * Answers one request, creating the instance on first use.
 *
 * @example Usage
 * ```ts ignore
 * // deno serve --allow-net --allow-env mod.ts
 * import { edgeFetch } from "../mod.ts";
 * export default { fetch: edgeFetch };
 * ```
 *
 * @param request The request.
 * @returns The response.
 */
export async function edgeFetch(request: Request): Promise<Response> {
  instance ??= start();
  return (await instance).app.fetch(request);
}
