/**
 * The entry for `deno serve mod.ts` and Deno Deploy-style edges: one
 * instance per process, configured from `WSEVENT_*` environment variables,
 * created on the first request.
 *
 * @module
 */

import { parseEnvConfig } from "./config.ts";
import { createInstance, type Instance } from "./instance.ts";
import { createLogger } from "./log.ts";
import { loadRuntime } from "./runtime/load.ts";

let instance: Promise<Instance> | undefined;

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
    `edge instance serving ${config.servePaths.map((p) => `/${p}`).join(", ")}`,
  );
  return createInstance(config, websocket, log);
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
