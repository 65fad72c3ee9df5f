/**
 * The Server-Sent Events half of the Deno and Bun baselines (web streams
 * only): a naive loop with one enqueue per stream per event.
 *
 * @module
 */

/** Subscribes SSE streams and publishes a body to every one of them. */
export interface SseBroadcast {
  /** Sends `body` as one `data:` event to every open stream. */
  publish(body: string): void;
  /** Answers a subscription: a `text/event-stream` response kept open. */
  subscribe(): Response;
}

/** Creates an {@link SseBroadcast} with no streams yet. */
export function createSseBroadcast(): SseBroadcast {
  const streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
  const encoder = new TextEncoder();

  function publish(body: string): void {
    if (streams.size === 0) return;
    const frame = encoder.encode(
      `data: ${body.split("\n").join("\ndata: ")}\n\n`,
    );
    for (const controller of streams) controller.enqueue(frame);
  }

  function subscribe(): Response {
    let own: ReadableStreamDefaultController<Uint8Array> | undefined;
    const body = new ReadableStream<Uint8Array>({
      start(controller) {
        own = controller;
        streams.add(controller);
        controller.enqueue(encoder.encode(": subscribed\n\n"));
      },
      cancel() {
        if (own) streams.delete(own);
      },
    });
    return new Response(body, {
      headers: {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
      },
    });
  }

  return { publish, subscribe };
}
