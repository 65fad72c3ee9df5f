/**
 * The Bun adapter: Bun.serve and hono/bun's WebSocket upgrade.
 *
 * @module
 */

import { processParts } from "./_process.ts";
import { upgradeWebSocket, websocket } from "hono/bun";
import { createSocketSink, type SocketOps } from "../http/socket_sink.ts";
import type { WebSocketSupport } from "../http/types.ts";
import {
  listenError,
  type RunningServer,
  type Runtime,
  type ServeOptions,
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
  close(code?: number, reason?: string): void;
  readyState: number;
}

/** The part of Bun's Server this adapter uses. */
interface BunServer {
  hostname: string;
  port: number;
  stop(closeActive?: boolean): Promise<void>;
  publish(channel: string, data: string | Uint8Array): number;
}

/** The part of the Bun global this adapter uses. */
interface BunGlobal {
  serve(options: Record<string, unknown>): BunServer;
  env: Record<string, string | undefined>;
}

const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;

let heartbeatSeconds = 15;
/** Sockets that answered the last ping (or have not been pinged yet). */
const answered = new WeakSet<object>();
let maxFrameBytes = 1 << 20;
let maxQueueBytes = 4 << 20;
let server: BunServer | undefined;

// A class, not closures: an idle subscriber costs one small object. Keyed
// by the raw socket: Bun's Hono adapter makes a new WSContext per callback.
class BunSocketOps implements SocketOps {
  #socket: BunSocket;

  constructor(socket: BunSocket) {
    this.#socket = socket;
    answered.add(socket);
  }

  text(text: string): void {
    this.#socket.sendText(text);
  }

  binary(bytes: Uint8Array): void {
    this.#socket.sendBinary(bytes);
  }

  buffered(): number {
    return this.#socket.getBufferedAmount();
  }

  close(code: number, reason: string): void {
    const socket = this.#socket;
    if (socket.readyState > 1) return;
    // A close frame queued behind more than the slow bound would keep the
    // connection until a peer that does not read reads, and Bun cannot drop
    // a socket once it is closing: drop it now instead.
    if (socket.getBufferedAmount() > maxQueueBytes) socket.terminate();
    else socket.close(code, reason);
  }

  // Our own pings, at our period: Bun's idle timer has a coarse granularity
  // of several seconds.
  ping(): boolean {
    if (!answered.delete(this.#socket)) return false;
    this.#socket.ping();
    return true;
  }

  terminate(): void {
    this.#socket.terminate();
  }

  join(channel: string): boolean {
    this.#socket.subscribe(channel);
    return true;
  }
}

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
    // One native publish per channel instead of one send per socket: Bun
    // writes the frame to every subscribed socket in native code.
    broadcast: (channel, frame) => void server?.publish(channel, frame),
    createSink: (raw, format) =>
      createSocketSink(new BunSocketOps(raw as BunSocket), format),
  };
}

function serve(
  fetch: (request: Request, env?: unknown) => Response | Promise<Response>,
  options: ServeOptions,
): Promise<RunningServer> {
  try {
    const started = bun.serve({
      hostname: options.hostname,
      port: options.port,
      fetch: (request: Request, server: unknown) => fetch(request, server),
      // Bun closes HTTP connections idle for 10 s by default, which would
      // cut quiet SSE streams; our SSE heartbeats find dead peers instead.
      idleTimeout: 0,
      websocket: {
        ...websocket,
        pong: (ws: object) => void answered.add(ws),
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
    server = started;
    return Promise.resolve({
      hostname: started.hostname,
      port: started.port,
      shutdown: () => started.stop(true),
    });
  } catch (error) {
    return Promise.reject(
      listenError(error, `${options.hostname}:${options.port}`),
    );
  }
}

/** The Bun runtime adapter. */
export const runtime: Runtime = {
  ...processParts,
  name: "bun",
  websocketSupport,
  serve,
  env: () => bun.env,
};
