/**
 * The async iterable returned by `subscribe()`: a bounded queue between the
 * reconnecting connection and a `for await` loop. Web APIs only.
 *
 * @module
 */

import type { EventData, GapNotice } from "../event.ts";
import { connectStream, type PausableUpstream } from "./_connect.ts";

/** One event: its id and its payload. */
export interface ClientEvent {
  /**
   * The id given by the stream's origin, or null for streams that carry no
   * ids (such as the original Go service's bare frames).
   */
  id: string | null;
  /** The payload: a string, or a Uint8Array for binary events. */
  data: EventData;
}

/** The connection state reported to {@link SubscribeOptions.onState}. */
export type ConnectionState = "connecting" | "open" | "closed";

/** Options of `subscribe()`. */
export interface SubscribeOptions {
  /** Start after this id (the first connection resumes from it). @default {undefined} */
  lastEventId?: string;
  /**
   * A token: sent as `Authorization: Bearer` over SSE and as `?token=` over
   * WebSocket (browsers cannot set WebSocket headers). A function is called
   * before every connection, so a short-lived token can be refreshed; with
   * a string, a subscription the server ends because the token expired
   * ends with a {@link TokenExpiredError}. @default {undefined}
   */
  token?: string | (() => string | Promise<string>);
  /** Stops the subscription: the iteration ends, nothing is left running. @default {undefined} */
  signal?: AbortSignal;
  /**
   * The server could not resume exactly (the id is older than its replay
   * buffer, or from before its restart): events may be missing. Called in
   * stream order, just before the events that follow the gap are yielded.
   * @default {undefined}
   */
  onGap?(notice: GapNotice): void;
  /**
   * The connection changed, with a line saying why (and when the next try
   * comes). Called when it happens, not in stream order; an error it throws
   * ends the subscription (the iteration throws it). @default {undefined}
   */
  onState?(state: ConnectionState, detail: string): void;
  /**
   * Most events held for a consumer that is slower than the stream. When
   * the queue is full the client disconnects; once the consumer has taken
   * half of it, the client reconnects and resumes after the last queued
   * id, so the server replays what was missed from its buffer (or sends a
   * gap notice when those events have left it). @default {1000}
   */
  maxQueue?: number;
  /** The server's heartbeat period; silence for one and a half periods (or a handshake unanswered as long) reconnects. @default {15000} */
  heartbeatMs?: number;
}

/**
 * The subscription: an async iterable of events with a way to stop it.
 * Calls of `next()` made before the earlier ones resolved (two loops over
 * one subscription) are served in call order, each event to one of them;
 * `close()` ends them all.
 */
export interface Subscription extends AsyncIterableIterator<ClientEvent> {
  /**
   * The id of the last event the loop was given (or `lastEventId` from the
   * options before any): pass it as `lastEventId` to resume later, without
   * loss, where this subscription stopped.
   */
  readonly lastEventId: string | null;
  /** Stops the subscription; a pending `next()` resolves as done. */
  close(): void;
}

/**
 * The server ended the subscription because its token expired, and the
 * token was a string (give a function to refresh it instead). Thrown by the
 * iteration after the events received before.
 *
 * @example Usage
 * ```ts ignore
 * import { subscribe, TokenExpiredError } from "./client.ts";
 * try {
 *   for await (const event of subscribe(url, { token })) console.log(event);
 * } catch (error) {
 *   if (error instanceof TokenExpiredError) console.log("log in again");
 * }
 * ```
 */
export class TokenExpiredError extends Error {
  /** The id of the last event received, to resume from with a new token. */
  readonly lastEventId: string | null;
  /**
   * Creates the error.
   *
   * @param lastEventId The last id received.
   */
  constructor(lastEventId: string | null) {
    super("Cannot subscribe: the token expired");
    this.name = "TokenExpiredError";
    this.lastEventId = lastEventId;
  }
}

type Item = ClientEvent | { gap: GapNotice };

/**
 * Creates the subscription; it connects on the first `next()`.
 *
 * @param url The validated stream URL.
 * @param options See {@link SubscribeOptions}.
 * @returns The subscription.
 */
export function createSubscription(
  url: URL,
  options: SubscribeOptions,
): Subscription {
  const max = options.maxQueue ?? 1000;
  if (!Number.isSafeInteger(max) || max < 1) {
    throw new RangeError(
      `Cannot subscribe: maxQueue must be a positive integer, received ${max}`,
    );
  }
  const heartbeat = options.heartbeatMs ?? 15_000;
  if (!(heartbeat > 0) || heartbeat === Infinity) {
    throw new RangeError(
      `Cannot subscribe: heartbeatMs must be a positive number of milliseconds, received ${heartbeat}`,
    );
  }
  const queue: Item[] = [];
  let upstream: PausableUpstream | undefined;
  // Pending next() calls, oldest first: for await takes one at a time,
  // but two loops over one subscription must not leave one hanging.
  const waiters: ((result: Promise<IteratorResult<ClientEvent>>) => void)[] =
    [];
  let closed = options.signal?.aborted === true;
  let failure: { error: unknown } | undefined;
  // The id of the last event handed to the consumer: what a later resume
  // must start after (events still queued have not been seen).
  let lastTaken = options.lastEventId ?? null;

  const push = (item: Item): void => {
    if (closed) return;
    queue.push(item);
    // A waiting consumer takes it first: only what is left can fill the
    // queue (else maxQueue: 1 would reconnect after every event).
    waiters.shift()?.(take(true));
    if (queue.length >= max) upstream!.pause();
  };

  // The next event, calling onGap for the notices before it; waits when
  // the queue is empty. A throwing onGap ends the subscription with it.
  // `again`: a waiter served by push() that only got gap notices waits at
  // the front again, keeping the call order.
  function take(again = false): Promise<IteratorResult<ClientEvent>> {
    while (queue.length > 0) {
      const item = queue.shift()!;
      if (queue.length <= max / 2) upstream?.resume();
      if (!("gap" in item)) {
        if (item.id !== null) lastTaken = item.id;
        return Promise.resolve({ value: item, done: false });
      }
      try {
        options.onGap?.(item.gap);
      } catch (error) {
        close();
        return Promise.reject(error);
      }
    }
    if (failure !== undefined) {
      const { error } = failure;
      failure = undefined;
      return Promise.reject(error);
    }
    if (closed) return Promise.resolve({ value: undefined, done: true });
    return new Promise((resolve) =>
      again ? waiters.unshift(resolve) : waiters.push(resolve)
    );
  }

  function close(): void {
    if (closed) return;
    closed = true;
    options.signal?.removeEventListener("abort", close);
    upstream?.close();
    queue.length = 0;
    for (const resolve of waiters.splice(0)) {
      resolve(Promise.resolve({ value: undefined, done: true }));
    }
  }
  options.signal?.addEventListener("abort", close, { once: true });

  // Ends the subscription with an error, thrown by the iteration after
  // the events already queued.
  function fail(error: unknown): void {
    if (closed) return;
    closed = true;
    options.signal?.removeEventListener("abort", close);
    upstream?.close();
    failure = { error };
    for (const resolve of waiters.splice(0)) resolve(take());
  }

  // A throwing onState ends the subscription with its error, as a throwing
  // onGap does, instead of escaping into the connection loop (an unhandled
  // rejection, which ends a Node or Deno process).
  const onState = options.onState;
  const reportState = onState === undefined
    ? undefined
    : (state: ConnectionState, detail: string): void => {
      try {
        onState(state, detail);
      } catch (error) {
        fail(error);
      }
    };

  const start = (): void => {
    upstream = connectStream({
      url,
      lastEventId: options.lastEventId ?? null,
      token: options.token ?? null,
      heartbeatMs: options.heartbeatMs,
      onEvent: push,
      onGap: (gap) => push({ gap }),
      onState: reportState,
      onExpired() {
        fail(new TokenExpiredError(upstream!.lastEventId));
      },
    });
    // The first onState call comes before connectStream returns.
    if (closed) upstream.close();
  };

  const subscription: Subscription = {
    get lastEventId() {
      return lastTaken;
    },
    close,
    next(): Promise<IteratorResult<ClientEvent>> {
      if (!closed && upstream === undefined) start();
      return take();
    },
    return(): Promise<IteratorResult<ClientEvent>> {
      close();
      return Promise.resolve({ value: undefined, done: true });
    },
    [Symbol.asyncIterator]() {
      return subscription;
    },
  };
  return subscription;
}
