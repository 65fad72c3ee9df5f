/**
 * The Hono app of a serving instance: WebSocket and SSE subscriptions,
 * publishing, health and metrics. It receives the runtime's WebSocket
 * support as a parameter and touches no runtime globals.
 *
 * @module
 */

import { Hono } from "hono";
import { type Engine, EngineUnavailableError } from "../engine/types.ts";
import type { Hub, Subscription, Topic } from "../hub.ts";
import type { EventData } from "../event.ts";
import type { Logger } from "../log.ts";
import { originAllowed, requestToken, timingSafeEqual } from "./guard.ts";
import { ExpiryTimers } from "./_expiry.ts";
import { cookieToken, JwtError, type JwtGrant } from "./jwt.ts";
import type { JwtAuthorizer } from "./jwt.ts";
import {
  formatMetrics,
  formatProcessMetrics,
  type ProcessStats,
} from "./metrics.ts";
import {
  topicNameProblem,
  type TopicPatterns,
  TopicRefusedError,
} from "../topics.ts";
import { indexPageResponse, streamPageResponse, wantsHtml } from "./pages.ts";
import { BodyError, forwardPublish, readEventBody } from "./publish.ts";
import { hostHeaderValid, parseRequestUrl } from "./request_target.ts";
import { createSseResponse, SSE_HEADERS } from "./sse.ts";
import type {
  HttpApp,
  UpstreamStatus,
  WebSocketSink,
  WebSocketSupport,
} from "./types.ts";
import {
  handshakeProblem,
  type UpgradeContext,
  upgradeSubscriber,
} from "./websocket.ts";
import {
  errorFrame,
  type PublisherHooks,
  type PublisherSocket,
  upgradePublisher,
} from "./ws_publish.ts";

/** Options of {@link createApp}. */
export interface AppOptions {
  /** The hub whose topics are served. */
  hub: Hub;
  /**
   * Topics created on demand below served patterns (`rooms/*`).
   * @default {null}
   */
  topics?: TopicPatterns | null;
  /**
   * Where a POST to an on-demand topic is forwarded (a relay of an
   * upstream pattern), or null to publish it here. @default {undefined}
   */
  forwardPatternUrl?: (path: string) => URL | null;
  /** The runtime's WebSocket support. */
  websocket: WebSocketSupport;
  /** Largest published body or incoming frame. @default {1048576} */
  maxBodyBytes?: number;
  /** Token required to publish. @default {null} */
  publishToken?: string | null;
  /** Token required to subscribe. @default {null} */
  subscribeToken?: string | null;
  /**
   * Token required for `/`, `/metrics` and the details of `/readyz` and
   * `/healthz` (which still answer their status without it, for probes).
   * @default {null}
   */
  statusToken?: string | null;
  /** Time a published body has to arrive in full, in ms (0: unbounded). @default {10000} */
  bodyTimeoutMs?: number;
  /**
   * Checks JWTs per topic (their `wsevent` claim); the static tokens keep
   * working beside it. With it, every subscribe and publish needs a token.
   * @default {null}
   */
  jwt?: JwtAuthorizer | null;
  /** Browser origins allowed; empty allows all. @default {[]} */
  allowOrigins?: readonly string[];
  /** Where a POST is forwarded instead of published here (relay). @default {null} */
  forwardPublishUrl?: URL | null;
  /** Most bytes of answers queued for a WebSocket publisher that does not read them. @default {4194304} */
  maxQueueBytes?: number;
  /** Token for the forwarded POST. @default {null} */
  upstreamToken?: string | null;
  /**
   * The engine that stores published events; without one, events are
   * published straight into the hub's topics (the memory engine's way).
   */
  engine?: Engine;
  /** Relay upstreams, for /readyz and /metrics. */
  upstreams?: () => UpstreamStatus[];
  /**
   * The path the app is mounted at inside another app (`/live`): requests
   * arrive with it, topics are named without it. @default {""}
   */
  basePath?: string;
  /** Version shown by /healthz. @default {"dev"} */
  version?: string;
  /** Where rejects are logged. */
  log?: Logger;
  /** The process's memory, fds and event-loop delay, for /metrics. */
  processStats?: () => ProcessStats;
}

/** The app and the heartbeat the owner calls every period. */
export interface WseventApp {
  /** The Hono app. */
  app: HttpApp;
  /** Pings WebSocket subscribers and writes SSE heartbeat comments. */
  heartbeat(): void;
  /** Subscribers that receive heartbeats. */
  readonly live: ReadonlySet<WebSocketSink>;
  /**
   * Shutdown, first step: from now on a publish not yet stored is answered
   * `503` `shutting_down` (with `Connection: close`); resolves once every
   * publish in flight has been answered, or after `timeoutMs`.
   *
   * @returns Whether every publish in flight was answered in time.
   */
  drain(timeoutMs: number): Promise<boolean>;
}

const JSON_HEADERS = { "Content-Type": "application/json" };

/** For error answers: a browser must never read them as anything but JSON. */
const NOSNIFF = { "X-Content-Type-Options": "nosniff" };

/** The longest last event id accepted for a resume. */
const MAX_ID_LENGTH = 128;

/** The grant of a request that needs no token. */
const OPEN: JwtGrant = { expiresAtMs: null };

function isGrant(value: Response | JwtGrant): value is JwtGrant {
  return "expiresAtMs" in value;
}

function isTopic(value: Topic | Response): value is Topic {
  return "path" in value;
}

function isPromise<T>(value: T | Promise<T>): value is Promise<T> {
  return typeof (value as { then?: unknown }).then === "function";
}

/** True for a request asking to upgrade to WebSocket. */
function isWebSocketUpgrade(request: Request): boolean {
  return (request.headers.get("upgrade") ?? "").toLowerCase() === "websocket";
}

/**
 * True when reading a request failed because its client went away (the
 * runtimes say so differently: an aborted signal, an AbortError, or
 * node:http's "aborted" / a reset connection).
 */
function clientAborted(request: Request, error: unknown): boolean {
  if (request.signal?.aborted) return true;
  if (!(error instanceof Error)) return false;
  return error.name === "AbortError" ||
    /^(aborted|request aborted)$|ECONNRESET|connection (was )?(reset|closed)/i
      .test(error.message);
}

/** The path of a request URL, for log lines. */
function pathOf(url: string): string {
  const start = url.indexOf("/", url.indexOf("//") + 2);
  if (start < 0) return "/";
  const end = url.slice(start).search(/[?#]/);
  return end < 0 ? url.slice(start) : url.slice(start, start + end);
}

/** What the runtime's upgrader reads: Hono's context, in the part it uses. */
function upgradeContext(request: Request, env: unknown): UpgradeContext {
  return {
    env,
    req: {
      raw: request,
      url: request.url,
      header: (name: string) => request.headers.get(name) ?? undefined,
    },
  };
}

type Reject =
  | "unauthorized"
  | "forbidden_topic"
  | "forbidden_origin"
  | "subscriber_limit"
  | "bad_request";

/**
 * Creates the HTTP app for a hub.
 *
 * @example Usage
 * ```ts ignore
 * import { createApp, createHub } from "../../mod.ts";
 * import { websocketSupport } from "../runtime/deno.ts";
 * const hub = createHub();
 * hub.addTopic("events", "e1");
 * const { app } = createApp({ hub, websocket: websocketSupport({ heartbeatMs: 15000 }) });
 * Deno.serve(app.fetch);
 * ```
 *
 * @param options The hub, the runtime's WebSocket support and policies.
 * @returns The app.
 */
export function createApp(options: AppOptions): WseventApp {
  const { hub } = options;
  const maxBody = options.maxBodyBytes ?? 1 << 20;
  const live = new Set<WebSocketSink>();
  const rejects: Record<Reject, number> = {
    unauthorized: 0,
    forbidden_topic: 0,
    forbidden_origin: 0,
    subscriber_limit: 0,
    bad_request: 0,
  };
  const upstreams = options.upstreams ?? (() => []);
  // Shared by every subscriber (no closures per connection).
  const expiry = new ExpiryTimers();
  const hooks = {
    onOpen(
      sink: WebSocketSink,
      subscription: Subscription,
      expiresAtMs: number | null = null,
    ): void {
      live.add(sink);
      if (expiresAtMs !== null) expiry.watch(subscription, expiresAtMs);
    },
    onClose(sink: WebSocketSink): void {
      live.delete(sink);
      expiry.forget(sink);
    },
  };
  const socketHooks = { ...hooks, maxFrameBytes: maxBody };
  const app = new Hono();

  const refuse = (
    request: Request,
    reason: Reject,
    status: 400 | 401 | 403 | 503,
    message: string,
  ): Response => {
    rejects[reason]++;
    options.log?.warn(
      `refused ${request.method} ${pathOf(request.url)}: ${message}`,
    );
    const headers: Record<string, string> = status === 401
      ? { ...NOSNIFF, "WWW-Authenticate": 'Bearer realm="wsevent"' }
      : NOSNIFF;
    return Response.json({ error: message, code: reason }, { status, headers });
  };
  // Origins first (a cross-site form or fetch can POST without a
  // preflight, so the list guards publishing too), then the token: header,
  // or for subscribers also `?token=` (browsers cannot set WebSocket or
  // EventSource headers).
  const guard = (
    request: Request,
    action: "subscribe" | "publish",
    path: string,
    socket = false,
  ): Response | JwtGrant | Promise<Response | JwtGrant> => {
    if (!originAllowed(request, options.allowOrigins ?? [])) {
      return refuse(
        request,
        "forbidden_origin",
        403,
        `Origin "${request.headers.get("origin")}" is not allowed`,
      );
    }
    const token = action === "subscribe"
      ? options.subscribeToken
      : options.publishToken;
    const jwt = options.jwt ?? null;
    if (!token && jwt === null) return OPEN;
    const given = credential(request, action, socket);
    if (given !== null && token && timingSafeEqual(given, token)) return OPEN;
    if (given === null || jwt === null) {
      return refuse(
        request,
        "unauthorized",
        401,
        `Cannot ${action}: missing or wrong token`,
      );
    }
    return jwt.authorize(given, action, path).catch((error: unknown) =>
      error instanceof JwtError
        ? refuse(
          request,
          error.status === 401 ? "unauthorized" : "forbidden_topic",
          error.status,
          error.message,
        )
        : internalError(error)
    );
  };
  // The token: `Authorization: Bearer`, for subscribers `?token=`, else the
  // `wsevent_token` cookie (browsers), taken only without an Origin or from
  // an allowed one: a cross-site form could post with it, and a cross-site
  // page could open a WebSocket with it (no CORS there) and read the stream.
  // A publisher's WebSocket may send `?token=` too (browsers again).
  const credential = (
    request: Request,
    action: "subscribe" | "publish",
    socket: boolean,
  ): string | null => {
    const given = requestToken(request, action === "subscribe" || socket);
    if (given !== null || request.headers.has("authorization")) return given;
    if (!cookieOrigin(request)) return null;
    return cookieToken(request);
  };
  // As originAllowed: no implicit same origin (a page that rebinds its DNS
  // name chooses both Origin and Host).
  const cookieOrigin = (request: Request): boolean => {
    const origin = request.headers.get("origin");
    return origin === null || (options.allowOrigins ?? []).includes(origin);
  };

  // With -status-token, what an instance runs and serves is for the
  // operator: probes still get their status code, without the details.
  const statusAllowed = (request: Request): boolean => {
    if (!options.statusToken) return true;
    const given = requestToken(request, false);
    return given !== null && timingSafeEqual(given, options.statusToken);
  };
  const statusRefused = (request: Request): Response =>
    refuse(
      request,
      "unauthorized",
      401,
      "Cannot read the status: missing or wrong token",
    );

  app.get("/healthz", (c) => {
    if (!statusAllowed(c.req.raw)) return c.json({ status: "ok" });
    return c.json({
      status: "ok",
      version: options.version ?? "dev",
      subscribers: hub.counts,
    });
  });
  app.get("/readyz", (c) => {
    const down = upstreams().filter((u) => !u.connected);
    const engine = options.engine?.status;
    const ready = down.length === 0 && (engine?.connected ?? true);
    const body = engine === undefined ? { ready, upstreams: upstreams() } : {
      ready,
      upstreams: upstreams(),
      engine: {
        name: options.engine?.name,
        connected: engine.connected,
        ...(engine.problem === undefined ? {} : { problem: engine.problem }),
      },
    };
    if (!statusAllowed(c.req.raw)) return c.json({ ready }, ready ? 200 : 503);
    return c.json(body, ready ? 200 : 503);
  });
  app.get(
    "/metrics",
    (c) =>
      !statusAllowed(c.req.raw) ? statusRefused(c.req.raw) : c.text(
        formatMetrics(
          hub,
          upstreams(),
          rejects,
          options.engine,
          options.topics,
        ) + publishesInFlight() +
          formatProcessMetrics(options.processStats?.() ?? {}),
        200,
        { "Content-Type": "text/plain; version=0.0.4; charset=utf-8" },
      ),
  );

  // A served topic, or the path of one to create on demand (a pattern
  // covers it): created only once the request is authorized.
  const subscribe = (
    request: Request,
    env: unknown,
    target: Topic | string,
    query: URLSearchParams,
  ): Response | Promise<Response> => {
    if (query.has("publish")) return openPublisher(request, env, target, query);
    const path = typeof target === "string" ? target : target.path;
    const checked = guard(request, "subscribe", path);
    const go = (grant: JwtGrant): Response | Promise<Response> => {
      const topic = resolve(request, target);
      if (!isTopic(topic)) return topic;
      // A topic just created on demand: answer once the engine's live feed
      // is placed, so nothing published after the answer is missed.
      const opened = options.engine?.opened?.(topic);
      if (opened !== undefined) {
        return opened.then(() =>
          admit(request, env, topic, query, grant.expiresAtMs)
        );
      }
      return admit(request, env, topic, query, grant.expiresAtMs);
    };
    if (isPromise(checked)) {
      return checked.then((grant) => isGrant(grant) ? go(grant) : grant);
    }
    if (!isGrant(checked)) return checked;
    return go(checked);
  };

  // A topic below a pattern may have been dropped as idle while its request
  // waited (a token checked, a body read): looked up again, so nothing is
  // published to or subscribed on a topic no longer served.
  const resolve = (request: Request, target: Topic | string) =>
    typeof target === "string" ||
      options.topics?.patternOf(target.path) !== undefined
      ? obtain(request, typeof target === "string" ? target : target.path)
      : target;

  const obtain = (request: Request, path: string): Topic | Response => {
    try {
      return options.topics!.obtain(path);
    } catch (error) {
      if (!(error instanceof TopicRefusedError)) throw error;
      if (error.status === 400) rejects.bad_request++;
      options.log?.warn(
        `refused ${request.method} ${pathOf(request.url)}: ${error.message}`,
      );
      return Response.json({ error: error.message, code: error.code }, {
        status: error.status,
        headers: error.status === 503 ? { "Retry-After": "5" } : {},
      });
    }
  };

  const admit = (
    request: Request,
    env: unknown,
    topic: Topic,
    query: URLSearchParams,
    expiresAtMs: number | null,
  ): Response | Promise<Response> => {
    if (!hub.hasRoom) {
      return refuse(
        request,
        "subscriber_limit",
        503,
        "Cannot subscribe: the instance is at its subscriber limit",
      );
    }
    const lastEventId = request.headers.get("last-event-id") ??
      query.get("lastEventId") ?? undefined;
    // Our ids are under 50 characters; a longer one is not ours, and is
    // not kept or echoed in a gap notice.
    if (lastEventId !== undefined && lastEventId.length > MAX_ID_LENGTH) {
      return refuse(
        request,
        "bad_request",
        400,
        `Cannot resume: the last event id is longer than ${MAX_ID_LENGTH} characters`,
      );
    }
    const replayAll = query.get("replay") === "all";
    if (isWebSocketUpgrade(request)) {
      const problem = handshakeProblem(request);
      if (problem !== null) return refuse(request, "bad_request", 400, problem);
      const format = query.get("format") === "json" ? "json" : "raw";
      return upgradeSubscriber(
        upgradeContext(request, env),
        topic,
        options.websocket,
        socketHooks,
        { format, lastEventId, replayAll, expiresAtMs },
      );
    }
    const output = options.websocket.sseOutput?.(env, SSE_HEADERS);
    return createSseResponse(topic, {
      onClose: hooks.onClose,
      onOpen: expiresAtMs === null
        ? hooks.onOpen
        : (sink, subscription) => hooks.onOpen(sink, subscription, expiresAtMs),
      lastEventId,
      replayAll,
      output,
    });
  };

  // Shutdown: publishes in flight are answered before the engine closes
  // (a cut connection would leave a publisher unable to tell whether its
  // event was stored); those arriving meanwhile get a clear 503.
  let draining = false;
  let inFlight = 0;
  const drained = new Set<() => void>();
  const shuttingDown = (): Response =>
    Response.json({
      error: "The instance is shutting down",
      code: "shutting_down",
    }, {
      status: 503,
      headers: { ...NOSNIFF, "Retry-After": "1", Connection: "close" },
    });
  const publishesInFlight = (): string =>
    "# HELP wsevent_publishes_in_flight Publishes being read or stored, not yet answered.\n" +
    "# TYPE wsevent_publishes_in_flight gauge\n" +
    `wsevent_publishes_in_flight ${inFlight}\n` +
    "# HELP wsevent_publisher_connections WebSocket publisher connections open.\n" +
    "# TYPE wsevent_publisher_connections gauge\n" +
    `wsevent_publisher_connections ${publishers.size}\n`;
  const publish = async (
    request: Request,
    target: Topic | string,
  ): Promise<Response> => {
    if (draining) return shuttingDown();
    inFlight++;
    try {
      return await publishNow(request, target);
    } finally {
      if (--inFlight === 0) { for (const wake of drained) wake(); }
    }
  };
  const drain = (timeoutMs: number): Promise<boolean> => {
    draining = true;
    for (const socket of publishers) socket.drain();
    if (inFlight === 0) return Promise.resolve(true);
    return new Promise((done) => {
      const wake = (): void => {
        clearTimeout(timer);
        drained.delete(wake);
        done(inFlight === 0);
      };
      const timer = setTimeout(wake, timeoutMs);
      drained.add(wake);
    });
  };

  const publishNow = async (
    request: Request,
    target: Topic | string,
  ): Promise<Response> => {
    const path = typeof target === "string" ? target : target.path;
    let checked = guard(request, "publish", path);
    if (isPromise(checked)) checked = await checked;
    if (!isGrant(checked)) return checked;
    try {
      const data = await readEventBody(
        request,
        maxBody,
        options.bodyTimeoutMs ?? 10_000,
      );
      // Its body arrived after the shutdown began: not stored, and said so.
      if (draining) return shuttingDown();
      const forwardTo =
        typeof target === "string" || options.topics?.owns(target)
          ? options.forwardPatternUrl?.(path) ?? null
          : options.forwardPublishUrl;
      if (forwardTo) {
        const type = request.headers.get("content-type");
        return await forwardPublish(
          data,
          type,
          forwardTo,
          options.upstreamToken ?? null,
        );
      }
      const topic = resolve(request, target);
      if (!isTopic(topic)) return topic;
      const id = options.engine === undefined
        ? topic.publish(data).id
        : options.engine.append(topic, data);
      return typeof id === "string" ? accepted(id) : accepted(await id);
    } catch (error) {
      if (error instanceof EngineUnavailableError) {
        options.log?.warn(`refused a publish: ${error.message}`);
        return Response.json({ error: error.message, code: error.code }, {
          status: 503,
          headers: { "Retry-After": "1" },
        });
      }
      if (clientAborted(request, error)) {
        // The client's choice, not the server's failure: no ERROR line.
        options.log?.debug(`publish to /${path} aborted by the client`);
        return Response.json({
          error: "The client aborted the request",
          code: "aborted",
        }, { status: 400 });
      }
      if (!(error instanceof BodyError)) return internalError(error);
      rejects.bad_request++;
      // A body that did not arrive in time: the connection goes too, or the
      // runtime would keep waiting for the rest of it.
      const headers: Record<string, string> = error.status === 408
        ? { ...NOSNIFF, Connection: "close" }
        : NOSNIFF;
      return Response.json({ error: error.message, code: error.code }, {
        status: error.status,
        headers,
      });
    }
  };

  // Publishing over a WebSocket (`?publish`): checked like a POST before
  // the upgrade, then each message stored like a POST's body.
  const publishers = new Set<PublisherSocket>();
  const publisherHooks: PublisherHooks = {
    publish: (path, data, socket) => publishFrame(path, data, socket),
    begin: () => void inFlight++,
    end: () => {
      if (--inFlight === 0) { for (const wake of drained) wake(); }
    },
    opened(socket) {
      publishers.add(socket);
      if (socket.sink !== undefined) live.add(socket.sink);
    },
    closed(socket) {
      publishers.delete(socket);
      if (socket.sink !== undefined) live.delete(socket.sink);
    },
    draining: () => draining,
    maxFrameBytes: maxBody,
    maxQueueBytes: options.maxQueueBytes ?? 4 << 20,
  };
  const openPublisher = (
    request: Request,
    env: unknown,
    target: Topic | string,
    query: URLSearchParams,
  ): Response | Promise<Response> => {
    const flag = query.get("publish");
    if (flag !== "" && flag !== "1" && flag !== "true") {
      return refuse(
        request,
        "bad_request",
        400,
        "Cannot publish: ?publish takes no value (or 1, true)",
      );
    }
    if (!isWebSocketUpgrade(request)) {
      return refuse(
        request,
        "bad_request",
        400,
        "Cannot publish with a GET: ?publish needs a WebSocket upgrade; POST one event instead",
      );
    }
    const path = typeof target === "string" ? target : target.path;
    const checked = guard(request, "publish", path, true);
    const go = (grant: JwtGrant): Response | Promise<Response> => {
      const problem = handshakeProblem(request);
      if (problem !== null) return refuse(request, "bad_request", 400, problem);
      if (draining) return shuttingDown();
      // A topic on demand is created (or refused) now, with a plain HTTP
      // answer, unless the publishes are forwarded upstream.
      if (forwardTarget(target, path) === null) {
        const topic = resolve(request, target);
        if (!isTopic(topic)) return topic;
      }
      return upgradePublisher(
        upgradeContext(request, env),
        path,
        options.websocket,
        publisherHooks,
        grant.expiresAtMs,
      );
    };
    if (isPromise(checked)) {
      return checked.then((grant) => isGrant(grant) ? go(grant) : grant);
    }
    return isGrant(checked) ? go(checked) : checked;
  };
  const forwardTarget = (target: Topic | string, path: string): URL | null =>
    typeof target === "string" ||
      (typeof target !== "string" && options.topics?.owns(target))
      ? options.forwardPatternUrl?.(path) ?? null
      : options.forwardPublishUrl ?? null;
  // One publisher message: stored (or forwarded) like a POST's body, and
  // answered with the frame a publisher reads.
  const publishFrame = (
    path: string,
    data: EventData,
    socket: PublisherSocket,
  ): string | Promise<string> => {
    if (draining) {
      return errorFrame(503, "shutting_down", "The instance is shutting down");
    }
    try {
      const known = hub.topic(path);
      const target = known ?? path;
      const forwardTo = forwardTarget(target, path);
      if (forwardTo) {
        // One POST at a time per publisher: POSTs in flight together may
        // reach the origin (and be stored) in any order.
        const forwarded = (forwarding.get(socket) ?? Promise.resolve("")).then(
          () =>
            forwardPublish(data, null, forwardTo, options.upstreamToken ?? null)
              .then(frameOf, frameOfError),
        );
        forwarding.set(socket, forwarded);
        return forwarded;
      }
      const topic = known !== undefined && !options.topics?.owns(known)
        ? known
        : obtainQuietly(path);
      if (!isTopic(topic)) return frameOf(topic);
      const id = options.engine === undefined
        ? topic.publish(data).id
        : options.engine.append(topic, data);
      return typeof id === "string"
        ? `{"id":"${id}"}`
        : id.then((stored) => `{"id":"${stored}"}`, frameOfError);
    } catch (error) {
      return frameOfError(error);
    }
  };
  const forwarding = new WeakMap<PublisherSocket, Promise<string>>();
  const obtainQuietly = (path: string): Topic | Response => {
    try {
      return options.topics!.obtain(path);
    } catch (error) {
      if (!(error instanceof TopicRefusedError)) throw error;
      return Response.json({ error: error.message, code: error.code }, {
        status: error.status,
      });
    }
  };
  // A POST's JSON answer, as a publisher's frame (with its status).
  const frameOf = async (response: Response): Promise<string> => {
    const body = await response.json() as Record<string, unknown>;
    if (response.status === 202) return JSON.stringify({ id: body.id ?? null });
    return JSON.stringify({ ...body, status: response.status });
  };
  const frameOfError = (error: unknown): string => {
    if (error instanceof EngineUnavailableError) {
      options.log?.warn(`refused a publish: ${error.message}`);
      return errorFrame(503, error.code, error.message);
    }
    options.log?.error(
      `publish failed: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
    return errorFrame(500, "internal", "Internal error");
  };

  // Ids are made of base-36 letters, digits and "-": no escaping.
  const accepted = (id: string): Response =>
    new Response(`{"id":"${id}"}`, { status: 202, headers: JSON_HEADERS });

  const internalError = (error: unknown): Response => {
    options.log?.error(
      `request failed: ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
    return Response.json({ error: "Internal error", code: "internal" }, {
      status: 500,
    });
  };

  const badTarget = (): Response => {
    rejects.bad_request++;
    return Response.json({
      error: "Cannot serve a request with an invalid Host header or URL",
      code: "bad_request",
    }, { status: 400, headers: NOSNIFF });
  };

  app.get("/", (c) => {
    if (!statusAllowed(c.req.raw)) return statusRefused(c.req.raw);
    if (hub.topic("") === undefined && wantsHtml(c.req.raw)) {
      return indexPageResponse(hub, upstreams(), options.version ?? "dev");
    }
    return c.json({
      paths: hub.topics().map((t) => `/${t.path}`),
      ...(options.topics
        ? { patterns: options.topics.patterns.map((p) => `/${p}`) }
        : {}),
      version: options.version ?? "dev",
    });
  });

  // The topic served at a URL path: undefined when none is, null when the
  // path cannot be decoded. Each topic is remembered under its plain
  // spelling (`/events`), so the usual request skips the decoding.
  const topicsByPath = new Map<string, Topic>();
  const base = options.basePath ?? "";
  const topicAt = (full: string): Topic | undefined | null => {
    const known = topicsByPath.get(full);
    if (known !== undefined) return known;
    if (base !== "" && !full.startsWith(`${base}/`)) return undefined;
    const pathname = full.slice(base.length);
    let topic: Topic | undefined;
    try {
      topic = hub.topic(decodeURIComponent(pathname).replace(/^\/+/, ""));
    } catch {
      return null;
    }
    if (
      topic !== undefined && pathname === `/${topic.path}` &&
      !options.topics?.owns(topic)
    ) {
      topicsByPath.set(full, topic);
    }
    return topic;
  };

  // The decoded path of a request to a topic not yet created that a
  // served pattern covers.
  const onDemandPath = (full: string): string | undefined => {
    if (!options.topics) return undefined;
    if (base !== "" && !full.startsWith(`${base}/`)) return undefined;
    let path: string;
    try {
      path = decodeURIComponent(full.slice(base.length)).replace(/^\/+/, "");
    } catch {
      return undefined;
    }
    return options.topics.patternOf(path) === undefined ? undefined : path;
  };
  const onDemand = (
    c: { req: { raw: Request; method: string; url: string }; env: unknown },
    path: string,
  ): Response | Promise<Response> => {
    const request = c.req.raw;
    if (c.req.method === "GET" && wantsHtml(request)) {
      // No live view for a name no topic can have (nor the name echoed).
      const problem = topicNameProblem(path);
      if (problem !== null) {
        rejects.bad_request++;
        return Response.json({ error: problem, code: "bad_topic" }, {
          status: 400,
          headers: NOSNIFF,
        });
      }
      return streamPageResponse(
        { path },
        Boolean(
          options.publishToken || options.subscribeToken || options.jwt,
        ),
      );
    }
    if (c.req.method === "GET") {
      const url = parseRequestUrl(c.req.url);
      if (url === null) return badTarget();
      return subscribe(request, c.env, path, url.searchParams);
    }
    if (c.req.method === "POST") return publish(request, path);
    return Response.json({
      error: `Method ${c.req.method} is not allowed`,
      code: "method_not_allowed",
    }, { status: 405, headers: { Allow: "GET, POST" } });
  };

  app.all("*", (c) => {
    const topic = topicAt(c.req.path);
    if (topic === null) {
      return c.json(
        {
          error: "Cannot decode the request path",
          code: "bad_request",
        },
        400,
        NOSNIFF,
      );
    }
    if (topic === undefined) {
      const path = onDemandPath(c.req.path);
      if (path !== undefined) return onDemand(c, path);
      // The path is not echoed: what a client sent stays out of our answers.
      return c.json(
        {
          error: "No event stream at this path",
          code: "not_found",
        },
        404,
        NOSNIFF,
      );
    }
    if (c.req.method === "GET" && wantsHtml(c.req.raw)) {
      return streamPageResponse(
        topic,
        Boolean(
          options.publishToken || options.subscribeToken || options.jwt,
        ),
      );
    }
    if (c.req.method === "GET") {
      const url = parseRequestUrl(c.req.url);
      if (url === null) return badTarget();
      return subscribe(c.req.raw, c.env, topic, url.searchParams);
    }
    if (c.req.method === "POST") return publish(c.req.raw, topic);
    return c.json(
      {
        error: `Method ${c.req.method} is not allowed`,
        code: "method_not_allowed",
      },
      405,
      { ...NOSNIFF, Allow: "GET, POST" },
    );
  });
  app.onError((error) => internalError(error));

  // The two hot paths skip Hono's routing, with the same guard, subscribe
  // and publish code as the routes: a WebSocket upgrade to a served path
  // (an idle connection is what an instance holds most of, and on Bun the
  // garbage of one routed request per connection shows as about 0.5 KiB of
  // resident memory per connection), and a publish (one per event; on Bun,
  // where one native call fans an event out, routing is a good part of an
  // event's cost). Everything else goes through the Hono app.
  const fetch = (
    request: Request,
    env?: unknown,
  ): Response | Promise<Response> => {
    // Routing reads the path of request.url, which the runtime built from
    // the Host header and the request target: a Host that is not a plain
    // host[:port] could move the path or break the URL. A plain 400 then,
    // on every runtime, before anything reads the URL.
    if (!hostHeaderValid(request)) return badTarget();
    if (request.method === "POST") {
      const topic = topicAt(pathOf(request.url));
      if (topic) return publish(request, topic);
    } else if (request.method === "GET" && isWebSocketUpgrade(request)) {
      const url = parseRequestUrl(request.url);
      if (url === null) return badTarget();
      const topic = topicAt(url.pathname);
      if (topic) return subscribe(request, env, topic, url.searchParams);
    }
    return app.fetch(request, env);
  };

  return {
    app: { fetch },
    live,
    drain,
    heartbeat() {
      for (const sink of live) sink.heartbeat();
    },
  };
}
