/**
 * Publishing over a WebSocket (`GET /<path>?publish` with an upgrade): each
 * text or binary message is one event, answered in the order received
 * with one text frame, `{"id":"..."}` once the engine stored it or
 * `{"error":"...","code":"...","status":N}` with what a POST would have
 * answered. One connection carries many events in flight, so a publisher
 * pays no HTTP request per event.
 *
 * @module
 */

import type { EventData } from "../event.ts";
import type { WebSocketSink, WebSocketSupport } from "./types.ts";
import type { UpgradeContext } from "./websocket.ts";

/** Most messages a publisher may have sent and not yet had answered. */
export const MAX_UNACKED = 1024;

/** Most bytes of unanswered messages, beyond one message of -max-body. */
export const MAX_UNACKED_BYTES = 16 << 20;

/** What {@link upgradePublisher} needs from the app, shared by every publisher. */
export interface PublisherHooks {
  /**
   * Stores one event (or forwards it) and gives the answer frame; never
   * rejects. The events of one `socket` are stored in the order given.
   */
  publish(
    path: string,
    data: EventData,
    socket: PublisherSocket,
  ): string | Promise<string>;
  /** A message was received: it counts as a publish in flight until answered. */
  begin(): void;
  /** A message was answered (or its socket went before it could be). */
  end(): void;
  /** The socket is open. */
  opened(socket: PublisherSocket): void;
  /** The socket closed. */
  closed(socket: PublisherSocket): void;
  /** True once the instance is shutting down. */
  draining(): boolean;
  /** Largest message, as -max-body. */
  maxFrameBytes: number;
  /** Most bytes of answers queued for a peer that does not read them. */
  maxQueueBytes: number;
}

/** The part of Hono's WSContext used here. */
interface SocketContext {
  raw?: unknown;
  close(code?: number, reason?: string): void;
}

/** One message waiting for its answer. */
interface Slot {
  frame: string | undefined;
  bytes: number;
}

/** Answer frame for a refused message, in the shape of a POST's JSON error. */
export function errorFrame(
  status: number,
  code: string,
  error: string,
): string {
  return JSON.stringify({ error, code, status });
}

const EMPTY_FRAME = errorFrame(
  400,
  "empty_body",
  "Cannot publish an empty body",
);
const EXPIRED_FRAME = errorFrame(
  401,
  "unauthorized",
  "Cannot publish: the token has expired",
);
const SHUTTING_DOWN_FRAME = errorFrame(
  503,
  "shutting_down",
  "The instance is shutting down",
);

const ENCODER = new TextEncoder();

function sizeOf(data: unknown): number {
  return typeof data === "string"
    ? data.length
    : data instanceof ArrayBuffer
    ? data.byteLength
    : ArrayBuffer.isView(data)
    ? data.byteLength
    : data instanceof Blob
    ? data.size
    : -1;
}

/**
 * One publisher connection: its handlers (in the shape of Hono's WSEvents)
 * and its queue of messages waiting for their answers, answered in order.
 */
export class PublisherSocket {
  #path: string;
  #hooks: PublisherHooks;
  #support: WebSocketSupport;
  #sink: WebSocketSink | undefined;
  #slots: Slot[] = [];
  #head = 0;
  #unackedBytes = 0;
  #closed = false;
  #closeWhenDone = false;
  #flushQueued = false;
  #expiresAtMs: number | null;

  constructor(
    path: string,
    hooks: PublisherHooks,
    support: WebSocketSupport,
    expiresAtMs: number | null,
  ) {
    this.#path = path;
    this.#hooks = hooks;
    this.#support = support;
    this.#expiresAtMs = expiresAtMs;
  }

  /** Tells the runtime adapters to pass this socket's messages on. */
  get publisher(): true {
    return true;
  }

  /** The subscriber-like sink (heartbeats, queue, close). */
  get sink(): WebSocketSink | undefined {
    return this.#sink;
  }

  /** Messages received and not yet answered. */
  get unacked(): number {
    return this.#slots.length - this.#head;
  }

  onOpen(_event: unknown, ws: SocketContext): void {
    // Binary messages as ArrayBuffer, not Blob, where the socket follows
    // the web API (Deno.upgradeWebSocket). Other sockets are left as their
    // adapter expects them: hono/bun reads a Bun socket's messages as
    // Buffers (an ArrayBuffer there reached us as null).
    const raw = ws.raw as { binaryType?: string } | undefined;
    if (raw?.binaryType === "blob") raw.binaryType = "arraybuffer";
    this.#sink = this.#support.createSink(ws.raw, "raw");
    this.#hooks.opened(this);
    if (this.#hooks.draining()) this.drain();
  }

  onMessage(event: { data: unknown }): void {
    if (this.#closed || this.#sink === undefined) return;
    const data = event.data;
    // The unanswered bound counts a string's length (what it holds in
    // memory, and what publisher() counts); -max-body counts UTF-8 bytes
    // (up to three per unit). Node and Bun bound the frame's bytes before
    // this; Deno.serve does not.
    const size = sizeOf(data);
    const bytes = typeof data === "string" &&
        size * 3 > this.#hooks.maxFrameBytes
      ? ENCODER.encode(data).byteLength
      : size;
    if (bytes > this.#hooks.maxFrameBytes) {
      return this.#close(1009, "frame too large");
    }
    if (size < 0) return this.#close(1003, "unsupported message type");
    if (
      this.unacked >= MAX_UNACKED ||
      (this.unacked > 0 &&
        this.#unackedBytes + size >
          MAX_UNACKED_BYTES + this.#hooks.maxFrameBytes)
    ) {
      return this.#close(
        1008,
        `more than ${MAX_UNACKED} publishes or ${
          MAX_UNACKED_BYTES >> 20
        } MiB unanswered`,
      );
    }
    this.#hooks.begin();
    const answer = this.#answer(data, size);
    if (typeof answer === "string" && this.unacked === 0) {
      this.#send(answer);
      this.#hooks.end();
      return;
    }
    const slot: Slot = { frame: undefined, bytes: size };
    this.#slots.push(slot);
    this.#unackedBytes += size;
    if (typeof answer === "string") {
      slot.frame = answer;
      return;
    }
    answer.then((frame) => {
      slot.frame = frame;
      // Answers that come together (Redis answers a round of appends at
      // once) leave together: one flush after them.
      if (this.#flushQueued) return;
      this.#flushQueued = true;
      queueMicrotask(() => {
        this.#flushQueued = false;
        this.#flush();
      });
    });
  }

  onClose(): void {
    this.#end();
  }

  onError(): void {
    this.#end();
  }

  /**
   * Shutdown: no new message is stored (each is answered `shutting_down`);
   * once every message received is answered, the socket closes with 1001.
   */
  drain(): void {
    this.#closeWhenDone = true;
    if (this.unacked === 0) this.#close(1001, "going away");
  }

  #answer(data: unknown, size: number): string | Promise<string> {
    if (size === 0) return EMPTY_FRAME;
    if (this.#hooks.draining()) return SHUTTING_DOWN_FRAME;
    // Checked per message, as a POST checks its token: a JWT that expired
    // while the connection was open publishes nothing more on it.
    if (this.#expiresAtMs !== null && Date.now() >= this.#expiresAtMs) {
      return EXPIRED_FRAME;
    }
    if (data instanceof Blob) {
      return data.arrayBuffer().then((buffer) =>
        this.#hooks.publish(this.#path, new Uint8Array(buffer), this)
      );
    }
    const payload: EventData = typeof data === "string"
      ? data
      : data instanceof ArrayBuffer
      ? new Uint8Array(data)
      : data as Uint8Array;
    return this.#hooks.publish(this.#path, payload, this);
  }

  // Answers, in order, every message at the head whose answer is known.
  #flush(): void {
    const sink = this.#sink;
    if (sink?.batch !== undefined && !this.#closed) {
      sink.batch(() => this.#answerReady());
    } else this.#answerReady();
    if (this.#head === this.#slots.length) {
      this.#slots = [];
      this.#head = 0;
      if (this.#closeWhenDone) this.#close(1001, "going away");
    } else if (this.#head > 1024) {
      this.#slots = this.#slots.slice(this.#head);
      this.#head = 0;
    }
  }

  #answerReady(): void {
    const slots = this.#slots;
    while (this.#head < slots.length) {
      const slot = slots[this.#head];
      if (slot.frame === undefined) break;
      this.#head++;
      this.#unackedBytes -= slot.bytes;
      if (!this.#closed) this.#send(slot.frame);
      this.#hooks.end();
    }
  }

  #send(frame: string): void {
    const sink = this.#sink!;
    if (sink.reply === undefined) return;
    // A publisher that does not read its answers must not make them pile
    // up here.
    if (sink.reply(frame) > this.#hooks.maxQueueBytes) {
      this.#close(1008, "publisher does not read its answers");
    }
  }

  #close(code: number, reason: string): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#sink?.close(code, reason);
  }

  // Messages still waiting are counted until the engine answers them
  // (their events may still be stored); their answers go nowhere.
  #end(): void {
    if (this.#sink === undefined) return;
    this.#closed = true;
    this.#hooks.closed(this);
    this.#sink = undefined;
  }
}

/**
 * Upgrades the request to a publisher connection on `path`.
 *
 * @param c The request and the runtime's env, as a Hono context has them.
 * @param path The topic's path.
 * @param support The runtime's WebSocket support.
 * @param hooks The app's hooks, shared by every publisher.
 * @param expiresAtMs When the publisher's token expires (ms since the
 * epoch, leeway included), or null: messages after it are refused 401.
 * @returns The upgrade response.
 */
export function upgradePublisher(
  c: UpgradeContext,
  path: string,
  support: WebSocketSupport,
  hooks: PublisherHooks,
  expiresAtMs: number | null = null,
): Response | Promise<Response> {
  const upgrade = support.upgradeWebSocket as unknown as (
    c: UpgradeContext,
    events: PublisherSocket,
    options: unknown,
  ) => Response | Promise<Response>;
  return upgrade(
    c,
    new PublisherSocket(path, hooks, support, expiresAtMs),
    support.upgradeOptions?.(),
  );
}
