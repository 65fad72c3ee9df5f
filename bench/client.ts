/**
 * The benchmark's load client in TypeScript, run as its own process by
 * `bench/run.ts --client bun` (or deno, node). The default client is the
 * native one, bench/native/client.c, which does the same work at less CPU
 * per delivery. It takes a {@link ClientConfig} as JSON in its first
 * argument.
 *
 * 1. Opens every subscriber, then publishes warm-up events until each
 *    subscriber has received one (so the server has registered them all),
 *    then, unless the scenario publishes nothing, {@link WARMUP_EVENTS}
 *    more as fast as accepted, and waits for their deliveries: the
 *    servers' JIT compilers have then seen the hot path, as in a service
 *    that has been running (the measured events are only 2,000).
 * 2. Prints a `ready` line and waits for a `go` line on stdin.
 * 3. Publishes the events, waits for the deliveries (until all arrived, or
 *    none for `quietMs`, or `deadlineMs`), prints a `result` line and exits.
 *
 * @module
 */

import process from "node:process";
import type {
  ClientConfig,
  ClientMessage,
  ResultMessage,
} from "./lib/protocol.ts";
import { createReceiver, summarizeGroups } from "./lib/receiver.ts";
import type { Receiver } from "./lib/receiver.ts";
import { openSubscribers } from "./lib/subscribers.ts";
import type { SubscriberSet } from "./lib/subscribers.ts";
import {
  postMany,
  publishFlat,
  publishSteady,
  warmupPayload,
} from "./lib/publisher.ts";
import { createPoster } from "./lib/poster.ts";
import type { Poster } from "./lib/poster.ts";
import type { PublishReport } from "./lib/publisher.ts";

const WARMUP_INTERVAL_MS = 20;
/** Events published to warm up before measuring (scenarios that publish). */
export const WARMUP_EVENTS = 500;
const WARMUP_TIMEOUT_MS = 60_000;
const POLL_MS = 20;

function send(message: ClientMessage): Promise<void> {
  return new Promise((resolve) =>
    process.stdout.write(`${JSON.stringify(message)}\n`, () => resolve())
  );
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

function readLine(): Promise<string> {
  return new Promise((resolve) => {
    let buffer = "";
    function onData(chunk: string): void {
      buffer += chunk;
      const end = buffer.indexOf("\n");
      if (end === -1) return;
      process.stdin.off("data", onData);
      process.stdin.pause();
      resolve(buffer.slice(0, end));
    }
    process.stdin.setEncoding("utf8");
    process.stdin.on("data", onData);
  });
}

async function warmUp(
  config: ClientConfig,
  poster: Poster,
  receiver: Receiver,
  subscribers: number,
): Promise<void> {
  const deadline = performance.now() + WARMUP_TIMEOUT_MS;
  for (let n = 0; receiver.warmed < subscribers; n++) {
    if (performance.now() > deadline) {
      throw new Error(
        `only ${receiver.warmed} of ${subscribers} subscribers got a warm-up event`,
      );
    }
    const error = await poster.post(warmupPayload(n, config.payloadBytes));
    if (error !== "") throw new Error(`warm-up: ${error}`);
    await sleep(WARMUP_INTERVAL_MS);
  }
  if (config.events === 0) return;
  const expected = receiver.warmups + WARMUP_EVENTS * subscribers;
  await postMany(
    poster,
    WARMUP_EVENTS,
    config.inflight,
    (n) => warmupPayload(n, config.payloadBytes),
    (error) => {
      if (error !== "") throw new Error(`warm-up: ${error}`);
    },
  );
  while (receiver.warmups < expected) {
    if (performance.now() > deadline) {
      throw new Error(
        `only ${receiver.warmups} of ${expected} warm-up deliveries arrived`,
      );
    }
    await sleep(POLL_MS);
  }
}

async function awaitDeliveries(
  config: ClientConfig,
  receiver: Receiver,
  start: number,
): Promise<boolean> {
  const deadline = start + config.deadlineMs;
  for (;;) {
    if (receiver.unique >= receiver.expected) return false;
    const now = performance.now();
    if (now > deadline) return true;
    if (now - Math.max(receiver.lastReceiveMs, start) > config.quietMs) {
      return false;
    }
    await sleep(POLL_MS);
  }
}

async function measure(
  config: ClientConfig,
  poster: Poster,
  set: SubscriberSet,
): Promise<ResultMessage> {
  const receiver = set.receiver;
  const cpuBefore = process.cpuUsage();
  const start = performance.now();
  const publishing: Promise<PublishReport> = config.rate > 0
    ? publishSteady(poster, {
      events: config.events,
      rate: config.rate,
      inflight: config.inflight,
      size: config.payloadBytes,
      sentMs: receiver.sentMs,
    })
    : publishFlat(poster, {
      events: config.events,
      inflight: config.inflight,
      size: config.payloadBytes,
      sentMs: receiver.sentMs,
    });
  const report = await publishing;
  const timedOut = config.events > 0 &&
    await awaitDeliveries(config, receiver, start);
  const end = performance.now();
  const cpu = process.cpuUsage(cpuBefore);
  set.closing = true;
  const durationMs = Math.max(receiver.lastReceiveMs - report.firstSendMs, 0);
  if (report.firstError !== "") {
    console.error(
      `client: ${report.errors} publish errors, first: ${report.firstError}`,
    );
  }
  if (set.firstError !== "") {
    console.error(
      `client: ${set.errors} subscriber errors, first: ${set.firstError}`,
    );
  }
  return {
    type: "result",
    groups: summarizeGroups(receiver),
    publishErrors: report.errors,
    subscriberErrors: set.errors + receiver.unexpected,
    durationS: durationMs / 1000,
    deliveriesPerS: durationMs > 0 ? receiver.unique / (durationMs / 1000) : 0,
    clientCpuPct: ((cpu.user + cpu.system) / 1000) / (end - start) * 100,
    timedOut,
  };
}

async function main(args: string[]): Promise<void> {
  const config = JSON.parse(args[0]) as ClientConfig;
  if ((config.publishVia ?? "post") !== "post") {
    throw new Error(
      `Cannot publish via "${config.publishVia}": this client only POSTs; the native client (bench/native/client.c) publishes over a WebSocket`,
    );
  }
  const receiver = createReceiver(config.groups, config.events);
  const set: SubscriberSet = {
    receiver,
    open: [],
    errors: 0,
    firstError: "",
    closing: false,
  };
  const subscribers = config.groups.reduce((sum, g) => sum + g.count, 0);
  const connectStart = performance.now();
  await openSubscribers(set, {
    concurrency: config.connectConcurrency,
    kind: config.subscriberKind,
  });
  const warmStart = performance.now();
  const poster = createPoster(config.publishUrl);
  await warmUp(config, poster, receiver, subscribers);
  await send({
    type: "ready",
    connected: set.open.length,
    connectMs: warmStart - connectStart,
    warmupMs: performance.now() - warmStart,
  });
  if ((await readLine()) !== "go") throw new Error("expected go on stdin");
  const result = await measure(config, poster, set);
  poster.close();
  await send(result);
  for (const subscriber of set.open) subscriber.close();
}

if (import.meta.main) {
  try {
    await main(process.argv.slice(2));
    process.exit(0);
  } catch (error) {
    await send({
      type: "error",
      message: error instanceof Error ? error.message : String(error),
    });
    process.exit(1);
  }
}
