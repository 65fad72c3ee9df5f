/**
 * One connection attempt to a stream, over WebSocket (`?format=json`) or
 * Server-Sent Events read with fetch. Web APIs only (no runtime globals,
 * no dependency), so the same code runs in browsers, Deno, Bun and Node.
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
} from "../event.ts";
import { createSseParser } from "../sse_parser.ts";

/** One event from a stream. */
export interface StreamMessage {
  /** The stream's id, or null when the stream gives none. */
  id: string | null;
  /** The payload: text, or bytes for binary events. */
  data: EventData;
}

/** What an attempt calls while it runs. */
export interface AttemptHandlers {
  /** Largest message accepted. */
  maxMessageBytes: number;
  /** Opens the WebSocket. @default {the global WebSocket} */
  createWebSocket?(url: string, maxMessageBytes: number): WebSocket;
  /** An SSE event's data lines added up past `maxMessageBytes`: dropped. */
  onOversized(length: number): void;
  /**
   * The server's heartbeat period: silence for one and a half periods
   * ends an attempt (so a partition is found within two heartbeats), and
   * so does a handshake not answered as long.
   */
  heartbeatMs: number;
  /** The connection is open. */
  onOpen(): void;
  /** An event, in order. */
  onEvent(event: StreamMessage): void;
  /** The server reported a gap. */
  onGap(notice: GapNotice): void;
}

/**
 * What an attempt ends with when the server ended the subscription because
 * its token expired (SSE `event: expired`, WebSocket close 1008 "token
 * expired"): the same token would be refused.
 */
export const TOKEN_EXPIRED = "ended the subscription: the token expired";

/** A connection attempt. */
export interface Attempt {
  /** Resolves when the connection ends, with the reason in words. */
  done: Promise<string>;
  /** Ends it; no handler is called afterwards. */
  abort(): void;
}

/**
 * Opens one connection: WebSocket for ws(s):// URLs, SSE for http(s)://.
 *
 * @param url The full URL, with the resume and format parameters.
 * @param token Sent as `Authorization: Bearer` over SSE (WebSocket URLs
 *   already carry it as `?token=`).
 * @param handlers What to call.
 * @returns The attempt.
 */
export function openAttempt(
  url: URL,
  token: string | null,
  handlers: AttemptHandlers,
): Attempt {
  return url.protocol === "ws:" || url.protocol === "wss:"
    ? openWebSocket(url, handlers)
    : openSse(url, token, handlers);
}

/**
 * Silence, in heartbeat periods, after which an attempt is given up: a
 * stream that stopped, or a handshake never answered.
 */
const SILENT_PERIODS = 1.5;

/**
 * Watches for silence: {@link SILENT_PERIODS} heartbeats without a byte
 * end the attempt, so a partition is found within two heartbeats. That
 * holds from the start (a server, or a proxy, that accepts and never
 * answers the handshake), and after the handshake once the server has
 * shown it sends heartbeats (it speaks our protocol). Checked ten times a
 * period, with a re-armed timeout rather than an interval, so that
 * stopping it leaves nothing behind.
 */
function createWatchdog(
  heartbeatMs: number,
  onSilence: (reason: string) => void,
): {
  touch(ours: boolean): void;
  stop(): void;
} {
  let ours = false;
  let answered = false;
  let last = Date.now();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const check = (): void => {
    const silent = Date.now() - last;
    if (!answered && silent > SILENT_PERIODS * heartbeatMs) {
      return onSilence(`did not answer within ${silent} ms`);
    }
    if (ours && silent > SILENT_PERIODS * heartbeatMs) {
      return onSilence("went silent");
    }
    timer = setTimeout(check, Math.max(50, heartbeatMs / 10));
  };
  check();
  return {
    touch(isOurs) {
      last = Date.now();
      answered = true;
      if (isOurs) ours = true;
    },
    stop: () => clearTimeout(timer),
  };
}

function openWebSocket(url: URL, handlers: AttemptHandlers): Attempt {
  let finish: (reason: string) => void = () => {};
  const done = new Promise<string>((resolve) => (finish = resolve));
  let socket: WebSocket;
  try {
    socket = handlers.createWebSocket?.(url.href, handlers.maxMessageBytes) ??
      new WebSocket(url.href);
  } catch (error) {
    return { done: Promise.resolve(`could not connect: ${error}`), abort() {} };
  }
  let ended = false;
  socket.binaryType = "arraybuffer";
  const end = (reason: string): void => {
    if (ended) return;
    ended = true;
    watchdog.stop();
    finish(reason);
    if (socket.readyState <= 1) socket.close(1000);
  };
  const watchdog = createWatchdog(handlers.heartbeatMs, end);
  socket.onopen = () => {
    if (ended) return;
    watchdog.touch(false);
    handlers.onOpen();
  };
  socket.onmessage = (message: MessageEvent) => {
    if (ended) return;
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
      if (raw.byteLength > handlers.maxMessageBytes) {
        return end("sent a message over the size limit");
      }
      watchdog.touch(false);
      handlers.onEvent({ id: null, data: new Uint8Array(raw) });
    }
  };
  socket.onerror = () => end("failed");
  socket.onclose = (event: CloseEvent) =>
    end(
      event.code === 1008 && event.reason === "token expired"
        ? TOKEN_EXPIRED
        : `closed (${event.code}${event.reason ? ` ${event.reason}` : ""})`,
    );
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
  // fetch() refuses a URL with credentials: they go in a header instead.
  const target = new URL(url);
  if (target.username !== "" || target.password !== "") {
    headers.Authorization ??= basicAuth(target);
    target.username = "";
    target.password = "";
  }
  // The watchdog runs from the request on, so a server (or a proxy) that
  // accepts and never answers is given up too. It aborts the request,
  // then cancels the body once there is one; so does the caller's abort.
  let silent: string | undefined;
  const request = new AbortController();
  let cancel = (): void => request.abort();
  const watchdog = createWatchdog(handlers.heartbeatMs, (reason) => {
    silent = reason;
    cancel();
  });
  const onAbort = (): void => cancel();
  signal.addEventListener("abort", onAbort);
  try {
    let response: Response;
    try {
      response = await fetch(target.href, {
        headers,
        signal: request.signal,
        cache: "no-store",
      });
    } catch (error) {
      return silent ??
        `could not connect: ${(error as Error)?.message ?? error}`;
    }
    watchdog.touch(false);
    const type = response.headers.get("content-type") ?? "";
    if (
      !response.ok || !response.body || !type.startsWith("text/event-stream")
    ) {
      await response.body?.cancel().catch(() => {});
      return response.ok
        ? "did not answer with text/event-stream"
        : `answered ${response.status}`;
    }
    if (signal.aborted) {
      await response.body.cancel().catch(() => {});
      return "closed by us";
    }
    handlers.onOpen();
    let expired = false;
    const reader = response.body.getReader();
    cancel = (): void => void reader.cancel().catch(() => {});
    const parser = createSseParser({
      onComment: () => watchdog.touch(true),
      onOversized(length) {
        if (signal.aborted) return;
        watchdog.touch(true);
        handlers.onOversized(length);
      },
      onMessage(message) {
        // A chunk may hold several events: none is passed on once aborted.
        if (signal.aborted) return;
        watchdog.touch(true);
        const id =
          message.lastEventId !== "" && parseEventId(message.lastEventId)
            ? message.lastEventId
            : null;
        if (message.event === "gap") handlers.onGap(parseGap(message.data));
        else if (message.event === "expired") expired = true;
        else if (message.event === "binary") {
          const bytes = decodeBase64(message.data);
          if (bytes !== undefined) handlers.onEvent({ id, data: bytes });
        } else if (message.event === "message") {
          handlers.onEvent({ id, data: message.data });
        }
      },
    }, handlers.maxMessageBytes);
    const decoder = new TextDecoder();
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) {
          return silent ?? (expired ? TOKEN_EXPIRED : "ended the stream");
        }
        parser.feed(decoder.decode(value, { stream: true }));
      }
    } catch (error) {
      return silent ?? `failed: ${(error as Error)?.message ?? error}`;
    }
  } finally {
    watchdog.stop();
    signal.removeEventListener("abort", onAbort);
  }
}

/**
 * `Basic` credentials from a URL's user and password (UTF-8, RFC 7617), for
 * fetch(), which refuses URLs with credentials.
 *
 * @param url A URL with a user or password.
 * @returns The Authorization header's value.
 */
export function basicAuth(url: URL): string {
  const pair = `${decodeURIComponent(url.username)}:${
    decodeURIComponent(url.password)
  }`;
  let binary = "";
  for (const byte of new TextEncoder().encode(pair)) {
    binary += String.fromCharCode(byte);
  }
  return `Basic ${btoa(binary)}`;
}

function parseGap(data: string): GapNotice {
  try {
    return readGapNotice(JSON.parse(data));
  } catch {
    return { lastEventId: null, reason: data };
  }
}
