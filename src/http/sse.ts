/**
 * Server-Sent Events subscriptions, as a web `Response` whose body is fed by
 * the hub. Runtime-agnostic.
 *
 * @module
 */

import { formatSseGap, type GapNotice, type StreamEvent } from "../event.ts";
import type { SubscribeOptions, Topic } from "../hub.ts";
import type { WebSocketSink } from "./types.ts";

const ENCODER = new TextEncoder();
const HEARTBEAT = ENCODER.encode(": heartbeat\n\n");

/** Headers of every SSE response: no caching, no proxy buffering. */
export const SSE_HEADERS: Readonly<Record<string, string>> = {
  "Content-Type": "text/event-stream; charset=utf-8",
  "Cache-Control": "no-cache, no-transform",
  "X-Accel-Buffering": "no",
};

/** Options of {@link createSseResponse}. */
export interface SseResponseOptions extends SubscribeOptions {
  /** Reconnection delay hint sent as `retry:`. @default {1000} */
  retryMs?: number;
  /** Called once the stream ends, for bookkeeping. */
  onClose?(sink: WebSocketSink): void;
  /** Called once the sink exists, so the caller can send it heartbeats. */
  onOpen?(sink: WebSocketSink): void;
}

/**
 * Subscribes to `topic` and streams it as Server-Sent Events.
 *
 * @param topic The topic.
 * @param options Resume and hooks.
 * @returns The response.
 * @throws {RangeError} When the instance is at its subscriber limit.
 */
export function createSseResponse(
  topic: Topic,
  options: SseResponseOptions = {},
): Response {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let closed = false;
  let cancel = (): void => {};
  const finish = (): void => {
    if (closed) return;
    closed = true;
    cancel();
    options.onClose?.(sink);
  };
  const sink: WebSocketSink = {
    format: "sse",
    transport: "sse",
    send(event: StreamEvent): number {
      controller.enqueue(event.sse);
      return -(controller.desiredSize ?? 0);
    },
    queued: () => -(controller.desiredSize ?? 0),
    notify(notice: GapNotice) {
      if (!closed) controller.enqueue(ENCODER.encode(formatSseGap(notice)));
    },
    heartbeat() {
      if (!closed) controller.enqueue(HEARTBEAT);
    },
    close() {
      if (closed) return;
      finish();
      try {
        controller.close();
      } catch {
        // Already errored by the runtime: nothing to flush.
      }
    },
  };
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
      c.enqueue(
        ENCODER.encode(`retry: ${options.retryMs ?? 1000}\n: connected\n\n`),
      );
    },
    cancel: finish,
  }, { highWaterMark: 0, size: (chunk) => chunk.byteLength });
  const subscription = topic.subscribe(sink, options);
  cancel = () => subscription.cancel();
  options.onOpen?.(sink);
  return new Response(body, { status: 200, headers: SSE_HEADERS });
}
