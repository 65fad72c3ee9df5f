/**
 * One instance's parts wired from a Config: hub, topics, relay, producer,
 * the Hono app and its heartbeat. Not yet listening: the CLI serves it with
 * a runtime adapter, an edge platform calls its `fetch`.
 *
 * @module
 */

import type { Config } from "./config.ts";
import { createMemoryEngine } from "./engine/memory.ts";
import type { Engine } from "./engine/types.ts";
import { createEpoch } from "./event.ts";
import { createApp } from "./http/app.ts";
import type { ProcessStats } from "./http/metrics.ts";
import { monitorLoopDelay } from "./_loop_delay.ts";
import {
  createJwtAuthorizer,
  type JwtAuthorizer,
  jwtKeyMaterial,
} from "./http/jwt.ts";
import { UsageError } from "./errors.ts";
import { CLOSE_TIMEOUT_MS } from "./http/socket_sink.ts";
import type {
  HttpApp,
  UpstreamStatus,
  WebSocketSupport,
} from "./http/types.ts";
import { createHub, type Hub, type Topic } from "./hub.ts";
import type { Logger } from "./log.ts";
import { startProducer } from "./producer.ts";
import { redactUrl } from "./redact.ts";
import { startRelay } from "./relay.ts";
import { createTopicPatterns, type TopicPatterns } from "./topics.ts";
import type { Upstream } from "./upstream.ts";
import { VERSION } from "./version.ts";

/** What a shutdown gives publishes in flight beyond the engine's timeout. */
const DRAIN_MARGIN_MS = 1000;

/** A wired instance. */
export interface Instance {
  /** The HTTP app. */
  app: HttpApp;
  /** The hub. */
  hub: Hub;
  /** The engine that stores the events. */
  engine: Engine;
  /**
   * First step of a shutdown, before {@link Instance.stop}: new publishes
   * get `503` `shutting_down`; resolves once the publishes in flight are
   * answered (`202` once stored, or `503`), within the engine's timeout
   * plus a second.
   */
  drain(): Promise<void>;
  /** Stops producer, relay and heartbeat; closes subscribers with 1001 and waits (bounded) for them; closes the engine. */
  stop(): Promise<void>;
}

/** What an instance needs that takes I/O to prepare (see {@link prepareInstance}). */
export interface InstanceParts {
  /** The JWT authorizer of `--jwt-key`, or null. */
  jwt: JwtAuthorizer | null;
  /** The runtime's process figures (memory, fds), for /metrics. @default {undefined} */
  processStats?: () => ProcessStats;
}

/**
 * Prepares what an instance needs from files: the JWT key.
 *
 * @param config The configuration.
 * @param readTextFile Reads a file, the runtime's way.
 * @returns The parts.
 * @throws {UsageError} When the JWT key cannot be read or used.
 */
export async function prepareInstance(
  config: Config,
  readTextFile: (path: string) => Promise<string>,
): Promise<InstanceParts> {
  if (config.jwtKey === null) return { jwt: null };
  try {
    const material = await jwtKeyMaterial(config.jwtKey, readTextFile);
    return {
      jwt: await createJwtAuthorizer(material, {
        leewaySeconds: config.jwtLeewaySeconds,
      }),
    };
  } catch (error) {
    throw new UsageError(
      `Cannot use flag -jwt-key: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  }
}

/** True for an upstream URL naming a pattern (`ws://host/rooms/*`). */
function isPatternUrl(url: URL): boolean {
  return url.pathname.endsWith("/*");
}

/**
 * The upstream URL of an on-demand topic of a pattern relay: the upstream
 * pattern's prefix plus what follows the served pattern's prefix.
 */
function upstreamOfTopic(config: Config, path: string): URL | null {
  const upstream = config.consumeUrl;
  const pattern = config.servePatterns[0];
  if (upstream === null || pattern === undefined) return null;
  const prefix = pattern.slice(0, -1);
  if (!path.startsWith(prefix)) return null;
  const url = new URL(upstream.href);
  url.pathname = url.pathname.slice(0, -1) + path.slice(prefix.length);
  return url;
}

/**
 * Starts the on-demand topics of the served patterns, their idle sweep
 * and, on a relay of an upstream pattern, one upstream consumer per topic.
 */
function startPatterns(
  config: Config,
  hub: Hub,
  engine: Engine,
  relayOptions: Omit<Parameters<typeof startRelay>[1], "url">,
  stops: (() => void)[],
): TopicPatterns | null {
  if (config.servePatterns.length === 0) return null;
  const relayed = config.consumeUrl !== null && isPatternUrl(config.consumeUrl);
  const upstreams = new Map<Topic, Upstream>();
  const patterns = createTopicPatterns({
    patterns: config.servePatterns,
    hub,
    engine,
    maxTopics: config.maxTopics,
    ttlMs: config.topicTtlMs,
    // A relay's topic lives while someone listens: its upstream publishes
    // whether anyone does or not.
    publishKeepsAlive: !relayed,
    onCreate(topic) {
      const url = relayed ? upstreamOfTopic(config, topic.path) : null;
      if (url !== null) {
        upstreams.set(topic, startRelay(topic, { ...relayOptions, url }));
      }
    },
    onDrop(topic) {
      upstreams.get(topic)?.close();
      upstreams.delete(topic);
    },
  });
  if (config.topicTtlMs > 0) {
    const sweep = setInterval(
      () => patterns.sweep(),
      Math.max(250, Math.min(config.topicTtlMs / 4, 60_000)),
    );
    stops.push(() => clearInterval(sweep));
  }
  stops.push(() => {
    for (const upstream of upstreams.values()) upstream.close();
    upstreams.clear();
  });
  return patterns;
}

/**
 * Wires an instance and starts its producer, relay and heartbeat timer.
 *
 * @param config The configuration.
 * @param websocket The runtime's WebSocket support.
 * @param log Where to log.
 * @param engine Where events are stored (see `loadEngine`). @default {createMemoryEngine()}
 * @param parts What {@link prepareInstance} read.
 * @returns The instance.
 */
export function createInstance(
  config: Config,
  websocket: WebSocketSupport,
  log: Logger,
  engine: Engine = createMemoryEngine(),
  parts: InstanceParts = { jwt: null },
): Instance {
  const hub = createHub({
    bufferSize: config.bufferSize,
    bufferBytes: config.bufferBytes,
    maxQueueBytes: config.maxQueueBytes,
    maxSubscribers: config.maxSubscribers,
    slowPolicy: config.slowPolicy,
    coalesceMs: config.coalesceMs,
  });
  const epoch = createEpoch();
  const topics = config.servePaths.map((path) => hub.addTopic(path, epoch));
  for (const topic of topics) engine.open(topic);
  const stops: (() => void)[] = [];
  const relayOptions = {
    token: config.upstreamToken,
    heartbeatMs: config.heartbeatMs,
    // A frame or SSE event may carry a JSON envelope or base64 around
    // the payload; the payload itself obeys our own -max-body.
    maxMessageBytes: config.maxBodyBytes * 2 + 1024,
    maxEventBytes: config.maxBodyBytes,
    createWebSocket: websocket.upstreamSocket,
    onState: (state: string, detail: string) =>
      state === "connecting" ? log.debug(detail) : log.info(detail),
    onDropped: (bytes: number) =>
      log.warn(
        `dropped an upstream event of ${bytes} bytes (over -max-body ${config.maxBodyBytes})`,
      ),
  };
  const patterns = startPatterns(config, hub, engine, relayOptions, stops);
  let upstream: Upstream | undefined;
  if (config.consumeUrl !== null && !isPatternUrl(config.consumeUrl)) {
    upstream = startRelay(topics[0], {
      ...relayOptions,
      url: config.consumeUrl,
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
        publish: (message) => {
          const id = engine.append(topic, message);
          if (typeof id === "string") return;
          id.catch((error: Error) =>
            log.warn(`demo event not stored: ${error.message}`)
          );
        },
      }));
    }
  }
  const upstreams = (): UpstreamStatus[] =>
    upstream === undefined || config.consumeUrl === null ? [] : [{
      // Shown to anyone on /readyz, /metrics and the index page.
      url: redactUrl(config.consumeUrl),
      path: topics[0].path,
      connected: upstream.connected,
      reconnects: upstream.reconnects,
    }];
  const loopDelay = monitorLoopDelay();
  stops.push(loopDelay.stop);
  const { app, heartbeat, live, drain } = createApp({
    hub,
    topics: patterns,
    forwardPatternUrl: config.forwardPublish && config.consumeUrl !== null &&
        isPatternUrl(config.consumeUrl)
      ? (path) => upstreamOfTopic(config, path)
      : undefined,
    websocket,
    maxBodyBytes: config.maxBodyBytes,
    maxQueueBytes: config.maxQueueBytes,
    publishToken: config.publishToken,
    statusToken: config.statusToken,
    bodyTimeoutMs: config.bodyTimeoutMs,
    subscribeToken: config.subscribeToken,
    jwt: parts.jwt,
    allowOrigins: config.allowOrigins,
    forwardPublishUrl: config.forwardPublish && config.consumeUrl !== null &&
        !isPatternUrl(config.consumeUrl)
      ? config.consumeUrl
      : null,
    engine,
    upstreamToken: config.upstreamToken,
    upstreams,
    version: VERSION,
    log,
    processStats: () => ({
      ...parts.processStats?.(),
      loopDelay: loopDelay.read(),
    }),
  });
  const timer = setInterval(heartbeat, config.heartbeatMs);
  return {
    app,
    hub,
    engine,
    async drain() {
      // A Redis append is answered within its command timeout: 202 once
      // stored, else 503.
      const engineMs = config.engine.kind === "redis"
        ? config.engine.commandTimeoutMs ?? 5000
        : 0;
      if (!await drain(engineMs + DRAIN_MARGIN_MS)) {
        log.warn("publishes still waiting for the engine at shutdown");
      }
    },
    async stop() {
      clearInterval(timer);
      for (const stop of stops) stop();
      hub.close(1001, "going away");
      const deadline = Date.now() + CLOSE_TIMEOUT_MS;
      while (live.size > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 20));
      }
      for (const topic of topics) engine.release(topic);
      patterns?.close();
      await engine.close();
      // What closing the engine refused is answered 503 before the server
      // closes its connections.
      await drain(DRAIN_MARGIN_MS);
    },
  };
}
