/**
 * A serving instance: hub, producer, relay, app and server wired from a
 * Config. Runtime-agnostic: the runtime adapter is a parameter.
 *
 * @module
 */

import type { Config } from "./config.ts";
import { createEpoch } from "./event.ts";
import { createApp } from "./http/app.ts";
import type { UpstreamStatus } from "./http/types.ts";
import { createHub } from "./hub.ts";
import type { Logger } from "./log.ts";
import { startProducer } from "./producer.ts";
import { startRelay } from "./relay.ts";
import type { Runtime } from "./runtime/types.ts";
import type { Upstream } from "./upstream.ts";
import { VERSION } from "./version.ts";

/** Time given to subscribers to finish their close handshake on shutdown. */
const CLOSE_TIMEOUT_MS = 1000;

/** A running instance. */
export interface Service {
  /** One URL per served path. */
  urls: string[];
  /** Stops accepting, closes subscribers with 1001, stops the server. */
  shutdown(): Promise<void>;
}

/**
 * Starts an instance.
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
  const hub = createHub({
    bufferSize: config.bufferSize,
    bufferBytes: config.bufferBytes,
    maxQueueBytes: config.maxQueueBytes,
    maxSubscribers: config.maxSubscribers,
    slowPolicy: config.slowPolicy,
  });
  const epoch = createEpoch();
  const topics = config.servePaths.map((path) => hub.addTopic(path, epoch));
  const stops: (() => void)[] = [];
  let upstream: Upstream | undefined;
  if (config.consumeUrl !== null) {
    const url = config.consumeUrl;
    upstream = startRelay(topics[0], {
      url,
      token: config.upstreamToken,
      heartbeatMs: config.heartbeatMs,
      maxMessageBytes: config.maxBodyBytes * 2 + 1024,
      onState: (
        state,
        detail,
      ) => (state === "connecting" ? log.debug(detail) : log.info(detail)),
    });
    stops.push(() => upstream?.close());
  }
  if (config.produce) {
    for (const topic of topics) {
      stops.push(startProducer(topic, {
        label: config.serveAddressText,
        intervalMs: config.intervalMs,
        onMessage: (message) =>
          log.debug(`produced on /${topic.path}: ${message.trimEnd()}`),
      }));
    }
  }
  const upstreams = (): UpstreamStatus[] =>
    upstream === undefined || config.consumeUrl === null ? [] : [{
      url: config.consumeUrl.href,
      path: topics[0].path,
      connected: upstream.connected,
      reconnects: upstream.reconnects,
    }];
  const websocket = runtime.websocketSupport({
    heartbeatMs: config.heartbeatMs,
    maxFrameBytes: config.maxBodyBytes,
  });
  const { app, heartbeat, live } = createApp({
    hub,
    websocket,
    maxBodyBytes: config.maxBodyBytes,
    publishToken: config.publishToken,
    subscribeToken: config.subscribeToken,
    allowOrigins: config.allowOrigins,
    forwardPublishUrl: config.forwardPublish ? config.consumeUrl : null,
    upstreamToken: config.upstreamToken,
    upstreams,
    version: VERSION,
    log,
  });
  const hostname = config.serveAddress.hostname === "localhost"
    ? "127.0.0.1"
    : config.serveAddress.hostname;
  let server;
  try {
    server = await runtime.serve(app.fetch, {
      hostname,
      port: config.serveAddress.port,
      maxFrameBytes: config.maxBodyBytes,
    });
  } catch (error) {
    for (const stop of stops) stop();
    throw error;
  }
  const timer = setInterval(heartbeat, config.heartbeatMs);
  const shown = hostname === "0.0.0.0" || hostname === "::"
    ? "localhost"
    : hostname.includes(":")
    ? `[${hostname}]`
    : hostname;
  return {
    urls: config.servePaths.map((path) =>
      `ws://${shown}:${server.port}/${path}`
    ),
    async shutdown() {
      clearInterval(timer);
      for (const stop of stops) stop();
      hub.close(1001, "going away");
      const deadline = Date.now() + CLOSE_TIMEOUT_MS;
      while (live.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      await Promise.race([
        server.shutdown(),
        new Promise((r) => setTimeout(r, CLOSE_TIMEOUT_MS)),
      ]);
    },
  };
}
