/**
 * WebSocket subscriptions through Hono's upgrader for the runtime.
 *
 * @module
 */

import type { SubscribeOptions, Subscription, Topic } from "../hub.ts";
import type { WebSocketSink, WebSocketSupport } from "./types.ts";

/** Hooks of {@link upgradeSubscriber}. */
export interface UpgradeHooks {
  /** The sink exists and is subscribed (until `expiresAtMs`, when set). */
  onOpen(
    sink: WebSocketSink,
    subscription: Subscription,
    expiresAtMs: number | null,
  ): void;
  /** The connection ended. */
  onClose(sink: WebSocketSink): void;
  /** Largest incoming frame; anything larger closes with 1009. */
  maxFrameBytes: number;
}

/**
 * Checks the handshake headers that every runtime needs, so a broken
 * upgrade gets a 400 instead of a runtime error.
 *
 * @param request The request.
 * @returns A problem in words, or null when the handshake is well formed.
 */
export function handshakeProblem(request: Request): string | null {
  const key = request.headers.get("sec-websocket-key");
  if (key === null || !/^[A-Za-z0-9+/]{22}==$/.test(key.trim())) {
    return "Cannot upgrade: missing or malformed Sec-WebSocket-Key";
  }
  const connection = (request.headers.get("connection") ?? "").toLowerCase();
  if (!connection.split(",").some((token) => token.trim() === "upgrade")) {
    return "Cannot upgrade: the Connection header must contain Upgrade";
  }
  if (request.headers.get("sec-websocket-version") !== "13") {
    return "Cannot upgrade: Sec-WebSocket-Version must be 13";
  }
  return null;
}

/**
 * The part of Hono's Context that the runtimes' upgraders read, so an
 * upgrade can skip Hono's routing.
 */
export interface UpgradeContext {
  /** What the runtime passed with the request (Bun: its server). */
  env: unknown;
  /** The request. */
  req: {
    raw: Request;
    url: string;
    header(name: string): string | undefined;
  };
}

/** What one subscriber asked for: resume options and format. */
export type SubscriberOptions = SubscribeOptions & {
  format: "raw" | "json";
  /** When the subscriber's token expires (ms since the epoch), or null. */
  expiresAtMs?: number | null;
};

/** The part of Hono's WSContext used here. */
interface SocketContext {
  raw?: unknown;
  close(code?: number, reason?: string): void;
}

// The WebSocket event handlers of one subscriber, as a class: one object per
// connection, its methods on the prototype (Hono calls them as methods).
// The hooks and the support are shared; what the subscriber asked for is
// let go once it is subscribed.
class SubscriberEvents {
  #topic: Topic;
  #support: WebSocketSupport;
  #hooks: UpgradeHooks;
  #asked: SubscriberOptions | undefined;
  #subscription: Subscription | undefined;
  #sink: WebSocketSink | undefined;

  constructor(
    topic: Topic,
    support: WebSocketSupport,
    hooks: UpgradeHooks,
    asked: SubscriberOptions,
  ) {
    this.#topic = topic;
    this.#support = support;
    this.#hooks = hooks;
    this.#asked = asked;
  }

  onOpen(_event: Event, ws: SocketContext): void {
    const asked = this.#asked;
    if (asked === undefined) return;
    this.#asked = undefined;
    const sink = this.#support.createSink(ws.raw, asked.format);
    let subscription: Subscription;
    try {
      subscription = this.#topic.subscribe(sink, asked);
    } catch (error) {
      ws.close(
        1013,
        error instanceof Error
          ? error.message.slice(0, 120)
          : "try again later",
      );
      return;
    }
    this.#subscription = subscription;
    this.#sink = sink;
    this.#hooks.onOpen(sink, subscription, asked.expiresAtMs ?? null);
  }

  onMessage(event: MessageEvent, ws: SocketContext): void {
    const data: unknown = event.data;
    const size = typeof data === "string"
      ? data.length
      : data instanceof ArrayBuffer
      ? data.byteLength
      : data instanceof Blob
      ? data.size
      : 0;
    if (size > this.#hooks.maxFrameBytes) ws.close(1009, "frame too large");
  }

  onClose(): void {
    this.#end();
  }

  onError(): void {
    this.#end();
  }

  #end(): void {
    if (this.#subscription === undefined || this.#sink === undefined) return;
    this.#subscription.cancel();
    this.#hooks.onClose(this.#sink);
    this.#subscription = undefined;
  }
}

/**
 * Upgrades the request and subscribes the socket to `topic`. Frames from
 * the subscriber are not events: they are ignored, and an oversized one
 * closes the socket with 1009.
 *
 * @param c The request and the runtime's env, as a Hono context has them.
 * @param topic The topic.
 * @param support The runtime's WebSocket support.
 * @param hooks Hooks and limits, shared by every subscriber.
 * @param asked What this subscriber asked for: resume options and format.
 * @returns The upgrade response.
 */
export function upgradeSubscriber(
  c: UpgradeContext,
  topic: Topic,
  support: WebSocketSupport,
  hooks: UpgradeHooks,
  asked: SubscriberOptions,
): Response | Promise<Response> {
  // Every runtime's upgrader takes Hono's (c, events, options); the support
  // object types it loosely so each runtime's raw socket type fits. Ours
  // (Node, Bun) answer at once, hono/deno's with a promise.
  const upgrade = support.upgradeWebSocket as unknown as (
    c: UpgradeContext,
    events: SubscriberEvents,
    options: unknown,
  ) => Response | Promise<Response>;
  const events = new SubscriberEvents(topic, support, hooks, asked);
  return upgrade(c, events, support.upgradeOptions?.());
}
