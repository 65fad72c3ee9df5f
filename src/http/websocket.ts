/**
 * WebSocket subscriptions through Hono's upgrader for the runtime.
 *
 * @module
 */

import type { Context } from "hono";
import type { UpgradeWebSocket } from "hono/ws";
import type { SubscribeOptions, Subscription, Topic } from "../hub.ts";
import type { WebSocketSink, WebSocketSupport } from "./types.ts";

/** Hooks of {@link upgradeSubscriber}. */
export interface UpgradeHooks {
  /** The sink exists and is subscribed. */
  onOpen(sink: WebSocketSink): void;
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

/** What a subscriber's upgrade needs: resume options, format and hooks. */
export type SubscriberOptions = SubscribeOptions & UpgradeHooks & {
  format: "raw" | "json";
};

/** The part of Hono's WSContext used here. */
interface SocketContext {
  raw?: unknown;
  close(code?: number, reason?: string): void;
}

// The WebSocket event handlers of one subscriber, as a class: one object per
// connection, its methods on the prototype (Hono calls them as methods).
class SubscriberEvents {
  #topic: Topic;
  #support: WebSocketSupport;
  #options: SubscriberOptions;
  #subscription: Subscription | undefined;
  #sink: WebSocketSink | undefined;

  constructor(
    topic: Topic,
    support: WebSocketSupport,
    options: SubscriberOptions,
  ) {
    this.#topic = topic;
    this.#support = support;
    this.#options = options;
  }

  onOpen(_event: Event, ws: SocketContext): void {
    const sink = this.#support.createSink(ws.raw, this.#options.format);
    try {
      this.#subscription = this.#topic.subscribe(sink, this.#options);
    } catch (error) {
      ws.close(
        1013,
        error instanceof Error
          ? error.message.slice(0, 120)
          : "try again later",
      );
      return;
    }
    this.#sink = sink;
    this.#options.onOpen(sink);
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
    if (size > this.#options.maxFrameBytes) ws.close(1009, "frame too large");
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
    this.#options.onClose(this.#sink);
    this.#subscription = undefined;
  }
}

/**
 * Upgrades the request and subscribes the socket to `topic`. Frames from
 * the subscriber are not events: they are ignored, and an oversized one
 * closes the socket with 1009.
 *
 * @param c The Hono context.
 * @param topic The topic.
 * @param support The runtime's WebSocket support.
 * @param options Resume options, the format, and hooks.
 * @returns The upgrade response.
 */
export function upgradeSubscriber(
  c: Context,
  topic: Topic,
  support: WebSocketSupport,
  options: SubscriberOptions,
): Promise<Response> {
  // Every runtime's upgrader has Hono's shape; the support object types it
  // loosely so each runtime's raw socket type fits.
  const upgrade = support.upgradeWebSocket as unknown as UpgradeWebSocket;
  const events = new SubscriberEvents(topic, support, options);
  return upgrade(c, events, support.upgradeOptions?.());
}
