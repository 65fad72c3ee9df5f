/**
 * The wsevent client: subscribe to a stream with `for await`, publish to
 * it. One small module with no dependency, on web APIs only (WebSocket,
 * fetch, AbortSignal, TextDecoder), so it runs in browsers, Deno, Bun and
 * Node 22+.
 *
 * `subscribe()` connects over WebSocket (`?format=json`) for ws:// and
 * wss:// URLs and over Server-Sent Events (read with fetch) for http:// and
 * https:// URLs. It reconnects after every drop with exponential backoff and
 * jitter (the first retry within 250 ms, then at most 5 s apart) and resumes
 * after the last id it received, so nothing is lost or repeated while the
 * server's replay buffer still holds the missed events; otherwise the server
 * says so and `onGap` is called.
 *
 * @example Subscribe and publish
 * ```ts ignore
 * import { publish, subscribe } from "./client.ts";
 *
 * const controller = new AbortController();
 * const events = subscribe("ws://localhost:8080/events", {
 *   signal: controller.signal,
 *   onGap: (gap) => console.warn("missed events after", gap.lastEventId),
 * });
 * const { id } = await publish("http://localhost:8080/events", "hello");
 * for await (const event of events) {
 *   console.log(event.id, event.data);
 *   if (event.id === id) controller.abort(); // ends the loop
 * }
 * ```
 *
 * @module
 */

import {
  createSubscription,
  TokenExpiredError,
} from "./client/_subscription.ts";
import type { SubscribeOptions, Subscription } from "./client/_subscription.ts";
import { postEvent, PublishError } from "./client/_publish.ts";
import type { PublishOptions, PublishResult } from "./client/_publish.ts";
import { openPublisher, PublishUnconfirmedError } from "./client/_publisher.ts";
import type { Publisher, PublisherOptions } from "./client/_publisher.ts";

export { PublishError, PublishUnconfirmedError, TokenExpiredError };
export type { Publisher, PublisherOptions } from "./client/_publisher.ts";
export type { EventData, GapNotice } from "./event.ts";
export type {
  ClientEvent,
  ConnectionState,
  SubscribeOptions,
  Subscription,
} from "./client/_subscription.ts";
export type { PublishOptions, PublishResult } from "./client/_publish.ts";

const STREAM_PROTOCOLS = ["ws:", "wss:", "http:", "https:"];

/** Reads a URL, relative to the page in a browser. */
function toUrl(url: string | URL, action: string): URL {
  let base: string | undefined;
  try {
    base = (globalThis as { location?: { href?: string } }).location?.href;
  } catch {
    // Deno without --location throws on `location`: no base then.
  }
  let parsed: URL;
  try {
    parsed = new URL(url, base);
  } catch {
    throw new TypeError(`Cannot ${action}: invalid URL "${url}"`);
  }
  if (!STREAM_PROTOCOLS.includes(parsed.protocol)) {
    throw new TypeError(
      `Cannot ${action}: expected a ws://, wss://, http:// or https:// URL, received "${url}"`,
    );
  }
  return parsed;
}

/**
 * Subscribes to a stream. The result is an async iterable of
 * `{ id, data }` (data is a string, or a Uint8Array for binary events); it
 * connects when iteration starts and runs until `options.signal` aborts,
 * `close()` is called, or the loop is left (`break`, `return`, a throw),
 * leaving no socket or timer behind.
 *
 * A consumer slower than the stream never makes memory grow: at most
 * `options.maxQueue` events wait; when full, the client disconnects, and
 * when the consumer has caught up halfway it reconnects and resumes after
 * the last queued id, so the server replays the rest (or reports a gap).
 *
 * @example Usage
 * ```ts ignore
 * import { subscribe } from "./client.ts";
 * for await (const event of subscribe("http://localhost:8080/events", {
 *   token: "s3cret",
 *   lastEventId: "mi5x0k2a4f1-41", // start after this event
 *   onState: (state, detail) => console.error(state, detail),
 * })) {
 *   console.log(event.id, event.data);
 * }
 * ```
 *
 * @param url A ws://, wss:// (WebSocket), http:// or https:// (SSE) URL;
 *   in a browser, relative to the page.
 * @param options See {@link SubscribeOptions}.
 * @returns The subscription, to use with `for await`.
 * @throws {TypeError} When the URL is invalid or of another scheme.
 * @throws {RangeError} When `maxQueue` or `heartbeatMs` is out of range.
 */
export function subscribe(
  url: string | URL,
  options: SubscribeOptions = {},
): Subscription {
  return createSubscription(toUrl(url, "subscribe"), options);
}

/**
 * Publishes one event (a POST to the stream's URL) and resolves to the id
 * the server gave it.
 *
 * @example Usage
 * ```ts ignore
 * import { publish } from "./client.ts";
 * const { id } = await publish("http://localhost:8080/events", "hello", {
 *   token: "s3cret",
 * });
 * await publish("http://localhost:8080/events", new Uint8Array([1, 2, 3]));
 * ```
 *
 * @param url The stream's http:// or https:// URL (ws:// and wss:// are
 *   turned into http:// and https://); in a browser, relative to the page.
 * @param data The payload: text, or bytes (sent as application/octet-stream).
 * @param options See {@link PublishOptions}.
 * @returns The event's id.
 * @throws {PublishError} When the server answers 4xx or 5xx (with `status`
 *   and `code`), or without an id.
 * @throws {TypeError} When the URL is invalid, or the network fails.
 */
export async function publish(
  url: string | URL,
  data: string | Uint8Array,
  options: PublishOptions = {},
): Promise<PublishResult> {
  const target = toUrl(url, "publish");
  target.protocol = target.protocol.replace("ws", "http");
  return await postEvent(target, data, options);
}

/**
 * Opens a publisher: one WebSocket (the stream's URL with `?publish`) that
 * carries many publishes, each answered in order with its id once the
 * server stored the event. Far cheaper per event than {@link publish}
 * (one POST each) when many events are published; up to
 * `options.maxInFlight` are sent before their answers come, more wait in
 * order. The server checks the token before the upgrade (a refused
 * connection rejects the publishes waiting for it).
 *
 * A dropped connection rejects the publishes sent on it with
 * {@link PublishUnconfirmedError} (their events may or may not have been
 * stored, and they are not resent); the next publish opens a new
 * connection.
 *
 * @example Usage
 * ```ts ignore
 * import { publisher } from "./client.ts";
 * const events = publisher("ws://localhost:8080/events", { token: "s3cret" });
 * const ids = await Promise.all(
 *   ["a", "b", "c"].map((text) => events.publish(text)),
 * );
 * console.log(ids.map((answer) => answer.id));
 * await events.close();
 * ```
 *
 * @param url The stream's ws:// or wss:// URL (http:// and https:// are
 *   turned into ws:// and wss://); in a browser, relative to the page.
 * @param options See {@link PublisherOptions}.
 * @returns The publisher.
 * @throws {TypeError} When the URL is invalid or of another scheme.
 * @throws {RangeError} When `maxInFlight` is out of range.
 */
export function publisher(
  url: string | URL,
  options: PublisherOptions = {},
): Publisher {
  return openPublisher(toUrl(url, "publish"), options);
}
