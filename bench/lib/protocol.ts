/**
 * The messages exchanged between `bench/run.ts` and the load client
 * (`bench/native/client.c`, or `bench/client.ts`), which runs as a separate
 * process.
 *
 * The runner passes a {@link ClientConfig} as JSON in the first argument. The
 * client connects every subscriber, warms them up, then prints one
 * {@link ReadyMessage} line on stdout and waits for a `go` line on stdin (the
 * runner reads the server's memory in between). It then publishes and prints
 * one {@link ResultMessage} line.
 *
 * @module
 */

/** How a subscriber connects. */
export type Transport = "ws" | "sse";

/** A set of subscribers on one URL. */
export interface SubscriberGroup {
  /** Name printed in results, e.g. `producer` or `relay-1`. */
  name: string;
  /** `http://127.0.0.1:PORT/events`; the client swaps the scheme for WebSocket. */
  url: string;
  /** How many subscribers to open. */
  count: number;
  /** WebSocket or Server-Sent Events. */
  transport: Transport;
}

/** What the load client does. */
export interface ClientConfig {
  /** Subscribers to open before publishing. */
  groups: SubscriberGroup[];
  /** Where to POST events. */
  publishUrl: string;
  /** Number of events to publish (0 for the idle scenario). */
  events: number;
  /** Events per second; 0 publishes as fast as the server accepts them. */
  rate: number;
  /** Maximum POST requests (or WebSocket publishes) in flight. */
  inflight: number;
  /**
   * How events are published: one POST each (`post`), or as messages on
   * one publisher WebSocket (`ws`, the URL with `?publish`; the native
   * client only). @default {"post"}
   */
  publishVia?: "post" | "ws";
  /** Size of each published body in bytes. */
  payloadBytes: number;
  /** Maximum connection attempts in flight while connecting. */
  connectConcurrency: number;
  /** Stop waiting for deliveries after this long without any. */
  quietMs: number;
  /** Hard limit for the whole publish phase. */
  deadlineMs: number;
  /**
   * `raw` speaks WebSocket and SSE over `node:net` and parses bytes (fast);
   * `web` uses the runtime's `WebSocket` and `fetch` (a cross-check).
   */
  subscriberKind: SubscriberKind;
}

/** How the load client implements its subscribers. */
export type SubscriberKind = "raw" | "web";

/** Printed once every subscriber is connected and has received a warm-up event. */
export interface ReadyMessage {
  type: "ready";
  connected: number;
  connectMs: number;
  warmupMs: number;
}

/** Latency figures in milliseconds, from publish-send to receive. */
export interface LatencySummary {
  p50: number;
  p99: number;
  max: number;
}

/** Deliveries seen by one subscriber group. */
export interface GroupResult {
  name: string;
  subscribers: number;
  /** Messages received, duplicates included. */
  received: number;
  /** Expected deliveries that never arrived (subscribers x events - unique). */
  lost: number;
  /** Messages received more than once by the same subscriber. */
  duplicated: number;
  latency: LatencySummary;
}

/** Printed once at the end of a client run. */
export interface ResultMessage {
  type: "result";
  groups: GroupResult[];
  /** Events whose POST did not answer 2xx. */
  publishErrors: number;
  /** Subscribers closed or failed before the end of the run. */
  subscriberErrors: number;
  /** Seconds from the first POST to the last delivery. */
  durationS: number;
  /** Deliveries (all groups) per second over `durationS`. */
  deliveriesPerS: number;
  /** Client CPU use during the publish phase, in percent of one core. */
  clientCpuPct: number;
  /** Whether the deadline cut the run short. */
  timedOut: boolean;
}

/** Printed instead of a result when the client cannot run. */
export interface ErrorMessage {
  type: "error";
  message: string;
}

/** Any line the client prints. */
export type ClientMessage = ReadyMessage | ResultMessage | ErrorMessage;
