/**
 * What the HTTP layer needs from a runtime, and what it exposes to one.
 *
 * @module
 */

import type { Sink } from "../hub.ts";
import type { SseOutput } from "./sse.ts";

/** A WebSocket subscriber's sink, made by the runtime from its raw socket. */
export interface WebSocketSink extends Sink {
  /** Called every heartbeat period: ping, and close a peer that did not answer the last one. */
  heartbeat(): void;
  /**
   * Ends the subscription because its token expired, the transport's way
   * (SSE: `event: expired`, then the end); absent where a close with 1008
   * says it (WebSocket).
   */
  expire?(reason: string): void;
  /**
   * Sends a text frame of our own (a publisher's answer), after what was
   * sent before it.
   *
   * @returns The bytes queued for the peer.
   */
  reply?(text: string): number;
  /**
   * Runs `send`, whose frames leave together where the runtime can gather
   * them (Bun's cork); else just runs it.
   */
  batch?(send: () => void): void;
}

/** The runtime's WebSocket support, given to {@link createApp}. */
export interface WebSocketSupport {
  /**
   * Hono's upgrader for this runtime (`hono/deno`, `hono/bun`,
   * `@hono/node-server`). Typed loosely so that each runtime's raw socket
   * type fits; the app calls it in its `(c, events, options)` form.
   */
  upgradeWebSocket: (c: never, events: never, options?: never) => unknown;
  /** Options for each upgrade (Deno's idleTimeout, for instance). */
  upgradeOptions?: () => unknown;
  /**
   * Wraps the runtime's raw socket (`WSContext.raw`) as a hub sink.
   *
   * @param raw The runtime socket.
   * @param format Bare payloads or JSON envelopes.
   */
  createSink(raw: unknown, format: "raw" | "json"): WebSocketSink;
  /**
   * A direct output for an SSE response where the runtime has one faster
   * than a web stream (Node: the response object itself).
   *
   * @param env What the runtime passed the app as `env` for this request.
   * @param headers The response headers.
   * @returns The output, or undefined to use a web stream.
   */
  sseOutput?(
    env: unknown,
    headers: Readonly<Record<string, string>>,
  ): SseOutput | undefined;
  /**
   * Opens a relay's WebSocket to its upstream where the runtime has a
   * client that offers no permessage-deflate (a compressed frame could
   * inflate far past any limit) or bounds a frame while reading it.
   *
   * @param url The upstream URL.
   * @param maxMessageBytes The largest frame accepted.
   * @returns The socket, with the web WebSocket's events.
   */
  upstreamSocket?(url: string, maxMessageBytes: number): WebSocket;
}

/** The state of a relay's upstream, for /readyz, /metrics and the index page. */
export interface UpstreamStatus {
  /** The upstream URL (token redacted). */
  url: string;
  /** The path it feeds. */
  path: string;
  /** True while connected. */
  connected: boolean;
  /** Connections lost so far. */
  reconnects: number;
}

/** Anything that answers HTTP requests the web way (a Hono app, for one). */
export interface HttpApp {
  /**
   * Answers one request.
   *
   * @param request The request.
   * @param env Runtime bindings (Bun passes its server here).
   */
  fetch(request: Request, env?: unknown): Response | Promise<Response>;
}
