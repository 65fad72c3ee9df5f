/**
 * Starts the engine a configuration asks for. The Redis engine and its
 * client are loaded with a dynamic import only when asked for, so the
 * default (and the compiled binary) never loads a Redis client.
 *
 * @module
 */

import type { Logger } from "../log.ts";
import type { EngineConfig } from "./config.ts";
import { createMemoryEngine } from "./memory.ts";
import type { Engine } from "./types.ts";

/** Options of {@link loadEngine}. */
export interface LoadEngineOptions {
  /** Events kept per path: the Redis stream's length bound. */
  bufferSize: number;
  /** Where the engine logs its connection's state. */
  log?: Logger;
}

/**
 * Creates the configured engine. A Redis engine connects in the
 * background: it reports itself disconnected until it is connected.
 *
 * @example The default engine
 * ```ts
 * import { loadEngine } from "../../mod.ts";
 * const engine = await loadEngine({ kind: "memory" }, { bufferSize: 1000 });
 * console.log(engine.name, engine.status); // "memory" undefined
 * ```
 *
 * @param config The engine's configuration.
 * @param options Limits and logging.
 * @returns The engine.
 */
export async function loadEngine(
  config: EngineConfig,
  options: LoadEngineOptions,
): Promise<Engine> {
  if (config.kind === "memory") return createMemoryEngine();
  const { createRedisEngine } = await import("./redis.ts");
  return createRedisEngine({
    url: config.url,
    prefix: config.prefix,
    historyTtlSeconds: config.historyTtlSeconds,
    commandTimeoutMs: config.commandTimeoutMs,
    maxLength: options.bufferSize,
    log: options.log,
  });
}
