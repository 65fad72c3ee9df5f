/**
 * Ends subscriptions when their token expires: a WebSocket is closed with
 * 1008 and a reason, an SSE stream gets `event: expired` and ends.
 *
 * @module
 */

import type { Subscription } from "../hub.ts";
import type { WebSocketSink } from "./types.ts";

type Timer = ReturnType<typeof setTimeout>;

/** setTimeout's largest delay (about 24.8 days); longer ones re-arm. */
const MAX_DELAY_MS = 2 ** 31 - 1;

/** The reason given to a subscriber whose token expired. */
export const EXPIRED_REASON = "token expired";

/** One timer per subscriber whose token expires; none for the others. */
export class ExpiryTimers {
  #timers = new Map<WebSocketSink, Timer>();

  /** Subscribers being watched. */
  get size(): number {
    return this.#timers.size;
  }

  /**
   * Ends `subscription` at `atMs` (ms since the epoch).
   *
   * @param subscription The subscription.
   * @param atMs When its token expires.
   */
  watch(subscription: Subscription, atMs: number): void {
    const sink = subscription.sink as WebSocketSink;
    const delay = Math.max(0, atMs - Date.now());
    const timer = setTimeout(() => {
      if (delay > MAX_DELAY_MS) return this.watch(subscription, atMs);
      this.#timers.delete(sink);
      subscription.cancel();
      try {
        if (sink.expire !== undefined) sink.expire(EXPIRED_REASON);
        else sink.close(1008, EXPIRED_REASON);
      } catch {
        // The connection is gone already.
      }
    }, Math.min(delay, MAX_DELAY_MS));
    this.#timers.set(sink, timer);
  }

  /**
   * Stops watching a subscriber that ended.
   *
   * @param sink Its sink.
   */
  forget(sink: WebSocketSink): void {
    const timer = this.#timers.get(sink);
    if (timer === undefined) return;
    clearTimeout(timer);
    this.#timers.delete(sink);
  }
}
