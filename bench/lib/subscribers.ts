/**
 * Opens the load client's subscribers, over WebSocket or Server-Sent Events
 * (fetch streaming), using only web standard APIs so the client runs on Bun,
 * Deno or Node.
 *
 * @module
 */

import type { Receiver, SubscriberTally } from "./receiver.ts";
import { createSubscriberTally, receive } from "./receiver.ts";
import { openRawSse, openRawWebSocket } from "./raw.ts";
import type { SubscriberKind } from "./protocol.ts";

/** An open subscriber. */
export interface Subscriber {
  tally: SubscriberTally;
  close(): void;
}

/** Shared state of all subscribers. */
export interface SubscriberSet {
  receiver: Receiver;
  open: Subscriber[];
  /** Subscribers that closed or failed while the run was going on. */
  errors: number;
  /** First error message, for the report. */
  firstError: string;
  /** Set once the run is over: closes are expected from then on. */
  closing: boolean;
}

function fail(set: SubscriberSet, message: string): void {
  if (set.closing) return;
  set.errors++;
  if (set.firstError === "") set.firstError = message;
}

function openWebSocket(
  set: SubscriberSet,
  url: string,
  tally: SubscriberTally,
): Promise<Subscriber> {
  return new Promise((resolve, reject) => {
    const ws = new WebSocket(url.replace(/^http/, "ws"));
    let opened = false;
    ws.onopen = () => {
      opened = true;
      resolve({ tally, close: () => ws.close() });
    };
    ws.onmessage = (event: MessageEvent) => {
      receive(
        set.receiver,
        tally,
        typeof event.data === "string" ? event.data : String(event.data),
      );
    };
    ws.onerror = () => {
      if (!opened) reject(new Error(`WebSocket ${url} failed to open`));
    };
    ws.onclose = (event: CloseEvent) => {
      if (!opened) {
        reject(
          new Error(`WebSocket ${url} closed before opening (${event.code})`),
        );
      } else {fail(
          set,
          `WebSocket closed during the run: ${event.code} ${event.reason}`,
        );}
    };
  });
}

async function readSse(
  set: SubscriberSet,
  tally: SubscriberTally,
  body: ReadableStream<Uint8Array>,
): Promise<void> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let buffer = "";
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += decoder.decode(value, { stream: true });
    let start = 0;
    let end = buffer.indexOf("\n\n", start);
    while (end !== -1) {
      const data = sseData(buffer, start, end);
      if (data !== undefined) receive(set.receiver, tally, data);
      start = end + 2;
      end = buffer.indexOf("\n\n", start);
    }
    buffer = start === buffer.length ? "" : buffer.slice(start);
  }
}

/** Returns the data of the SSE event in `text[start, end)`, or undefined if none. */
function sseData(text: string, start: number, end: number): string | undefined {
  let data: string | undefined;
  let lineStart = start;
  while (lineStart < end) {
    let lineEnd = text.indexOf("\n", lineStart);
    if (lineEnd === -1 || lineEnd > end) lineEnd = end;
    if (text.startsWith("data:", lineStart)) {
      const from = text.charCodeAt(lineStart + 5) === 32
        ? lineStart + 6
        : lineStart + 5;
      const line = text.substring(from, lineEnd);
      data = data === undefined ? line : `${data}\n${line}`;
    }
    lineStart = lineEnd + 1;
  }
  return data;
}

async function openSse(
  set: SubscriberSet,
  url: string,
  tally: SubscriberTally,
): Promise<Subscriber> {
  const abort = new AbortController();
  const response = await fetch(url, {
    headers: { accept: "text/event-stream" },
    signal: abort.signal,
  });
  if (!response.ok || response.body === null) {
    throw new Error(`SSE ${url} answered ${response.status}`);
  }
  readSse(set, tally, response.body).then(
    () => fail(set, "SSE stream ended during the run"),
    (error: unknown) => fail(set, `SSE stream failed during the run: ${error}`),
  );
  return { tally, close: () => abort.abort() };
}

async function openRaw(
  set: SubscriberSet,
  url: string,
  sse: boolean,
  tally: SubscriberTally,
): Promise<Subscriber> {
  const onEnd = (reason: string) => fail(set, `${reason} during the run`);
  const open = sse ? openRawSse : openRawWebSocket;
  return { tally, close: await open(new URL(url), set.receiver, tally, onEnd) };
}

/**
 * Opens every subscriber of every group of `set.receiver`, at most
 * `concurrency` connection attempts at a time.
 *
 * @param set Where to add the subscribers.
 * @param options Maximum attempts in flight, and raw or web subscribers.
 * @returns Resolves once all are open; rejects on the first failure.
 */
export async function openSubscribers(
  set: SubscriberSet,
  options: { concurrency: number; kind: SubscriberKind },
): Promise<void> {
  const concurrency = options.concurrency;
  const pending: { url: string; sse: boolean; tally: SubscriberTally }[] = [];
  for (const group of set.receiver.groups) {
    for (let i = 0; i < group.spec.count; i++) {
      pending.push({
        url: group.spec.url,
        sse: group.spec.transport === "sse",
        tally: createSubscriberTally(set.receiver, group),
      });
    }
  }
  let next = 0;
  async function worker(): Promise<void> {
    while (next < pending.length) {
      const { url, sse, tally } = pending[next++];
      const subscriber = options.kind === "raw"
        ? await openRaw(set, url, sse, tally)
        : sse
        ? await openSse(set, url, tally)
        : await openWebSocket(set, url, tally);
      set.open.push(subscriber);
    }
  }
  const workers = [];
  for (let i = 0; i < Math.min(concurrency, pending.length); i++) {
    workers.push(worker());
  }
  await Promise.all(workers);
}
