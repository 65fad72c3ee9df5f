/**
 * The hub sink of a WebSocket subscriber, over the few operations every
 * runtime's raw socket offers. Runtime adapters supply the operations.
 *
 * @module
 */

import { formatJsonGap, type GapNotice, type StreamEvent } from "../event.ts";
import type { WebSocketSink } from "./types.ts";

/** What a runtime's raw WebSocket can do, as used by the sink. */
export interface SocketOps {
  /** Sends a text frame; `bytes` is the same text as UTF-8 when already encoded. */
  text(text: string, bytes: Uint8Array | undefined): void;
  /** Sends a binary frame. */
  binary(bytes: Uint8Array): void;
  /** Bytes queued and not yet written to the network. */
  buffered(): number;
  /** Starts a close handshake. */
  close(code: number, reason: string): void;
  /**
   * Sends a ping where the runtime leaves pings to us. Returns false when
   * the previous ping was never answered: the peer is gone.
   */
  ping?(): boolean;
  /** Drops the connection without a handshake. */
  terminate?(): void;
  /** Joins a native broadcast channel (Bun); see `Sink.join`. */
  join?(channel: string): boolean;
}

const HEARTBEAT_JSON = '{"type":"heartbeat"}';

/** How long a closed subscriber has to finish the close handshake. */
export const CLOSE_TIMEOUT_MS = 1000;

/**
 * Makes a sink that writes bare payloads (`raw`) or JSON envelopes.
 *
 * @param ops The runtime socket's operations.
 * @param format The wire format.
 * @returns The sink.
 */
export function createSocketSink(
  ops: SocketOps,
  format: "raw" | "json",
): WebSocketSink {
  return new SocketSink(ops, format);
}

// A class, not closures: one small object per subscriber with its methods on
// the prototype, since idle connections are what an instance holds most of.
class SocketSink implements WebSocketSink {
  readonly format: "raw" | "json";
  readonly transport = "websocket" as const;
  #ops: SocketOps;
  #closed = false;

  constructor(ops: SocketOps, format: "raw" | "json") {
    this.#ops = ops;
    this.format = format;
  }

  send(event: StreamEvent): number {
    const ops = this.#ops;
    if (this.format === "json") ops.text(event.json, undefined);
    else if (event.binary) ops.binary(event.bytes);
    else ops.text(event.data as string, event.bytes);
    return ops.buffered();
  }

  queued(): number {
    return this.#ops.buffered();
  }

  join(channel: string): boolean {
    return !this.#closed && this.#ops.join !== undefined &&
      this.#ops.join(channel);
  }

  notify(notice: GapNotice): void {
    // Bare frames carry only payloads: a notice would look like an event.
    if (this.format === "json" && !this.#closed) {
      this.#ops.text(formatJsonGap(notice), undefined);
    }
  }

  heartbeat(): void {
    if (this.#closed) return;
    const ops = this.#ops;
    if (ops.ping !== undefined && !ops.ping()) {
      this.#closed = true;
      if (ops.terminate !== undefined) ops.terminate();
      else ops.close(1001, "heartbeat timeout");
      return;
    }
    if (this.format === "json") ops.text(HEARTBEAT_JSON, undefined);
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    const ops = this.#ops;
    ops.close(code, reason);
    // A peer that never reads never completes the close handshake: drop
    // the connection (and its queue) after a bounded wait.
    if (ops.terminate !== undefined) {
      setTimeout(() => ops.terminate?.(), CLOSE_TIMEOUT_MS);
    }
  }
}
