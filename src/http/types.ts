/**
 * What the HTTP layer needs from a runtime, and what it exposes to one.
 *
 * @module
 */

import type { UpgradeWebSocket } from "hono/ws";
import type { Sink } from "../hub.ts";

/** A WebSocket subscriber's sink, made by the runtime from its raw socket. */
export interface WebSocketSink extends Sink {
  /** Called every heartbeat period: ping, and close a peer that did not answer the last one. */
  heartbeat(): void;
}

/** The runtime's WebSocket support, given to {@link createApp}. */
export interface WebSocketSupport {
  /** Hono's upgrader for this runtime. */
  // deno-lint-ignore no-explicit-any -- Hono types each runtime's raw socket differently
  upgradeWebSocket: UpgradeWebSocket<any, any>;
  /** Options for the upgrader (Deno's idleTimeout, for instance). */
  upgradeOptions?: unknown;
  /**
   * Wraps the runtime's raw socket (`WSContext.raw`) as a hub sink.
   *
   * @param raw The runtime socket.
   * @param format Bare payloads or JSON envelopes.
   */
  createSink(raw: unknown, format: "raw" | "json"): WebSocketSink;
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
