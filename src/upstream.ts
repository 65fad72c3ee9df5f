/**
 * A consumer of one upstream stream (WebSocket or SSE) that reconnects with
 * exponential backoff and jitter and resumes from the last id it saw. Used
 * by relays and by the `subscribe` client. Web APIs only.
 *
 * @module
 */

import {
  decodeBase64,
  type EventData,
  type GapNotice,
  parseEventId,
  parseJsonMessage,
  readGapNotice,
} from "./event.ts";
import { redactSecretsIn, redactUrl } from "./redact.ts";
import { createSseParser } from "./sse_parser.ts";

/** One event from the upstream. */
export interface UpstreamEvent {
  /** The upstream's id, or null when the upstream gives none. */
  id: string | null;
  /** The payload. */
  data: EventData;
}

/** Connection state of an upstream. */
export type UpstreamState = "connecting" | "open" | "closed";

/** Options of {@link connectUpstream}. */
export interface UpstreamOptions {
  /** ws://, wss://, http:// or https:// (SSE). */
  url: URL;
  /** Resume after this id on the first connection. @default {null} */
  lastEventId?: string | null;
  /** On a connection without a last id, ask for the whole buffer. @default {false} */
  replayAll?: boolean;
  /** Token sent as `Authorization: Bearer` (SSE) or `?token=` (WebSocket). @default {null} */
  token?: string | null;
  /** The upstream's heartbeat period; silence for twice that reconnects. @default {15000} */
  heartbeatMs?: number;
  /** First retry delay bound. @default {250} */
  initialDelayMs?: number;
  /** Largest retry delay. @default {5000} */
  maxDelayMs?: number;
  /** Largest message accepted. @default {16777216} */
  maxMessageBytes?: number;
  /** Each event, in order. */
  onEvent(event: UpstreamEvent): void;
  /** The upstream reported a gap. */
  onGap?(notice: GapNotice): void;
  /** State changes, with a line to log. */
  onState?(state: UpstreamState, detail: string): void;
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

interface Attempt {
  /** Resolves when the connection ends, with the reason. */
  done: Promise<string>;
  abort(): void;
}

/**
 * Connects to an upstream and keeps reconnecting until closed.
 *
 * @example Usage
 * ```ts ignore
 * import { connectUpstream } from "../mod.ts";
 * const upstream = connectUpstream({
 *   url: new URL("ws://localhost:8080/events"),
 *   onEvent: (event) => console.log(event.id, event.data),
 * });
 * upstream.close();
 * ```
 *
 * @param options Where and what to call.
 * @returns The running consumer.
 */
export function connectUpstream(options: UpstreamOptions): Upstream {
  const heartbeatMs = options.heartbeatMs ?? 15_000;
  const initialDelay = options.initialDelayMs ?? 250;
  const maxDelay = options.maxDelayMs ?? 5_000;
  let lastEventId = options.lastEventId ?? null;
  let connected = false;
  let reconnects = 0;
  let closed = false;
  let current: Attempt | undefined;
  let wake: (() => void) | undefined;
  const state = (s: UpstreamState, detail: string): void =>
    options.onState?.(s, detail);

  const handlers: AttemptHandlers = {
    maxMessageBytes: options.maxMessageBytes ?? 16 << 20,
    heartbeatMs,
    onOpen() {
      connected = true;
      failures = 0;
      state("open", `connected to ${redactUrl(options.url)}`);
    },
    onEvent(event) {
      if (event.id !== null) lastEventId = event.id;
      options.onEvent(event);
    },
    onGap: (notice) => options.onGap?.(notice),
  };

  let failures = 0;
  async function loop(): Promise<void> {
    while (!closed) {
      state("connecting", `connecting to ${redactUrl(options.url)}`);
      const url = resumeUrl(options, lastEventId);
      current = open(url, options.token ?? null, handlers);
      // Error texts may quote the URL they were given, secrets included.
      const reason = redactSecretsIn(await current.done, url);
      const wasConnected = connected;
      connected = false;
      if (closed) break;
      if (wasConnected) reconnects++;
      const base = Math.min(maxDelay, initialDelay * 2 ** failures++);
      const delay = Math.round(base / 2 + Math.random() * base / 2);
      state(
        "closed",
        `upstream ${redactUrl(options.url)} ${reason}; retrying in ${delay} ms`,
      );
      await new Promise<void>((resolve) => {
        const timer = setTimeout(resolve, delay);
        wake = () => {
          clearTimeout(timer);
          resolve();
        };
      });
    }
    state("closed", `stopped consuming ${redactUrl(options.url)}`);
  }

  function close(): void {
    if (closed) return;
    closed = true;
    current?.abort();
    wake?.();
  }
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
  };
}

interface AttemptHandlers {
  maxMessageBytes: number;
  heartbeatMs: number;
  onOpen(): void;
  onEvent(event: UpstreamEvent): void;
  onGap(notice: GapNotice): void;
}

function resumeUrl(options: UpstreamOptions, lastEventId: string | null): URL {
  const url = new URL(options.url);
  if (url.protocol === "ws:" || url.protocol === "wss:") {
    if (!url.searchParams.has("format")) url.searchParams.set("format", "json");
    if (options.token) url.searchParams.set("token", options.token);
  }
  if (lastEventId !== null) url.searchParams.set("lastEventId", lastEventId);
  else if (options.replayAll) url.searchParams.set("replay", "all");
  return url;
}

function open(
  url: URL,
  token: string | null,
  handlers: AttemptHandlers,
): Attempt {
  return url.protocol === "ws:" || url.protocol === "wss:"
    ? openWebSocket(url, handlers)
    : openSse(url, token, handlers);
}

/**
 * Watches for silence: once the upstream has shown it sends heartbeats (it
 * speaks our protocol), twice the period without a byte ends the attempt.
 */
function createWatchdog(heartbeatMs: number, onSilence: () => void): {
  touch(ours: boolean): void;
  stop(): void;
} {
  let ours = false;
  let last = Date.now();
  const timer = setInterval(() => {
    if (ours && Date.now() - last > 2 * heartbeatMs) onSilence();
  }, Math.max(50, heartbeatMs / 2));
  return {
    touch(isOurs) {
      last = Date.now();
      if (isOurs) ours = true;
    },
    stop: () => clearInterval(timer),
  };
}

function openWebSocket(url: URL, handlers: AttemptHandlers): Attempt {
  let finish: (reason: string) => void = () => {};
  const done = new Promise<string>((resolve) => (finish = resolve));
  let socket: WebSocket;
  try {
    socket = new WebSocket(url.href);
  } catch (error) {
    return {
      done: Promise.resolve(`could not connect: ${String(error)}`),
      abort() {},
    };
  }
  socket.binaryType = "arraybuffer";
  let ended = false;
  const end = (reason: string): void => {
    // Once: closing a socket that is still connecting makes Node's
    // WebSocket fire "error" again, synchronously (endless recursion).
    if (ended) return;
    ended = true;
    watchdog.stop();
    finish(reason);
    if (socket.readyState <= 1) socket.close(1000);
  };
  const watchdog = createWatchdog(
    handlers.heartbeatMs,
    () => end("went silent"),
  );
  socket.onopen = () => {
    watchdog.touch(false);
    handlers.onOpen();
  };
  socket.onmessage = (message: MessageEvent) => {
    const raw: unknown = message.data;
    if (typeof raw === "string") {
      if (raw.length > handlers.maxMessageBytes) {
        return end("sent a message over the size limit");
      }
      const parsed = parseJsonMessage(raw);
      watchdog.touch(parsed !== undefined);
      if (parsed === undefined) handlers.onEvent({ id: null, data: raw });
      else if (parsed.type === "event") {
        handlers.onEvent({ id: parsed.id, data: parsed.data });
      } else if (parsed.type === "gap") handlers.onGap(parsed.notice);
    } else if (raw instanceof ArrayBuffer) {
      watchdog.touch(false);
      handlers.onEvent({ id: null, data: new Uint8Array(raw) });
    }
  };
  socket.onerror = () => end("failed");
  socket.onclose = (event: CloseEvent) =>
    end(`closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`);
  return { done, abort: () => end("closed by us") };
}

function openSse(
  url: URL,
  token: string | null,
  handlers: AttemptHandlers,
): Attempt {
  const controller = new AbortController();
  const done = readSse(url, token, handlers, controller.signal);
  return { done, abort: () => controller.abort() };
}

async function readSse(
  url: URL,
  token: string | null,
  handlers: AttemptHandlers,
  signal: AbortSignal,
): Promise<string> {
  const headers: Record<string, string> = { Accept: "text/event-stream" };
  const lastEventId = url.searchParams.get("lastEventId");
  if (lastEventId !== null) headers["Last-Event-ID"] = lastEventId;
  if (token) headers.Authorization = `Bearer ${token}`;
  let response: Response;
  try {
    response = await fetch(url, { headers, signal });
  } catch (error) {
    return `could not connect: ${
      error instanceof Error ? error.message : String(error)
    }`;
  }
  if (!response.ok || response.body === null) {
    await response.body?.cancel();
    return `answered ${response.status}`;
  }
  if (
    !(response.headers.get("content-type") ?? "").startsWith(
      "text/event-stream",
    )
  ) {
    await response.body.cancel();
    return "did not answer with text/event-stream";
  }
  handlers.onOpen();
  const abort = new AbortController();
  const watchdog = createWatchdog(handlers.heartbeatMs, () => abort.abort());
  const parser = createSseParser({
    onComment: () => watchdog.touch(true),
    onMessage(message) {
      watchdog.touch(true);
      const id = message.lastEventId !== "" && parseEventId(message.lastEventId)
        ? message.lastEventId
        : null;
      if (message.event === "gap") {
        const notice = parseGap(message.data);
        handlers.onGap(notice);
      } else if (message.event === "binary") {
        const bytes = decodeBase64(message.data);
        if (bytes !== undefined) handlers.onEvent({ id, data: bytes });
      } else if (message.event === "message") {
        handlers.onEvent({ id, data: message.data });
      }
    },
  }, handlers.maxMessageBytes);
  const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
  const onAbort = (): void => void reader.cancel().catch(() => {});
  abort.signal.addEventListener("abort", onAbort);
  signal.addEventListener("abort", onAbort);
  try {
    while (true) {
      const { done, value } = await reader.read();
      if (done) {
        return abort.signal.aborted ? "went silent" : "ended the stream";
      }
      parser.feed(value);
    }
  } catch (error) {
    if (abort.signal.aborted) return "went silent";
    return `failed: ${error instanceof Error ? error.message : String(error)}`;
  } finally {
    watchdog.stop();
    signal.removeEventListener("abort", onAbort);
  }
}

function parseGap(data: string): GapNotice {
  try {
    return readGapNotice(JSON.parse(data));
  } catch {
    return { lastEventId: null, reason: data };
  }
}
