/**
 * The hub sink of a WebSocket subscriber, over the few operations every
 * runtime's raw socket offers. Runtime adapters supply the operations.
 *
 * @module
 */

import { formatJsonGap, type GapNotice, type StreamEvent } from "../event.ts";
import type { ChannelSend } from "../hub.ts";
import type { WebSocketSink } from "./types.ts";

/**
 * What a runtime's raw WebSocket can do, as used by the sink: one shared
 * object per runtime, each operation given the socket, so a subscriber
 * costs no object of its own for them.
 */
export interface SocketOps<S> {
  /** Sends a text frame; `bytes` is the same text as UTF-8 when already encoded. */
  text(socket: S, text: string, bytes: Uint8Array | undefined): void;
  /** Sends a binary frame. */
  binary(socket: S, bytes: Uint8Array): void;
  /** Bytes queued and not yet written to the network. */
  buffered(socket: S): number;
  /** Starts a close handshake. */
  close(socket: S, code: number, reason: string): void;
  /**
   * Sends a ping where the runtime leaves pings to us. Returns false when
   * the previous ping was never answered: the peer is gone.
   */
  ping?(socket: S): boolean;
  /** Drops the connection without a handshake. */
  terminate?(socket: S): void;
  /** Runs `send` with the socket's writes gathered into one (Bun's cork). */
  cork?(socket: S, send: () => void): void;
  /** Joins a native broadcast channel (Bun); see `Sink.join`. */
  join?(socket: S, channel: string): ChannelSend | undefined;
}

const HEARTBEAT_JSON = '{"type":"heartbeat"}';

/** How long a closed subscriber has to finish the close handshake. */
export const CLOSE_TIMEOUT_MS = 1000;

/**
 * Makes a sink that writes bare payloads (`raw`) or JSON envelopes.
 *
 * @param ops The runtime's socket operations.
 * @param socket The runtime's socket.
 * @param format The wire format.
 * @returns The sink.
 */
export function createSocketSink<S>(
  ops: SocketOps<S>,
  socket: S,
  format: "raw" | "json",
): WebSocketSink {
  return new SocketSink(ops as SocketOps<unknown>, socket, format);
}

// A class, not closures: one small object per subscriber with its methods on
// the prototype, since idle connections are what an instance holds most of.
class SocketSink implements WebSocketSink {
  readonly format: "raw" | "json";
  #ops: SocketOps<unknown>;
  #socket: unknown;
  #closed = false;

  constructor(
    ops: SocketOps<unknown>,
    socket: unknown,
    format: "raw" | "json",
  ) {
    this.#ops = ops;
    this.#socket = socket;
    this.format = format;
  }

  // On the prototype: no slot per subscriber.
  get transport(): "websocket" {
    return "websocket";
  }

  send(event: StreamEvent): number {
    const ops = this.#ops;
    const socket = this.#socket;
    if (this.format === "json") ops.text(socket, event.json, undefined);
    else if (event.binary) ops.binary(socket, event.bytes);
    else ops.text(socket, event.data as string, event.bytes);
    return ops.buffered(socket);
  }

  queued(): number {
    return this.#ops.buffered(this.#socket);
  }

  join(channel: string): ChannelSend | undefined {
    return this.#closed ? undefined : this.#ops.join?.(this.#socket, channel);
  }

  notify(notice: GapNotice): void {
    // Bare frames carry only payloads: a notice would look like an event.
    if (this.format === "json" && !this.#closed) {
      this.#ops.text(this.#socket, formatJsonGap(notice), undefined);
    }
  }

  batch(send: () => void): void {
    const cork = this.#ops.cork;
    if (cork === undefined) send();
    else cork(this.#socket, send);
  }

  reply(text: string): number {
    if (this.#closed) return 0;
    this.#ops.text(this.#socket, text, undefined);
    return this.#ops.buffered(this.#socket);
  }

  heartbeat(): void {
    if (this.#closed) return;
    const ops = this.#ops;
    const socket = this.#socket;
    if (ops.ping !== undefined && !ops.ping(socket)) {
      this.#closed = true;
      if (ops.terminate !== undefined) ops.terminate(socket);
      else ops.close(socket, 1001, "heartbeat timeout");
      return;
    }
    if (this.format === "json") ops.text(socket, HEARTBEAT_JSON, undefined);
  }

  close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    const ops = this.#ops;
    const socket = this.#socket;
    ops.close(socket, code, reason);
    // A peer that never reads never completes the close handshake: drop
    // the connection (and its queue) after a bounded wait.
    if (ops.terminate !== undefined) {
      setTimeout(() => ops.terminate?.(socket), CLOSE_TIMEOUT_MS);
    }
  }
}
