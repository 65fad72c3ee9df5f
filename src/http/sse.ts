/**
 * Server-Sent Events subscriptions, as a web `Response` whose body is fed by
 * the hub. Runtime-agnostic.
 *
 * @module
 */

import { formatSseGap, type GapNotice, type StreamEvent } from "../event.ts";
import type { SubscribeOptions, Subscription, Topic } from "../hub.ts";
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
  /**
   * A runtime's direct output for this request (Node: the response object),
   * used instead of a web ReadableStream where the runtime offers one.
   */
  output?: SseOutput;
}

/** Where an SSE subscriber's bytes go. */
export interface SseOutput {
  /** Queues bytes without waiting. */
  write(chunk: Uint8Array): void;
  /** Bytes queued and not yet written to the network. */
  queued(): number;
  /** Ends the response. */
  end(): void;
  /** Calls `listener` once when the client goes away. */
  onClose(listener: () => void): void;
  /** What the handler returns to the framework. */
  response(): Response;
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
  const output = options.output ?? createStreamOutput();
  const sink = new SseSink(output, options);
  output.onClose(() => sink.finish());
  output.write(
    ENCODER.encode(`retry: ${options.retryMs ?? 1000}\n: connected\n\n`),
  );
  sink.subscription = topic.subscribe(sink, options);
  options.onOpen?.(sink);
  return output.response();
}

// One object per subscriber, its methods on the prototype.
class SseSink implements WebSocketSink {
  readonly format = "sse" as const;
  readonly transport = "sse" as const;
  subscription: Subscription | undefined;
  #output: SseOutput;
  #options: SseResponseOptions;
  #closed = false;

  constructor(output: SseOutput, options: SseResponseOptions) {
    this.#output = output;
    this.#options = options;
  }

  send(event: StreamEvent): number {
    this.#output.write(event.sse);
    return this.#output.queued();
  }

  queued(): number {
    return this.#output.queued();
  }

  notify(notice: GapNotice): void {
    if (!this.#closed) this.#output.write(ENCODER.encode(formatSseGap(notice)));
  }

  heartbeat(): void {
    if (!this.#closed) this.#output.write(HEARTBEAT);
  }

  close(): void {
    if (this.#closed) return;
    this.finish();
    this.#output.end();
  }

  /** The client left or we closed: stop delivery once. */
  finish(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.subscription?.cancel();
    this.#options.onClose?.(this);
  }
}

/** The portable output: a web ReadableStream counted in bytes. */
function createStreamOutput(): SseOutput {
  let controller!: ReadableStreamDefaultController<Uint8Array>;
  let onClose = (): void => {};
  const body = new ReadableStream<Uint8Array>({
    start(c) {
      controller = c;
    },
    cancel: () => onClose(),
  }, { highWaterMark: 0, size: (chunk) => chunk.byteLength });
  return {
    write: (chunk) => controller.enqueue(chunk),
    queued: () => -(controller.desiredSize ?? 0),
    end() {
      try {
        controller.close();
      } catch {
        // Already errored by the runtime: nothing to flush.
      }
    },
    onClose(listener) {
      onClose = listener;
    },
    response: () => new Response(body, { status: 200, headers: SSE_HEADERS }),
  };
}
