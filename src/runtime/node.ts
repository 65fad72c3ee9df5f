/**
 * The Node adapter: @hono/node-server 2 for HTTP, and WebSocket upgrades
 * done here with the `ws` package. Deno runs it too (its node:http and
 * node:net), because there it writes a frame to many sockets faster than
 * `Deno.upgradeWebSocket` can (see deno.ts).
 *
 * @module
 */

import { processParts } from "./_process.ts";
import { checkTlsPair } from "./_tls.ts";
import { serve as serveNode } from "@hono/node-server";
import { Buffer } from "node:buffer";
import {
  type IncomingMessage,
  type ServerResponse,
  STATUS_CODES,
} from "node:http";
import { createSecureServer, type Http2SecureServer } from "node:http2";
import process from "node:process";
import type { Duplex } from "node:stream";
import { WebSocket, WebSocketServer } from "ws";
import {
  CLOSE_TIMEOUT_MS,
  createSocketSink,
  type SocketOps,
} from "../http/socket_sink.ts";
import { BatchedOutput, type SseOutput } from "../http/sse.ts";
import { TurnBatch } from "../http/_turn_batch.ts";
import type { WebSocketSink, WebSocketSupport } from "../http/types.ts";
import {
  listenError,
  type RunningServer,
  type Runtime,
  ServeError,
  type ServeOptions,
  type TlsPair,
} from "./types.ts";

let maxFrameBytes = 1 << 20;

/** How long an idle keep-alive connection is kept: above nginx's 60 s. */
const KEEP_ALIVE_MS = 65_000;

// Taken before serve() lets @hono/node-server replace the global Response.
const PlatformResponse = globalThis.Response;

/** The private parts of a ws socket used to write pre-built frames. */
interface WsInternals {
  _socket?: Duplex | null;
  _sender?: { _deflate?: unknown } | null;
}

const TEXT = { binary: false } as const;
const BINARY = { binary: true } as const;

// Serialize once: each event's frame (header + payload, unmasked as a
// server sends) is built once and the same Buffer written to every socket.
const framesByPayload = new WeakMap<Uint8Array, Buffer>();
let lastText: string | undefined;
let lastTextFrame: Buffer | undefined;

function buildFrame(opcode: 1 | 2, payload: Uint8Array): Buffer {
  const length = payload.byteLength;
  const head = length < 126 ? 2 : length < 65536 ? 4 : 10;
  const frame = Buffer.allocUnsafe(head + length);
  frame[0] = 0x80 | opcode;
  if (length < 126) {
    frame[1] = length;
  } else if (length < 65536) {
    frame[1] = 126;
    frame.writeUInt16BE(length, 2);
  } else {
    frame[1] = 127;
    frame.writeUInt32BE(Math.floor(length / 2 ** 32), 2);
    frame.writeUInt32BE(length >>> 0, 6);
  }
  frame.set(payload, head);
  return frame;
}

function frameOf(opcode: 1 | 2, payload: Uint8Array): Buffer {
  let frame = framesByPayload.get(payload);
  if (frame === undefined) {
    frame = buildFrame(opcode, payload);
    framesByPayload.set(payload, frame);
  }
  return frame;
}

function textFrame(text: string): Buffer {
  if (text !== lastText) {
    lastText = text;
    lastTextFrame = buildFrame(1, Buffer.from(text));
  }
  return lastTextFrame!;
}

/** The TCP stream under a ws socket. */
function streamOf(socket: WebSocket): Duplex | null | undefined {
  return (socket as unknown as WsInternals)._socket;
}

// A socket's frames of one turn leave in one write after it, caught-up
// sockets sharing the joined buffer (see TurnBatch). Under light load that
// is the same single write, a fraction of a ms later.
const frames = new TurnBatch<Duplex>({
  ready: () => true,
  send(stream, chunk) {
    if (!stream.destroyed && !stream.writableEnded) {
      stream.write(bufferOf(chunk));
    }
  },
});

// A channel frame as sent to caught-up sockets (see TurnBatch.joinChannel):
// text (bare or JSON) or a bare binary payload.
const channelFrame = (frame: string | Uint8Array): Buffer =>
  typeof frame === "string" ? textFrame(frame) : frameOf(2, frame);

// Shared by every socket (no closure per connection): a closed socket's
// stream leaves its channel.
function leaveChannel(this: WebSocket): void {
  const stream = streamOf(this);
  if (stream) frames.drop(stream);
}

/**
 * The TCP stream under ws when pre-built frames may be written to it: the
 * socket is open and ws itself writes synchronously (no
 * permessage-deflate). Otherwise undefined, and frames go through ws.
 */
function directStream(socket: WebSocket): Duplex | undefined {
  const stream = streamOf(socket);
  if (
    socket.readyState !== 1 || !stream ||
    (socket as unknown as WsInternals)._sender?._deflate
  ) return undefined;
  return stream;
}

/** Queues a pre-built frame for the stream under ws; false when it must go through ws. */
function writeFrame(socket: WebSocket, frame: Buffer): boolean {
  const stream = directStream(socket);
  if (stream === undefined) return false;
  frames.add(stream, frame);
  return true;
}

/** Sockets that answered the last ping (or have not been pinged yet). */
const answered = new WeakSet<WebSocket>();

function onPong(this: WebSocket): void {
  answered.add(this);
}

/** The sink's operations on a ws socket, shared by every subscriber. */
const nodeOps: SocketOps<WebSocket> = {
  text(socket, text, bytes) {
    const frame = bytes ? frameOf(1, bytes) : textFrame(text);
    if (!writeFrame(socket, frame)) socket.send(bytes ?? text, TEXT);
  },
  binary(socket, bytes) {
    if (!writeFrame(socket, frameOf(2, bytes))) socket.send(bytes, BINARY);
  },
  buffered(socket) {
    const stream = streamOf(socket);
    return socket.bufferedAmount + (stream ? frames.queued(stream) : 0);
  },
  close(socket, code, reason) {
    if (socket.readyState > 1) return;
    // The close frame goes after the frames already sent this turn, and
    // nothing after it: the socket leaves its channel now, not when the
    // peer (which may never read) completes the close.
    const stream = streamOf(socket);
    if (stream) {
      frames.flush(stream);
      frames.drop(stream);
    }
    socket.close(code, reason);
  },
  ping(socket) {
    if (!answered.delete(socket)) return false;
    socket.ping();
    return true;
  },
  // A terminated socket's stream is destroyed at once: the batch writes
  // nothing more to it, and its close event takes it out of its channel.
  terminate(socket) {
    if (socket.readyState !== 3) socket.terminate();
  },
  // Only where frames go straight to the stream (no permessage-deflate).
  join(socket, name) {
    const stream = directStream(socket);
    if (stream === undefined) return undefined;
    socket.on("close", leaveChannel);
    return frames.joinChannel(stream, name, channelFrame);
  },
};

function createNodeSink(raw: unknown, format: "raw" | "json"): WebSocketSink {
  const socket = raw as WebSocket;
  // ws answers pings but never sends them: the heartbeat pings, and a peer
  // that did not pong since the last heartbeat is gone.
  answered.add(socket);
  socket.on("pong", onPong);
  return createSocketSink(nodeOps, socket, format);
}

/** A socket's callbacks, in the shape of Hono's WSEvents. */
interface SocketEvents {
  onOpen(event: undefined, ws: { raw: WebSocket; close(): void }): void;
  /** Set on a publisher: only its messages are read (a subscriber's are ignored). */
  readonly publisher?: true;
  onMessage?(event: { data: string | Uint8Array }): void;
  onClose(): void;
}

const UPGRADING = Symbol("wsevent.upgrading");

/** What the upgrade listener passes the app as `env`. */
interface UpgradeEnv {
  [UPGRADING]: true;
  /** Set by {@link upgradeWebSocket} when the app accepts the upgrade. */
  events?: SocketEvents;
}

/**
 * The upgrader the app calls (instead of @hono/node-server's, which keeps
 * the Hono context, the Request and a URL alive as long as the socket):
 * it only notes the socket's callbacks; the upgrade listener then
 * completes the handshake. What stays per connection is the ws socket and
 * the callbacks.
 */
function upgradeWebSocket(
  c: { env: unknown },
  events: SocketEvents,
): Response {
  const env = c.env as UpgradeEnv | undefined;
  if (env === undefined || !(UPGRADING in env)) {
    return Response.json({
      error: "Cannot upgrade outside the server's upgrade listener",
      code: "internal",
    }, { status: 500 });
  }
  env.events = events;
  return new Response(null);
}

const eventsOf = new WeakMap<WebSocket, SocketEvents>();

function onSocketClose(this: WebSocket): void {
  const events = eventsOf.get(this);
  eventsOf.delete(this);
  events?.onClose();
}

// A text message as a string (ws has checked its UTF-8 and closes a bad
// one with 1007), a binary one as its bytes.
function onSocketMessage(
  this: WebSocket,
  data: Buffer | ArrayBuffer | Buffer[],
  isBinary: boolean,
): void {
  const bytes = Buffer.isBuffer(data)
    ? data
    : Array.isArray(data)
    ? Buffer.concat(data)
    : Buffer.from(data);
  eventsOf.get(this)?.onMessage?.({
    data: isBinary ? bytes : bytes.toString("utf8"),
  });
}

// ws emits "error" (then "close") on a protocol error; without a listener
// the emitter would throw.
function onSocketError(): void {}

function closeSocket(this: { raw: WebSocket }, code?: number, reason?: string) {
  this.raw.close(code, reason);
}

function opened(socket: WebSocket, events: SocketEvents): void {
  eventsOf.set(socket, events);
  socket.on("close", onSocketClose);
  socket.on("error", onSocketError);
  if (events.publisher) {
    // Copies (ws hands a Buffer that may be a view of the whole chunk read
    // from the network, which an event kept for resume would hold on to).
    socket.binaryType = "arraybuffer";
    socket.on("message", onSocketMessage);
  }
  events.onOpen(undefined, { raw: socket, close: closeSocket });
}

/**
 * The upgrade request as a web Request, for the app. Its URL is a fixed
 * base plus the request target, never the Host header (which the app
 * checks): a Host such as `x/events?token=t#` must not choose the route.
 */
function upgradeRequest(request: IncomingMessage): Request {
  const target = request.url ?? "/";
  if (!target.startsWith("/")) throw new TypeError("bad request target");
  const headers = new Headers();
  const raw = request.rawHeaders;
  for (let i = 0; i + 1 < raw.length; i += 2) {
    headers.append(raw[i], raw[i + 1]);
  }
  const scheme = (request.socket as { encrypted?: boolean }).encrypted
    ? "https"
    : "http";
  return new Request(`${scheme}://localhost${target}`, { headers });
}

function ignoreError(): void {}

/** Answers an upgrade request that cannot be served with 400 and a reason. */
function refuseBadUpgrade(socket: Duplex, message: string): Promise<void> {
  return refuseUpgrade(
    socket,
    Response.json({ error: message, code: "bad_request" }, { status: 400 }),
  );
}

/**
 * Answers an HTTP upgrade: refused ones in full (status, headers and JSON
 * body) and accepted WebSocket ones through ws.
 */
async function onUpgrade(
  fetch: (request: Request, env?: unknown) => Response | Promise<Response>,
  wss: WebSocketServer,
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): Promise<void> {
  if (request.headers.upgrade?.toLowerCase() !== "websocket") {
    return refuseBadUpgrade(socket, "Cannot upgrade to anything but websocket");
  }
  // Until ws takes the socket over, its errors (a peer that hangs up
  // while the app decides) are ours to swallow.
  socket.on("error", ignoreError);
  let upgrade: Request;
  try {
    upgrade = upgradeRequest(request);
  } catch {
    return refuseBadUpgrade(
      socket,
      "Cannot read the upgrade request's URL or headers",
    );
  }
  const env: UpgradeEnv = { [UPGRADING]: true };
  let response: Response;
  try {
    response = await fetch(upgrade, env);
  } catch {
    response = Response.json({ error: "Internal error", code: "internal" }, {
      status: 500,
    });
  }
  const events = env.events;
  if (events === undefined) return refuseUpgrade(socket, response);
  if (socket.destroyed) return;
  wss.handleUpgrade(request, socket, head, (ws) => {
    socket.off("error", ignoreError);
    opened(ws, events);
  });
}

/**
 * A relay's socket to its upstream: ws instead of the platform's client,
 * which offers permessage-deflate (a small compressed frame inflates to
 * any size) and reads a frame whole whatever its length. ws here offers no
 * compression and closes with 1009 a frame over the limit as its header
 * arrives. Its event API is the web one the relay uses.
 */
function upstreamSocket(
  url: string,
  maxMessageBytes: number,
): globalThis.WebSocket {
  return new WebSocket(url, {
    perMessageDeflate: false,
    maxPayload: maxMessageBytes,
  }) as unknown as globalThis.WebSocket;
}

function websocketSupport(
  options: { heartbeatMs: number; maxFrameBytes: number },
): WebSocketSupport {
  maxFrameBytes = options.maxFrameBytes;
  return {
    upgradeWebSocket,
    sseOutput: nodeSseOutput,
    createSink: createNodeSink,
    upstreamSocket,
  };
}

// The Buffer over the last joined chunk: consecutive subscribers share it.
let lastChunk: Uint8Array | undefined;
let lastChunkBuffer: Buffer | undefined;
function bufferOf(chunk: Uint8Array): Buffer {
  if (Buffer.isBuffer(chunk)) return chunk;
  if (chunk !== lastChunk) {
    lastChunk = chunk;
    lastChunkBuffer = Buffer.from(
      chunk.buffer,
      chunk.byteOffset,
      chunk.byteLength,
    );
  }
  return lastChunkBuffer!;
}

/**
 * SSE straight onto the TCP socket: status line and headers written once,
 * then what one event-loop turn wrote as one chunk (see BatchedOutput),
 * caught-up subscribers sharing it. No chunked encoding (the response ends
 * with the connection, `Connection: close`), no web stream, no node-server
 * pump.
 */
class NodeSseOutput extends BatchedOutput implements SseOutput {
  #socket: Duplex;

  constructor(socket: Duplex) {
    super();
    this.#socket = socket;
  }

  // Always ready (a chunk for a closed socket is dropped here), so no
  // chunks wait in the shared batch for a socket that is gone.
  override send(chunk: Uint8Array): void {
    const socket = this.#socket;
    if (!socket.writableEnded && !socket.destroyed) {
      socket.write(bufferOf(chunk));
    }
  }

  override sentQueue(): number {
    return this.#socket.writableLength;
  }

  end(): void {
    this.stop(true);
    const socket = this.#socket;
    socket.end();
    // A client that does not read never lets the end flush: drop it.
    setTimeout(() => socket.destroy(), CLOSE_TIMEOUT_MS);
  }

  // Leaving the shared batch too: a client that went away would otherwise
  // stay a member of its path's channel, and with it this output, its
  // socket and their buffers (about 5 KB per SSE connection that left).
  onClose(listener: () => void): void {
    this.#socket.once("close", () => {
      this.stop(false);
      listener();
    });
  }

  // Tells node-server the answer is already on its way. The web platform's
  // Response, not node-server's lightweight one (which it installs as the
  // global Response): node-server honours this header only on the former,
  // and would otherwise write its own status line and an empty chunked
  // body onto the stream.
  response(): Response {
    return new PlatformResponse(null, {
      headers: { "x-hono-already-sent": "1" },
    });
  }
}

function nodeSseOutput(
  env: unknown,
  headers: Readonly<Record<string, string>>,
): SseOutput | undefined {
  const response = (env as { outgoing?: ServerResponse } | undefined)?.outgoing;
  const socket = response?.socket;
  // Over HTTP/2 the socket carries the session's frames, not ours: SSE
  // goes through a web stream there.
  if (
    response === undefined || !socket || response.headersSent ||
    socket.destroyed || "stream" in response
  ) return undefined;
  const lines = ["HTTP/1.1 200 OK"];
  for (const [name, value] of Object.entries(headers)) {
    lines.push(`${name}: ${value}`);
  }
  lines.push("Connection: close", "", "");
  socket.write(lines.join("\r\n"));
  return new NodeSseOutput(socket);
}

/**
 * Writes a whole HTTP answer on a raw socket: @hono/node-server refuses an
 * upgrade with the status and headers only, dropping our JSON body.
 */
async function refuseUpgrade(
  socket: Duplex,
  response: Response,
): Promise<void> {
  const body = Buffer.from(await response.arrayBuffer());
  const lines = [
    `HTTP/1.1 ${response.status} ${STATUS_CODES[response.status] ?? ""}`,
  ];
  response.headers.forEach((value, name) => {
    if (name !== "content-length" && name !== "connection") {
      lines.push(`${name}: ${value}`);
    }
  });
  lines.push(`Content-Length: ${body.byteLength}`, "Connection: close", "", "");
  if (!socket.destroyed) {
    socket.end(Buffer.concat([Buffer.from(lines.join("\r\n")), body]));
  }
}

function serve(
  fetch: (request: Request, env?: unknown) => Response | Promise<Response>,
  options: ServeOptions,
): Promise<RunningServer> {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: maxFrameBytes,
  });
  return new Promise((resolve, reject) => {
    const tls = options.tls;
    let server: ReturnType<typeof serveNode>;
    try {
      if (tls !== undefined) checkTlsPair(tls);
      server = serveNode({
        fetch,
        hostname: options.hostname,
        port: options.port,
        // HTTP/2 for browsers (no limit of six SSE streams per origin),
        // HTTP/1.1 on the same port for WebSocket upgrades and old clients.
        ...(tls === undefined ? {} : {
          createServer: createSecureServer,
          serverOptions: { cert: tls.cert, key: tls.key, allowHTTP1: true },
        }),
      }, (info) => {
        resolve({
          hostname: info.address,
          port: info.port,
          protocols: tls === undefined ? "http/1.1" : "h2, http/1.1",
          setTls: tls === undefined ? undefined : (pair: TlsPair) => {
            // New connections get the new pair; open ones keep theirs.
            checkTlsPair(pair);
            (server as Http2SecureServer).setSecureContext(pair);
            return Promise.resolve();
          },
          shutdown: () =>
            new Promise<void>((done) => {
              for (const client of wss.clients) client.terminate();
              server.close(() => done());
              (server as { closeAllConnections?: () => void })
                .closeAllConnections?.();
            }),
        });
      });
    } catch (error) {
      return reject(
        new ServeError(
          `Cannot serve TLS: ${
            error instanceof Error ? error.message : String(error)
          }`,
          { cause: error },
        ),
      );
    }
    server.on(
      "upgrade",
      (request: IncomingMessage, socket: Duplex, head: Buffer) =>
        void onUpgrade(fetch, wss, request, socket, head),
    );
    // Idle keep-alive connections stay open longer than a proxy keeps its
    // pooled ones (nginx: 60 s): with Node's 5 s, a proxy could send a POST
    // on a connection we are closing, and nginx does not retry a POST (502).
    const http = server as {
      keepAliveTimeout?: number;
      headersTimeout?: number;
    };
    http.keepAliveTimeout = KEEP_ALIVE_MS;
    http.headersTimeout = KEEP_ALIVE_MS + 1000;
    server.once(
      "error",
      (error) =>
        reject(listenError(error, `${options.hostname}:${options.port}`)),
    );
  });
}

/** The Node runtime adapter. */
export const runtime: Runtime = {
  ...processParts,
  name: "node",
  websocketSupport,
  serve,
  env: () => process.env,
};
