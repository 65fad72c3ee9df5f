/**
 * Server-Sent Events subscriptions, as a web `Response` whose body is fed by
 * the hub. Runtime-agnostic.
 *
 * @module
 */

import { formatSseGap, type GapNotice, type StreamEvent } from "../event.ts";
import type {
  ChannelSend,
  SubscribeOptions,
  Subscription,
  Topic,
} from "../hub.ts";
import { TurnBatch } from "./_turn_batch.ts";
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
  onOpen?(sink: WebSocketSink, subscription: Subscription): void;
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
  /**
   * Joins the channel of caught-up subscribers of one path (see
   * `Sink.join`); optional.
   */
  join?(channel: string): ChannelSend | undefined;
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
  const subscription = topic.subscribe(sink, options);
  sink.subscription = subscription;
  options.onOpen?.(sink, subscription);
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

  join(channel: string): ChannelSend | undefined {
    return this.#closed ? undefined : this.#output.join?.(channel);
  }

  notify(notice: GapNotice): void {
    if (!this.#closed) this.#output.write(ENCODER.encode(formatSseGap(notice)));
  }

  heartbeat(): void {
    if (!this.#closed) this.#output.write(HEARTBEAT);
  }

  expire(reason: string): void {
    if (this.#closed) return;
    this.#output.write(
      ENCODER.encode(
        `event: expired\ndata: ${JSON.stringify({ reason })}\n\n`,
      ),
    );
    this.close();
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

// Every SSE output's bytes of one turn, joined (see TurnBatch).
const outputs = new TurnBatch<BatchedOutput>({
  ready: (output) => output.canSend(),
  send: (output, chunk) => output.send(chunk),
});

// The hub sends SSE channels an event's encoded `sse` bytes.
const sseBytes = (frame: string | Uint8Array) => frame as Uint8Array;

/**
 * The batching every SSE output shares: what is written in one turn leaves
 * as one chunk after the turn's I/O callbacks, caught-up subscribers
 * sharing it (see TurnBatch). A runtime's output extends it and overrides
 * `canSend`, `send` and `sentQueue`, and adds the rest of
 * {@link SseOutput}.
 */
export class BatchedOutput {
  #ended = false;

  /** Queues bytes; they leave, joined, after this turn. */
  write(chunk: Uint8Array): void {
    if (!this.#ended) outputs.add(this, chunk);
  }

  /**
   * Joins the channel `name`: what the hub sends it reaches this output
   * with one join per turn for all members.
   */
  join(name: string): ChannelSend | undefined {
    return this.#ended ? undefined : outputs.joinChannel(this, name, sseBytes);
  }

  /** Sends what this turn wrote, as one chunk, if it can be sent now. */
  flush(): void {
    if (!this.#ended) outputs.flush(this);
  }

  /** Bytes written and not yet sent, here and in the runtime. */
  queued(): number {
    return outputs.queued(this) + this.sentQueue();
  }

  /** Stops taking bytes (after a last flush when `flushFirst`). */
  stop(flushFirst: boolean): void {
    if (flushFirst) this.flush();
    this.#ended = true;
    outputs.drop(this);
  }

  /** True once {@link stop} was called. */
  get stopped(): boolean {
    return this.#ended;
  }

  /** For subclasses: whether a chunk can be handed on now. */
  canSend(): boolean {
    return true;
  }

  /** For subclasses: hands one chunk on to the runtime. */
  send(_chunk: Uint8Array): void {}

  /** For subclasses: bytes handed on and not yet written to the network. */
  sentQueue(): number {
    return 0;
  }
}

/** The portable output: a web ReadableStream counted in bytes. */
class StreamOutput extends BatchedOutput implements SseOutput {
  #controller!: ReadableStreamDefaultController<Uint8Array>;
  #onClose: () => void = () => {};
  #body: ReadableStream<Uint8Array>;

  constructor() {
    super();
    this.#body = new ReadableStream<Uint8Array>({
      start: (controller) => {
        this.#controller = controller;
      },
      cancel: () => {
        this.stop(false);
        this.#onClose();
      },
    }, { highWaterMark: 0, size: (chunk) => chunk.byteLength });
  }

  override send(chunk: Uint8Array): void {
    try {
      this.#controller.enqueue(chunk);
    } catch {
      // Closed by the runtime: its cancel tells us.
    }
  }

  override sentQueue(): number {
    return -(this.#controller.desiredSize ?? 0);
  }

  end(): void {
    this.stop(true);
    try {
      this.#controller.close();
    } catch {
      // Already errored by the runtime: nothing to flush.
    }
  }

  onClose(listener: () => void): void {
    this.#onClose = listener;
  }

  response(): Response {
    return new Response(this.#body, { status: 200, headers: SSE_HEADERS });
  }
}

function createStreamOutput(): SseOutput {
  return new StreamOutput();
}
