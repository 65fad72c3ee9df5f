/**
 * Bookkeeping of deliveries for the load client: per subscriber which
 * sequence numbers it has seen (to count lost and duplicated messages), per
 * group the latency of every first delivery.
 *
 * A payload is `<seq> <sendTimeMs> ` padded to its size, where sendTimeMs is
 * `performance.now()` of the publishing code in the same process. The
 * publisher also notes each send time in {@link Receiver.sentMs}, so a
 * delivery only has its sequence number parsed (parsing the time of every
 * one of millions of deliveries was the load client's largest cost).
 * Warm-up payloads start with `w`: they mark the subscriber as warm and
 * are counted, nothing more.
 *
 * @module
 */

import type { GroupResult, SubscriberGroup } from "./protocol.ts";
import { summarizeLatency } from "./stats.ts";

const CHAR_W = 119;
const CHAR_SPACE = 32;

/** Deliveries of one subscriber group. */
export interface GroupTally {
  spec: SubscriberGroup;
  latencies: Float32Array;
  samples: number;
  received: number;
  duplicated: number;
}

/** One subscriber's state. */
export interface SubscriberTally {
  group: GroupTally;
  seen: Uint8Array;
  warm: boolean;
}

/** Counts across all groups. */
export interface Receiver {
  groups: GroupTally[];
  events: number;
  expected: number;
  unique: number;
  warmed: number;
  /** Warm-up payloads received, by all subscribers. */
  warmups: number;
  unexpected: number;
  lastReceiveMs: number;
  /** When each event was sent (`performance.now()`), set by the publisher. */
  sentMs: Float64Array;
}

/**
 * Creates the bookkeeping for `events` events over `groups`.
 *
 * @param groups The subscriber groups.
 * @param events How many events will be published.
 * @returns An empty receiver.
 */
export function createReceiver(
  groups: SubscriberGroup[],
  events: number,
): Receiver {
  return {
    groups: groups.map((spec) => ({
      spec,
      latencies: new Float32Array(spec.count * events),
      samples: 0,
      received: 0,
      duplicated: 0,
    })),
    events,
    expected: groups.reduce((sum, g) => sum + g.count, 0) * events,
    unique: 0,
    warmed: 0,
    warmups: 0,
    unexpected: 0,
    lastReceiveMs: 0,
    sentMs: new Float64Array(events),
  };
}

/**
 * Creates the state of one subscriber of `group`.
 *
 * @param receiver The receiver the group belongs to.
 * @param group The subscriber's group.
 * @returns A subscriber that has seen nothing.
 */
export function createSubscriberTally(
  receiver: Receiver,
  group: GroupTally,
): SubscriberTally {
  return { group, seen: new Uint8Array(receiver.events), warm: false };
}

/**
 * Records one received payload given as text (web API client).
 *
 * @param receiver The receiver.
 * @param subscriber Who received it.
 * @param payload The frame text or SSE data.
 */
export function receive(
  receiver: Receiver,
  subscriber: SubscriberTally,
  payload: string,
): void {
  const now = performance.now();
  if (payload.charCodeAt(0) === CHAR_W) {
    warm(receiver, subscriber);
    return;
  }
  const space = payload.indexOf(" ");
  const seq = space > 0 ? Number(payload.substring(0, space)) : NaN;
  record(receiver, subscriber, seq, now);
}

/**
 * Records one received payload given as bytes `bytes[start, end)` (raw
 * client), without decoding it to a string.
 *
 * @param receiver The receiver.
 * @param subscriber Who received it.
 * @param bytes Buffer holding the payload.
 * @param start Offset of the payload.
 * @param end Offset just past the payload.
 * @param now `performance.now()` when the bytes arrived.
 */
export function receiveBytes(
  receiver: Receiver,
  subscriber: SubscriberTally,
  bytes: Uint8Array,
  start: number,
  end: number,
  now: number,
): void {
  if (bytes[start] === CHAR_W) {
    warm(receiver, subscriber);
    return;
  }
  let i = start;
  let seq = 0;
  for (; i < end && bytes[i] !== CHAR_SPACE; i++) {
    seq = seq * 10 + digit(bytes[i]);
  }
  // No digits, or no space after them: not one of our payloads.
  if (i === start || i === end) seq = NaN;
  record(receiver, subscriber, seq, now);
}

/** Returns the value of an ASCII digit, or NaN (which poisons the number). */
function digit(byte: number): number {
  return byte >= 48 && byte <= 57 ? byte - 48 : NaN;
}

function warm(receiver: Receiver, subscriber: SubscriberTally): void {
  receiver.warmups++;
  if (subscriber.warm) return;
  subscriber.warm = true;
  receiver.warmed++;
}

function record(
  receiver: Receiver,
  subscriber: SubscriberTally,
  seq: number,
  now: number,
): void {
  const group = subscriber.group;
  group.received++;
  receiver.lastReceiveMs = now;
  if (!(seq >= 0 && seq < receiver.events && Number.isInteger(seq))) {
    receiver.unexpected++;
    return;
  }
  if (subscriber.seen[seq] === 1) {
    group.duplicated++;
    return;
  }
  subscriber.seen[seq] = 1;
  group.latencies[group.samples++] = now - receiver.sentMs[seq];
  receiver.unique++;
}

/**
 * Summarizes every group.
 *
 * @param receiver The receiver.
 * @returns One result per group.
 */
export function summarizeGroups(receiver: Receiver): GroupResult[] {
  return receiver.groups.map((group) => ({
    name: group.spec.name,
    subscribers: group.spec.count,
    received: group.received,
    lost: group.spec.count * receiver.events - group.samples,
    duplicated: group.duplicated,
    latency: summarizeLatency(group.latencies, group.samples),
  }));
}
