/**
 * The Bun adapter: Bun.serve, with WebSocket upgrades done here (`data` is
 * the subscriber's callbacks and nothing else) and Bun's native publish.
 *
 * @module
 */

import { readFile } from "node:fs/promises";
import { createServer as createNetServer } from "node:net";
import { processParts } from "./_process.ts";
import { checkTlsPair } from "./_tls.ts";
import type { ChannelSend } from "../hub.ts";
import { createSocketSink, type SocketOps } from "../http/socket_sink.ts";
import { BatchedOutput, type SseOutput } from "../http/sse.ts";
import type { WebSocketSupport } from "../http/types.ts";
import {
  listenError,
  type RunningServer,
  type Runtime,
  ServeError,
  type ServeOptions,
  type TlsPair,
} from "./types.ts";

/** The part of Bun's ServerWebSocket this adapter uses. */
interface BunSocket {
  send(data: string | Uint8Array): number;
  sendText(data: string): number;
  sendBinary(data: Uint8Array): number;
  getBufferedAmount(): number;
  ping(): number;
  terminate(): void;
  subscribe(channel: string): void;
  cork(callback: () => void): unknown;
  close(code?: number, reason?: string): void;
  readyState: number;
}

/** The part of Bun's Server this adapter uses. */
interface BunServer {
  hostname: string;
  port: number;
  stop(closeActive?: boolean): Promise<void>;
  pendingRequests: number;
  pendingWebSockets: number;
  publish(channel: string, data: string | Uint8Array): number;
  upgrade(request: Request, options: { data: SocketEvents }): boolean;
}

/** The part of the Bun global this adapter uses. */
interface BunGlobal {
  serve(options: Record<string, unknown>): BunServer;
  env: Record<string, string | undefined>;
  /** Gives the engine's free memory back to the system. */
  shrink?(): void;
}

const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;

let heartbeatSeconds = 15;
/** Sockets that answered the last ping (or have not been pinged yet). */
const answered = new WeakSet<object>();
let maxFrameBytes = 1 << 20;
let maxQueueBytes = 4 << 20;
let server: BunServer | undefined;
/**
 * Every server whose sockets may still be open: after a certificate reload
 * the old server stops listening but keeps its connections, and a native
 * publish reaches only the sockets of the server it is called on.
 */
const servers = new Set<BunServer>();

/**
 * One native publish per channel instead of one send per socket (Bun
 * writes the frame to every subscribed socket in native code), made once
 * per channel.
 */
const senders = new Map<string, ChannelSend>();

function senderOf(channel: string): ChannelSend {
  let send = senders.get(channel);
  if (send === undefined) {
    send = (frame) => {
      for (const each of servers) each.publish(channel, frame);
    };
    senders.set(channel, send);
  }
  return send;
}

/** The sink's operations on a Bun socket, shared by every subscriber. */
const bunOps: SocketOps<BunSocket> = {
  text: (socket, text) => void socket.sendText(text),
  binary: (socket, bytes) => void socket.sendBinary(bytes),
  buffered: (socket) => socket.getBufferedAmount(),
  close(socket, code, reason) {
    if (socket.readyState > 1) return;
    // A close frame queued behind more than the slow bound would keep the
    // connection until a peer that does not read reads, and Bun cannot drop
    // a socket once it is closing: drop it now instead.
    if (socket.getBufferedAmount() > maxQueueBytes) socket.terminate();
    else socket.close(code, reason);
  },
  // Our own pings, at our period: Bun's idle timer has a coarse granularity
  // of several seconds.
  ping(socket) {
    if (!answered.delete(socket)) return false;
    socket.ping();
    return true;
  },
  terminate: (socket) => socket.terminate(),
  // A publisher's answers of one flush in one write.
  cork: (socket, send) => void socket.cork(send),
  join(socket, channel) {
    if (server === undefined) return undefined;
    socket.subscribe(channel);
    return senderOf(channel);
  },
};

/** A socket's callbacks, in the shape of Hono's WSEvents. */
interface SocketEvents {
  onOpen(event: undefined, ws: { raw: BunSocket; close(): void }): void;
  /** Set on a publisher: only its messages are read (a subscriber's are ignored). */
  readonly publisher?: true;
  onMessage?(event: { data: string | Uint8Array }): void;
  onClose(): void;
}

/**
 * What the app answers an upgraded request with; serve() hands Bun
 * `undefined` instead, as Bun expects: a Response there costs about 370
 * bytes more per connection for as long as the socket lives.
 */
const UPGRADED = new Response(null);

/**
 * The upgrader the app calls. hono/bun's keeps a URL and its own context
 * objects per socket; this one gives Bun the callbacks as the socket's
 * `data` and nothing else.
 */
function upgradeWebSocket(
  c: { env: unknown; req: { raw: Request } },
  events: SocketEvents,
): Response {
  const target = c.env as Partial<BunServer> | undefined;
  if (typeof target?.upgrade !== "function") {
    return Response.json({
      error: "Cannot upgrade: the app is not served by Bun.serve",
      code: "internal",
    }, { status: 500 });
  }
  if (target.upgrade(c.req.raw, { data: events })) return UPGRADED;
  return Response.json({
    error: "Cannot upgrade: Bun refused the handshake",
    code: "bad_request",
  }, { status: 400 });
}

function closeSocket(
  this: { raw: BunSocket },
  code?: number,
  reason?: string,
): void {
  this.raw.close(code, reason);
}

/** Bun's WebSocket handlers, shared by every socket. */
const handlers = {
  open(ws: BunSocket & { data: SocketEvents }): void {
    ws.data.onOpen(undefined, { raw: ws, close: closeSocket });
  },
  // Frames from subscribers are not events (only a publisher's are);
  // maxPayloadLength closes an oversized one with 1009.
  message(
    ws: BunSocket & { data: SocketEvents },
    message: string | Uint8Array,
  ): void {
    if (ws.data.publisher) ws.data.onMessage?.({ data: message });
  },
  close(ws: BunSocket & { data: SocketEvents }): void {
    ws.data.onClose();
  },
  pong: (ws: object) => void answered.add(ws),
};

function websocketSupport(
  options: {
    heartbeatMs: number;
    maxFrameBytes: number;
    maxQueueBytes?: number;
  },
): WebSocketSupport {
  heartbeatSeconds = Math.max(1, Math.ceil(options.heartbeatMs / 1000));
  maxFrameBytes = options.maxFrameBytes;
  maxQueueBytes = options.maxQueueBytes ?? maxQueueBytes;
  return {
    upgradeWebSocket,
    sseOutput: (_env, headers) => new BunSseOutput(headers),
    upstreamSocket,
    createSink(raw, format) {
      answered.add(raw as BunSocket);
      return createSocketSink(bunOps, raw as BunSocket, format);
    },
  };
}

/**
 * A relay's socket to its upstream: Bun's client offers permessage-deflate
 * unless told not to, and a small compressed frame inflates to any size.
 */
function upstreamSocket(url: string): WebSocket {
  // Bun's WebSocket takes an options object in place of the protocols.
  const options = { perMessageDeflate: false } as unknown as string[];
  return new WebSocket(url, options);
}

/** The part of Bun's direct stream controller used here. */
interface DirectController {
  write(chunk: Uint8Array): number | Promise<number>;
  close(): void;
}

/**
 * SSE over a Bun "direct" stream: what one turn wrote goes out as one chunk
 * after the turn (see BatchedOutput), caught-up subscribers sharing it,
 * written straight to the response without a web stream's queue and pump
 * (which took most of the time in profiles). Bun's write() returns a
 * pending promise while the client does not keep up; the bytes written
 * from then until it resolves are this subscriber's queue.
 */
class BunSseOutput extends BatchedOutput implements SseOutput {
  #headers: Readonly<Record<string, string>>;
  #controller: DirectController | undefined;
  #blockedBytes = 0;
  #blocked = false;
  #closed = false;
  #onClose: () => void = () => {};
  #finish: () => void = () => {};
  #abort: () => void = () => {};

  constructor(headers: Readonly<Record<string, string>>) {
    super();
    this.#headers = headers;
  }

  // Bytes wait until Bun pulls the body and hands over its controller.
  override canSend(): boolean {
    return this.#controller !== undefined && !this.#closed;
  }

  override send(chunk: Uint8Array): void {
    let written: number | Promise<number>;
    try {
      written = this.#controller!.write(chunk);
    } catch {
      return this.#gone();
    }
    if (typeof written === "number") return;
    this.#blockedBytes += chunk.byteLength;
    if (this.#blocked) return;
    this.#blocked = true;
    written.then(() => {
      this.#blocked = false;
      this.#blockedBytes = 0;
    }, () => this.#gone());
  }

  override sentQueue(): number {
    return this.#blockedBytes;
  }

  end(): void {
    if (this.stopped) return;
    const blocked = this.#blocked;
    this.stop(true);
    if (blocked) {
      // A client that does not read would hold the connection, and the
      // bytes Bun holds for it, for ever (idleTimeout is 0): abort the
      // response instead of waiting to flush it.
      this.#abort();
      return;
    }
    try {
      this.#controller?.close();
    } catch {
      // Already gone.
    }
    this.#finish();
  }

  onClose(listener: () => void): void {
    this.#onClose = listener;
  }

  #gone(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.stop(false);
    this.#onClose();
  }

  response(): Response {
    const body = new ReadableStream({
      type: "direct",
      pull: (controller: DirectController) => {
        this.#controller = controller;
        this.flush();
        // Open until end() or the client goes (cancel).
        return new Promise<void>((resolve, reject) => {
          this.#finish = resolve;
          this.#abort = () => reject(new Error("slow subscriber dropped"));
        });
      },
      cancel: () => this.#gone(),
    } as unknown as UnderlyingDefaultSource<Uint8Array>);
    return new Response(body, { status: 200, headers: this.#headers });
  }
}

/**
 * Linux resets the connections waiting in a closed SO_REUSEPORT listener's
 * accept queue unless `net.ipv4.tcp_migrate_req` is 1 (Linux 5.14+), which
 * hands them to the new listener. Measured: 20 reloads under about 500 new
 * TLS connections/s reset 145 of 2635 connections with it at 0, none at 1.
 */
async function reuseportWarning(): Promise<string | undefined> {
  let value: string;
  try {
    value = await readFile("/proc/sys/net/ipv4/tcp_migrate_req", "utf8");
  } catch {
    return undefined; // Not Linux, or a kernel without it.
  }
  return value.trim() === "0"
    ? "connections arriving during the reload may have been reset: on Linux set sysctl net.ipv4.tcp_migrate_req=1 so the old listener hands its queued connections to the new one"
    : undefined;
}

/** What Bun answers when the app throws: no detail for the client. */
function serverError(): Response {
  return Response.json({ error: "Internal error", code: "internal" }, {
    status: 500,
  });
}

/**
 * Closes the connection after an answer given without reading the request's
 * body (a 404, a refused publish): Bun would otherwise keep waiting for
 * that body, with no idle timeout, so a client sending it a byte now and
 * then (or never) held the connection for ever.
 */
function closeIfBodyLeft(request: Request, response: Response): Response {
  if (
    request.method === "GET" || request.bodyUsed || request.body === null
  ) return response;
  try {
    response.headers.set("connection", "close");
  } catch {
    // Immutable headers: nothing this answer can say.
  }
  return response;
}

function serve(
  fetch: (request: Request, env?: unknown) => Response | Promise<Response>,
  options: ServeOptions,
): Promise<RunningServer> {
  const start = (port: number, tls: TlsPair | undefined): BunServer =>
    bun.serve({
      hostname: options.hostname,
      port,
      // A certificate reload starts a second server on the same port (see
      // setTls), which needs SO_REUSEPORT on both.
      ...(tls === undefined ? {} : { tls, reusePort: true }),
      // The app upgrades synchronously (its fast path), so an upgraded
      // request's answer is never a promise: no extra promise per request.
      fetch: (request: Request, server: unknown) => {
        const response = fetch(request, server);
        if (response instanceof Promise) {
          // An upgrade that waited for a JWT check, or a publish.
          return response.then((r) =>
            r === UPGRADED ? undefined : closeIfBodyLeft(request, r)
          );
        }
        return response === UPGRADED
          ? undefined
          : closeIfBodyLeft(request, response);
      },
      // Never Bun's development error page (working directory, paths, stack
      // and source lines), whatever NODE_ENV says: a plain 500 instead.
      development: false,
      error: serverError,
      // Bun closes HTTP connections idle for 10 s by default, which would
      // cut quiet SSE streams; our SSE heartbeats find dead peers instead.
      idleTimeout: 0,
      websocket: {
        ...handlers,
        // Our heartbeat pings; Bun's idle timeout stays as a backstop.
        idleTimeout: Math.min(960, 4 * heartbeatSeconds),
        sendPings: false,
        maxPayloadLength: maxFrameBytes,
        // The hub checks native-channel subscribers' queues in sweeps and
        // closes slow ones with 1008; Bun's own limit, above, is a backstop.
        backpressureLimit: 2 * maxQueueBytes,
        closeOnBackpressureLimit: true,
      },
    });
  // With TLS, Bun.serve binds with SO_REUSEPORT (for reloads), and would
  // share the port silently with another server bound so (a second
  // instance, splitting subscribers and publishes): a probe without it
  // finds the port taken first.
  const address = `${options.hostname}:${options.port}`;
  const listen = (): Promise<RunningServer> => {
    let started: BunServer;
    try {
      if (options.tls !== undefined) checkTlsPair(options.tls);
      started = start(options.port, options.tls);
    } catch (error) {
      return Promise.reject(
        options.tls !== undefined && !/in use|EADDRINUSE/i.test(String(error))
          ? new ServeError(
            `Cannot serve TLS: ${
              error instanceof Error ? error.message : String(error)
            }`,
            { cause: error },
          )
          : listenError(error, `${options.hostname}:${options.port}`),
      );
    }
    server = started;
    servers.add(started);
    return Promise.resolve({
      hostname: started.hostname,
      port: started.port,
      protocols: "http/1.1",
      // Bun.serve cannot change its certificate (reload() keeps the old
      // one): a new server takes the port over with the new pair and the
      // old one stops listening but keeps its connections.
      setTls: options.tls === undefined ? undefined : (pair: TlsPair) => {
        checkTlsPair(pair);
        const next = start(started.port, pair);
        const previous = server;
        server = next;
        servers.add(next);
        void previous?.stop(false);
        for (const old of servers) {
          if (
            old !== next && old.pendingRequests === 0 &&
            old.pendingWebSockets === 0
          ) servers.delete(old);
        }
        return reuseportWarning();
      },
      shutdown: () =>
        Promise.all([...servers].map((each) => each.stop(true))).then(() => {}),
    });
  };
  if (options.tls === undefined || options.port === 0) return listen();
  return portFree(options.hostname, options.port).then(
    listen,
    (error) => Promise.reject(listenError(error, address)),
  );
}

/**
 * Resolves when nothing listens on the address: binds it without
 * SO_REUSEPORT and closes again.
 */
function portFree(hostname: string, port: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const probe = createNetServer();
    probe.once("error", reject);
    probe.listen(
      { host: hostname, port, exclusive: true },
      () => probe.close(() => resolve()),
    );
  });
}

/** The Bun runtime adapter. */
export const runtime: Runtime = {
  ...processParts,
  name: "bun",
  websocketSupport,
  serve,
  env: () => bun.env,
  // After the collection, Bun.shrink() returns the freed memory: without
  // it the resident memory after churn stays at its high-water mark.
  collectOnSignal: (collected) =>
    processParts.collectOnSignal!(() => {
      bun.shrink?.();
      collected();
    }),
};
