/**
 * A consumer of one stream (WebSocket or SSE) that reconnects with
 * exponential backoff and jitter and resumes from the last id it saw: the
 * one implementation of reconnect and resume, used by relays, by the
 * `subscribe` command and by the client module (and so by the live view).
 * Web APIs only.
 *
 * @module
 */

import type { EventData, GapNotice } from "../event.ts";
import { redactSecretsIn, redactUrl } from "../redact.ts";
import {
  type Attempt,
  type AttemptHandlers,
  openAttempt,
  type StreamMessage,
  TOKEN_EXPIRED,
} from "./_transports.ts";

/** One event from the upstream. */
export type UpstreamEvent = StreamMessage;

/** Connection state of an upstream. */
export type UpstreamState = "connecting" | "open" | "closed";

/** Options of {@link connectStream}. */
export interface UpstreamOptions {
  /** ws://, wss://, http:// or https:// (SSE). */
  url: URL;
  /** Resume after this id on the first connection. @default {null} */
  lastEventId?: string | null;
  /** On a connection without a last id, ask for the whole buffer. @default {false} */
  replayAll?: boolean;
  /**
   * Token sent as `Authorization: Bearer` (SSE) or `?token=` (WebSocket);
   * a function is called before every connection (to refresh a token).
   * @default {null}
   */
  token?: string | null | (() => string | Promise<string>);
  /** The upstream's heartbeat period; silence for one and a half periods (or a handshake unanswered as long) reconnects. @default {15000} */
  heartbeatMs?: number;
  /** First retry delay bound. @default {250} */
  initialDelayMs?: number;
  /** Largest retry delay. @default {5000} */
  maxDelayMs?: number;
  /** Largest message accepted (a whole frame, an SSE event's text). @default {16777216} */
  maxMessageBytes?: number;
  /**
   * Largest event payload, in bytes after decoding (JSON envelope, base64,
   * UTF-8): a larger event is dropped and reported as a gap, never passed
   * on. A relay gives its own -max-body. @default {maxMessageBytes}
   */
  maxEventBytes?: number;
  /**
   * Opens the WebSocket (a runtime's own client, such as one that offers no
   * compression and bounds frames while reading them).
   * @default {the global WebSocket}
   */
  createWebSocket?(url: string, maxMessageBytes: number): WebSocket;
  /** An event over `maxEventBytes` was dropped (its size in bytes, at least). */
  onDropped?(bytes: number): void;
  /** Each event, in order. */
  onEvent(event: UpstreamEvent): void;
  /** The upstream reported a gap. */
  onGap?(notice: GapNotice): void;
  /** State changes, with a line to log. */
  onState?(state: UpstreamState, detail: string): void;
  /**
   * The server ended the subscription because the token expired. Without
   * this callback, or with a token function, it reconnects as after any
   * drop; the callback may close the consumer instead.
   */
  onExpired?(): void;
  /** Stops everything. */
  signal?: AbortSignal;
}

/** A running upstream consumer. */
export interface Upstream {
  /** True while connected. */
  readonly connected: boolean;
  /** Connections lost so far. */
  readonly reconnects: number;
  /** The last id received, used to resume. */
  readonly lastEventId: string | null;
  /** Stops and disconnects. */
  close(): void;
}

/** An upstream consumer that can also be paused (the client's queue is full). */
export interface PausableUpstream extends Upstream {
  /** Disconnects now and stays disconnected until {@link resume}. */
  pause(): void;
  /** Reconnects at once after {@link pause}, resuming from the last id. */
  resume(): void;
}

/**
 * Connects to a stream and keeps reconnecting until closed. The retry
 * delay after the n-th failure in a row is drawn from [b/2, b] with
 * b = min(maxDelayMs, initialDelayMs * 2^n): the first retry comes within
 * 250 ms, later ones at most 5 s apart. An open connection resets n.
 *
 * @param options Where and what to call.
 * @returns The running consumer, which can also be paused.
 */
export function connectStream(options: UpstreamOptions): PausableUpstream {
  const initialDelay = options.initialDelayMs ?? 250;
  const maxDelay = options.maxDelayMs ?? 5_000;
  const shown = redactUrl(options.url);
  let lastEventId = options.lastEventId ?? null;
  let connected = false;
  let reconnects = 0;
  let failures = 0;
  let closed = false;
  let paused = false;
  let current: Attempt | undefined;
  let wake: (() => void) | undefined;
  const state = (s: UpstreamState, detail: string): void =>
    options.onState?.(s, detail);

  const maxMessageBytes = options.maxMessageBytes ?? 16 << 20;
  const maxEventBytes = options.maxEventBytes ?? maxMessageBytes;
  // Dropped, not stored, and said: the subscribers get a gap notice.
  const drop = (bytes: number): void => {
    options.onDropped?.(bytes);
    options.onGap?.({
      lastEventId,
      reason: `the upstream sent an event over ${maxEventBytes} bytes`,
    });
  };
  const handlers: AttemptHandlers = {
    maxMessageBytes,
    heartbeatMs: options.heartbeatMs ?? 15_000,
    createWebSocket: options.createWebSocket,
    onOversized: drop,
    onOpen() {
      connected = true;
      failures = 0;
      state("open", `connected to ${shown}`);
    },
    onEvent(event) {
      const bytes = overLimit(event.data, maxEventBytes);
      if (bytes > 0) return drop(bytes);
      if (event.id !== null) lastEventId = event.id;
      options.onEvent(event);
    },
    onGap: (notice) => options.onGap?.(notice),
  };

  // Waits `ms` (forever for Infinity) or until woken by close or resume.
  // Not at all once closed: an onState callback may have closed it.
  const sleep = (ms: number): Promise<void> =>
    new Promise((resolve) => {
      if (closed) return resolve();
      const timer = ms === Infinity ? undefined : setTimeout(resolve, ms);
      wake = () => {
        clearTimeout(timer);
        wake = undefined;
        resolve();
      };
    });

  async function loop(): Promise<void> {
    while (!closed) {
      // Each state callback may close, pause or resume: check again after.
      if (paused) {
        state("closed", `paused ${shown}: the consumer is behind`);
        if (paused) await sleep(Infinity);
        continue;
      }
      state("connecting", `connecting to ${shown}`);
      if (closed || paused) continue;
      let reason: string;
      try {
        const token = typeof options.token === "function"
          ? await options.token()
          : options.token ?? null;
        if (closed || paused) continue;
        const url = resumeUrl(options, lastEventId, token);
        current = openAttempt(url, token, handlers);
        // Error texts may quote the URL they were given, secrets included.
        reason = redactSecretsIn(await current.done, url);
      } catch (error) {
        reason = `could not get a token: ${(error as Error)?.message ?? error}`;
      }
      current = undefined;
      const wasConnected = connected;
      connected = false;
      if (reason === TOKEN_EXPIRED && typeof options.token !== "function") {
        options.onExpired?.();
      }
      if (closed || paused) continue;
      if (wasConnected) reconnects++;
      const base = Math.min(maxDelay, initialDelay * 2 ** failures++);
      const delay = Math.round(base / 2 + Math.random() * base / 2);
      state("closed", `upstream ${shown} ${reason}; retrying in ${delay} ms`);
      await sleep(delay);
    }
    state("closed", `stopped consuming ${shown}`);
  }

  function close(): void {
    if (closed) return;
    closed = true;
    options.signal?.removeEventListener("abort", close);
    current?.abort();
    wake?.();
  }
  if (options.signal?.aborted) closed = true;
  options.signal?.addEventListener("abort", close, { once: true });
  loop();
  return {
    get connected() {
      return connected;
    },
    get reconnects() {
      return reconnects;
    },
    get lastEventId() {
      return lastEventId;
    },
    close,
    pause() {
      if (closed || paused) return;
      paused = true;
      current?.abort();
    },
    resume() {
      if (!paused) return;
      paused = false;
      wake?.();
    },
  };
}

/**
 * The size in bytes of a payload when it is over `max` (UTF-8 for text),
 * else 0; text is measured only when it could be over.
 */
function overLimit(data: EventData, max: number): number {
  if (typeof data !== "string") {
    return data.byteLength > max ? data.byteLength : 0;
  }
  if (data.length * 3 <= max) return 0;
  const bytes = ENCODER.encode(data).byteLength;
  return bytes > max ? bytes : 0;
}

const ENCODER = new TextEncoder();

function resumeUrl(
  options: UpstreamOptions,
  lastEventId: string | null,
  token: string | null,
): URL {
  const url = new URL(options.url);
  // Never sent to a server, and WebSocket constructors refuse it.
  url.hash = "";
  if (url.protocol === "ws:" || url.protocol === "wss:") {
    if (!url.searchParams.has("format")) url.searchParams.set("format", "json");
    if (token) url.searchParams.set("token", token);
  }
  if (lastEventId !== null) url.searchParams.set("lastEventId", lastEventId);
  else if (options.replayAll) url.searchParams.set("replay", "all");
  return url;
}
