/**
 * Publishes the load client's events by POST over keep-alive connections
 * (see poster.ts).
 *
 * @module
 */

import type { Poster } from "./poster.ts";

/** What a publish run reports. */
export interface PublishReport {
  /** `performance.now()` when the first POST was sent. */
  firstSendMs: number;
  /** POSTs that failed or did not answer 2xx. */
  errors: number;
  firstError: string;
}

/** Builds a payload of exactly `size` bytes: `<seq> <sentMs> ` padded with `x`. */
export function payload(seq: number, sentMs: number, size: number): string {
  return `${seq} ${sentMs.toFixed(3)} `.padEnd(size, "x");
}

/** Builds a warm-up payload of `size` bytes. */
export function warmupPayload(n: number, size: number): string {
  return `w${n} `.padEnd(size, "x");
}

function record(report: PublishReport, error: string): void {
  if (error === "") return;
  report.errors++;
  if (report.firstError === "") report.firstError = error;
}

/**
 * POSTs `count` bodies as fast as the server answers, with `inflight` in
 * flight; `bodyOf(n)` builds the n-th when it is sent, `onAnswer` gets each
 * answer's error ("" for 2xx).
 */
export async function postMany(
  poster: Poster,
  count: number,
  inflight: number,
  bodyOf: (n: number) => string,
  onAnswer: (error: string) => void,
): Promise<void> {
  let next = 0;
  async function worker(): Promise<void> {
    while (next < count) onAnswer(await poster.post(bodyOf(next++)));
  }
  const workers = [];
  for (let i = 0; i < Math.min(inflight, count); i++) workers.push(worker());
  await Promise.all(workers);
}

/**
 * Publishes `events` events as fast as the server accepts them, with
 * `inflight` POSTs in flight. Each payload carries its send time, which is
 * also noted in `sentMs[seq]`.
 */
export async function publishFlat(
  poster: Poster,
  options: {
    events: number;
    inflight: number;
    size: number;
    sentMs: Float64Array;
  },
): Promise<PublishReport> {
  const report: PublishReport = {
    firstSendMs: performance.now(),
    errors: 0,
    firstError: "",
  };
  await postMany(poster, options.events, options.inflight, (seq) => {
    const sentMs = performance.now();
    options.sentMs[seq] = sentMs;
    return payload(seq, sentMs, options.size);
  }, (error) => record(report, error));
  return report;
}

/**
 * Publishes `events` events at `rate` per second. Each payload carries the
 * time it was scheduled for, not the time it left, so a server that answers
 * late is charged for the wait (no coordinated omission).
 */
export function publishSteady(
  poster: Poster,
  options: {
    events: number;
    rate: number;
    inflight: number;
    size: number;
    sentMs: Float64Array;
  },
): Promise<PublishReport> {
  const start = performance.now();
  const report: PublishReport = {
    firstSendMs: start,
    errors: 0,
    firstError: "",
  };
  const intervalMs = 1000 / options.rate;
  let next = 0;
  let inflight = 0;
  if (options.events === 0) return Promise.resolve(report);
  return new Promise((resolve) => {
    function onAnswer(error: string): void {
      inflight--;
      record(report, error);
      if (next === options.events && inflight === 0) {
        clearInterval(timer);
        resolve(report);
      }
    }
    function tick(): void {
      const now = performance.now();
      while (next < options.events && inflight < options.inflight) {
        const due = start + next * intervalMs;
        if (due > now) break;
        inflight++;
        options.sentMs[next] = due;
        poster.post(payload(next++, due, options.size)).then(onAnswer);
      }
    }
    const timer = setInterval(tick, 1);
    tick();
  });
}
