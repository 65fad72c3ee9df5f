/**
 * wsevent's streams inside an existing Hono app: `streams.mount(app, path)`
 * where the streams should live, publish from server code with
 * `streams.publish()`. WebSocket subscriptions go through the upgrader the
 * app already uses for its runtime (`hono/deno`, `hono/bun`,
 * `@hono/node-server`); SSE and `POST` need nothing more.
 *
 * @module
 */

import { Hono } from "hono";
import { basePath } from "hono/route";
import type { EventData } from "./event.ts";
import { createApp, type WseventApp } from "./http/app.ts";
import {
  CLOSE_TIMEOUT_MS,
  createSocketSink,
  type SocketOps,
} from "./http/socket_sink.ts";
import type { WebSocketSupport } from "./http/types.ts";
import { createEpoch } from "./event.ts";
import { createHub, type Hub, HubClosedError } from "./hub.ts";
import { isPattern } from "./pattern.ts";
import { VERSION } from "./version.ts";

/** Options of {@link createStreams}. */
export interface StreamsOptions {
  /** Stream paths, relative to where the app is mounted; plain paths, not patterns such as `rooms/*`. @default {["events"]} */
  paths?: readonly string[];
  /**
   * The `upgradeWebSocket` of the runtime's Hono adapter: from `hono/deno`,
   * from `hono/bun` (then serve with its `websocket` too), or from
   * `@hono/node-server` (then serve with `websocket: { server }`). Without
   * it, WebSocket subscriptions are answered 501 and SSE still works.
   * @default {undefined}
   */
  // deno-lint-ignore no-explicit-any
  upgradeWebSocket?: (...args: any[]) => unknown;
  /** Events kept per path for resume. @default {1000} */
  bufferSize?: number;
  /** Bytes of payload kept per path for resume. @default {1048576} */
  bufferBytes?: number;
  /** Largest published body or incoming frame, in bytes. @default {1048576} */
  maxBodyBytes?: number;
  /** Subscribers on all paths together. @default {10000} */
  maxSubscribers?: number;
  /** Period of WebSocket pings and SSE heartbeat comments. @default {15000} */
  heartbeatMs?: number;
  /** Bearer token required to publish over HTTP (not by {@link Streams.publish}). @default {null} */
  publishToken?: string | null;
  /** Bearer token required to subscribe. @default {null} */
  subscribeToken?: string | null;
  /** Browser origins allowed to subscribe and publish; empty allows every origin. @default {[]} */
  allowOrigins?: readonly string[];
}

/** What {@link Streams.mount} needs of an app: Hono's `route()`. */
export interface MountTarget {
  /**
   * Adds another app's routes under `path`.
   *
   * @param path Where.
   * @param app The app.
   */
  route(path: string, app: never): unknown;
}

/** What {@link createStreams} returns. */
export interface Streams {
  /**
   * Serves the streams under `path` of a Hono app (`app.route()` with the
   * streams' own app); several mounts share the same streams.
   *
   * @param app Your Hono app.
   * @param path Where, such as `/live`: streams at `/live/<path>`.
   * @returns `app`.
   */
  mount<App extends MountTarget>(app: App, path: string): App;
  /**
   * Answers a request as if mounted at `/`: to serve the streams alone
   * (`Deno.serve(streams.fetch)`).
   *
   * @param request The request.
   * @param env The runtime's bindings (Bun's server, Node's request objects).
   * @returns The response.
   */
  fetch(request: Request, env?: unknown): Response | Promise<Response>;
  /** The hub behind the streams (subscriber counts, stats). */
  readonly hub: Hub;
  /**
   * Publishes one event to the subscribers of a path, as a `POST` would.
   *
   * @param path The stream's path, as given in `paths` (a leading `/` is ignored).
   * @param data The payload: text, or bytes sent as a binary frame.
   * @returns The event's id.
   * @throws {RangeError} When no stream is served at `path`.
   * @throws {HubClosedError} After {@link Streams.close}.
   */
  publish(path: string, data: EventData): { id: string };
  /**
   * Closes every subscriber with 1001 (Going Away), waits for them (about a
   * second at most) and stops the heartbeat. Afterwards `publish()` throws
   * and the mounted routes answer 503 (code `closed`).
   */
  close(): Promise<void>;
}

/** What the runtimes' raw sockets offer, as far as used here. */
interface RawSocket {
  readyState: number;
  send(data: string | Uint8Array): unknown;
  close(code?: number, reason?: string): void;
  bufferedAmount?: number;
  /** Bun's ServerWebSocket. */
  getBufferedAmount?(): number;
  ping?(): void;
  terminate?(): void;
  /** The ws package's sockets (Node). */
  on?(event: "pong", listener: () => void): void;
}

const PATH = /^[A-Za-z0-9._~!$&'()*+,;=:@%/-]+$/;

function streamPath(text: string): string {
  const path = text.replace(/^\/+/, "");
  if (!PATH.test(path) || path.endsWith("/")) {
    throw new TypeError(
      `Cannot serve a stream at "${text}": expected a URL path such as "events"`,
    );
  }
  // The CLI's `rooms/*` creates topics on demand; here it would be served
  // as one literal topic named `rooms/*`, which no one means.
  if (isPattern(path)) {
    throw new TypeError(
      `Cannot serve a stream at "${text}": createStreams() serves plain paths, not patterns (topics on demand below a pattern need the server: -serve-path '${path}')`,
    );
  }
  return path;
}

/** Sockets that answered the last ping (or were not pinged yet). */
const answered = new WeakSet<RawSocket>();
function onPong(this: RawSocket): void {
  answered.add(this);
}

/** For sockets whose runtime pings by itself (Deno's idleTimeout, Bun). */
const selfPinging: SocketOps<RawSocket> = {
  text: (socket, text) => void socket.send(text),
  binary: (socket, bytes) => void socket.send(bytes),
  buffered: (socket) =>
    socket.getBufferedAmount?.() ?? socket.bufferedAmount ?? 0,
  close(socket, code, reason) {
    if (socket.readyState <= 1) socket.close(code, reason);
  },
};

/** For the ws package's sockets, which ping nothing by themselves. */
const pingedHere: SocketOps<RawSocket> = {
  ...selfPinging,
  ping(socket) {
    if (!answered.delete(socket)) return false;
    socket.ping?.();
    return true;
  },
  terminate: (socket) => socket.terminate?.(),
};

function websocketSupport(
  upgradeWebSocket: StreamsOptions["upgradeWebSocket"],
  heartbeatMs: number,
): WebSocketSupport {
  const seconds = Math.max(1, Math.ceil(heartbeatMs / 1000));
  return {
    upgradeWebSocket: upgradeWebSocket ?? (() =>
      Response.json({
        error:
          "Cannot subscribe over WebSocket here: createStreams() was given no upgradeWebSocket; use SSE",
        code: "websocket_unavailable",
      }, { status: 501 })),
    // hono/deno hands these to Deno.upgradeWebSocket (Deno then pings);
    // the other upgraders ignore them.
    upgradeOptions: () => ({ idleTimeout: seconds }),
    createSink(raw, format) {
      const socket = raw as RawSocket;
      if (typeof socket.on === "function") {
        answered.add(socket);
        socket.on("pong", onPong);
        return createSocketSink(pingedHere, socket, format);
      }
      return createSocketSink(selfPinging, socket, format);
    },
  };
}

/**
 * Creates event streams to mount in an existing Hono app, on Deno, Bun or
 * Node: subscribe over WebSocket or SSE, publish with `POST` or from server
 * code, resume with `Last-Event-ID`, as a wsevent instance does.
 *
 * @example Mount under /live and publish from a route (Deno)
 * ```ts ignore
 * import { Hono } from "hono";
 * import { upgradeWebSocket } from "hono/deno";
 * import { createStreams } from "wsevent";
 *
 * const streams = createStreams({ paths: ["orders"], upgradeWebSocket });
 * const app = new Hono();
 * streams.mount(app, "/live"); // ws://host/live/orders, SSE, POST
 * app.post("/orders", (c) => c.json(streams.publish("orders", "new order")));
 * Deno.serve(app.fetch);
 * ```
 *
 * @param options Paths, the runtime's WebSocket upgrader, limits, tokens.
 * @returns `mount()`, `publish()` and `close()`.
 * @throws {TypeError} On a path that is not a URL path.
 */
export function createStreams(options: StreamsOptions = {}): Streams {
  const paths = [...new Set((options.paths ?? ["events"]).map(streamPath))];
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const hub = createHub({
    bufferSize: options.bufferSize,
    bufferBytes: options.bufferBytes,
    maxSubscribers: options.maxSubscribers,
  });
  const epoch = createEpoch();
  for (const path of paths) hub.addTopic(path, epoch);
  const websocket = websocketSupport(options.upgradeWebSocket, heartbeatMs);
  // One inner app per place the streams are mounted at (usually one).
  const mounted = new Map<string, WseventApp>();
  const innerAt = (base: string): WseventApp => {
    let inner = mounted.get(base);
    if (inner === undefined) {
      inner = createApp({
        hub,
        websocket,
        basePath: base,
        maxBodyBytes: options.maxBodyBytes,
        publishToken: options.publishToken ?? null,
        subscribeToken: options.subscribeToken ?? null,
        allowOrigins: options.allowOrigins ?? [],
        version: VERSION,
      });
      mounted.set(base, inner);
    }
    return inner;
  };
  // After close(): nothing is accepted that no one could receive.
  let closed = false;
  const app = new Hono();
  app.all("/*", (c) => {
    if (closed) {
      return c.json({
        error: "Cannot serve: the streams are closed",
        code: "closed",
      }, 503);
    }
    const base = basePath(c).replace(/\/+$/, "");
    const request = c.req.raw;
    // Bun closes a connection idle for 10 s, a quiet SSE stream among
    // them: not this request's (our heartbeats find dead peers instead).
    const server = c.env as
      | { timeout?: (request: Request, seconds: number) => void }
      | undefined;
    if (
      typeof server?.timeout === "function" && request.method === "GET" &&
      request.headers.get("upgrade") === null
    ) {
      server.timeout(request, 0);
    }
    return innerAt(base).app.fetch(request, c.env);
  });
  const timer = setInterval(() => {
    for (const inner of mounted.values()) inner.heartbeat();
  }, heartbeatMs);
  // The heartbeat alone keeps no process alive (Node, Bun).
  (timer as { unref?: () => void }).unref?.();
  return {
    hub,
    mount(target, path) {
      (target as unknown as { route(path: string, app: Hono): unknown })
        .route(path, app);
      return target;
    },
    fetch: (request, env) => app.fetch(request, env),
    publish(path, data) {
      if (closed) {
        throw new HubClosedError(
          `Cannot publish to "${path}": the streams are closed`,
        );
      }
      const topic = hub.topic(path.replace(/^\/+/, ""));
      if (topic === undefined) {
        throw new RangeError(
          `Cannot publish to "${path}": no stream there; streams: ${
            paths.join(", ")
          }`,
        );
      }
      return { id: topic.publish(data).id };
    },
    async close() {
      closed = true;
      clearInterval(timer);
      hub.close(1001, "going away");
      const deadline = Date.now() + CLOSE_TIMEOUT_MS;
      const open = () =>
        [...mounted.values()].some((inner) => inner.live.size > 0);
      while (open() && Date.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 20));
      }
    },
  };
}
