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
  let closed = false;
  const close = (code: number, reason: string): void => {
    if (closed) return;
    closed = true;
    ops.close(code, reason);
    // A peer that never reads never completes the close handshake: drop
    // the connection (and its queue) after a bounded wait.
    const terminate = ops.terminate;
    if (terminate !== undefined) setTimeout(terminate, CLOSE_TIMEOUT_MS);
  };
  return {
    format,
    transport: "websocket",
    send: format === "raw"
      ? (event: StreamEvent): number => {
        if (event.binary) ops.binary(event.bytes);
        else ops.text(event.data as string, event.bytes);
        return ops.buffered();
      }
      : (event: StreamEvent): number => {
        ops.text(event.json, undefined);
        return ops.buffered();
      },
    queued: () => ops.buffered(),
    join: ops.join && ((channel: string) => !closed && ops.join!(channel)),
    notify(notice: GapNotice) {
      // Bare frames carry only payloads: a notice would look like an event.
      if (format === "json" && !closed) {
        ops.text(formatJsonGap(notice), undefined);
      }
    },
    heartbeat() {
      if (closed) return;
      if (ops.ping !== undefined && !ops.ping()) {
        closed = true;
        (ops.terminate ?? (() => ops.close(1001, "heartbeat timeout")))();
        return;
      }
      if (format === "json") ops.text(HEARTBEAT_JSON, undefined);
    },
    close,
  };
}
