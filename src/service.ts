/**
 * A serving instance: an {@link Instance} listening through a runtime
 * adapter. Runtime-agnostic: the adapter is a parameter.
 *
 * @module
 */

import type { Config } from "./config.ts";
import { loadEngine } from "./engine/load.ts";
import { createInstance, prepareInstance } from "./instance.ts";
import type { Logger } from "./log.ts";
import type { Runtime } from "./runtime/types.ts";
import { readTlsPair, reloadTlsOnSignal } from "./tls.ts";

/** Time given to the server to close its connections on shutdown. */
const SHUTDOWN_TIMEOUT_MS = 1000;

/** A running instance. */
export interface Service {
  /** One URL per served path. */
  urls: string[];
  /** Answers publishes in flight (new ones get 503), closes subscribers with 1001, stops the server. */
  shutdown(): Promise<void>;
}

/**
 * Starts an instance and listens on its serve address.
 *
 * @param config The configuration.
 * @param runtime The runtime adapter.
 * @param log Where to log.
 * @returns The running instance.
 * @throws {ServeError} When the address cannot be bound.
 */
export async function startService(
  config: Config,
  runtime: Runtime,
  log: Logger,
): Promise<Service> {
  const websocket = runtime.websocketSupport({
    heartbeatMs: config.heartbeatMs,
    maxFrameBytes: config.maxBodyBytes,
    maxQueueBytes: config.maxQueueBytes,
  });
  const parts = {
    ...await prepareInstance(config, runtime.readTextFile),
    processStats: runtime.processStats,
  };
  const tls = await readTlsPair(config, runtime.readTextFile);
  const engine = await loadEngine(config.engine, {
    bufferSize: config.bufferSize,
    log,
  });
  const instance = createInstance(config, websocket, log, engine, parts);
  if (parts.jwt !== null) {
    log.info(`authorizing tokens: ${parts.jwt.description}`);
  }
  // Go listens on 127.0.0.1 for "localhost"; so do we, whatever the
  // resolver's order of ::1 and 127.0.0.1.
  const hostname = config.serveAddress.hostname === "localhost"
    ? "127.0.0.1"
    : config.serveAddress.hostname;
  let server;
  try {
    server = await runtime.serve(instance.app.fetch, {
      hostname,
      port: config.serveAddress.port,
      maxFrameBytes: config.maxBodyBytes,
      tls,
    });
  } catch (error) {
    await instance.stop();
    throw error;
  }
  if (runtime.notice !== undefined) log.info(runtime.notice);
  if (tls !== undefined) {
    log.info(`serving TLS (${server.protocols ?? "http/1.1"})`);
    reloadTlsOnSignal(config, server, { ...runtime, log });
  }
  const collecting = runtime.collectOnSignal?.(() => {
    const heap = runtime.processStats?.().heapUsedBytes;
    log.info("garbage collected on SIGUSR2", { heapUsedBytes: heap });
  });
  if (collecting) {
    log.info("gc() is exposed: SIGUSR2 runs a full garbage collection");
  }
  const shown = hostname === "0.0.0.0" || hostname === "::"
    ? "localhost"
    : hostname.includes(":")
    ? `[${hostname}]`
    : hostname;
  return {
    urls: [...config.servePaths, ...config.servePatterns].map((path) =>
      `${tls ? "wss" : "ws"}://${shown}:${server.port}/${encodeURI(path)}`
    ),
    async shutdown() {
      // Publishes in flight are answered before the engine closes, then
      // subscribers get 1001, then the server closes its connections.
      await instance.drain();
      await instance.stop();
      await Promise.race([
        server.shutdown(),
        new Promise((r) => setTimeout(r, SHUTDOWN_TIMEOUT_MS)),
      ]);
    },
  };
}
