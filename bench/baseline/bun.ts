/**
 * Baseline broadcaster for Bun with no framework: `Bun.serve` with its native
 * publish/subscribe (`ws.subscribe()` on open, `server.publish()` per event).
 *
 * `GET /events` with `Upgrade: websocket` subscribes over WebSocket, with
 * `Accept: text/event-stream` over Server-Sent Events (a naive loop, one
 * enqueue per stream per event); `POST /events` publishes the body and
 * answers 202.
 *
 * Usage: `bun bench/baseline/bun.ts [port]` (port 0 picks a free one).
 *
 * @module
 */

import process from "node:process";
import { createSseBroadcast } from "./_sse.ts";

/** The part of Bun's server this file uses (no Bun types under deno check). */
interface BunServer {
  port: number;
  upgrade(request: Request): boolean;
  publish(topic: string, data: string): number;
}

/** The part of Bun's server WebSocket this file uses. */
interface BunSocket {
  subscribe(topic: string): void;
}

/** The part of the `Bun` global this file uses. */
interface BunGlobal {
  serve(options: {
    hostname: string;
    port: number;
    idleTimeout: number;
    fetch(
      request: Request,
      server: BunServer,
    ): Response | undefined | Promise<Response | undefined>;
    websocket: {
      open(ws: BunSocket): void;
      message(ws: BunSocket, message: string | Uint8Array): void;
    };
  }): BunServer;
}

const TOPIC = "events";
const bun = (globalThis as unknown as { Bun: BunGlobal }).Bun;
const sse = createSseBroadcast();

async function handle(
  request: Request,
  server: BunServer,
): Promise<Response | undefined> {
  if (new URL(request.url).pathname !== "/events") {
    return new Response("not found\n", { status: 404 });
  }
  if (request.method === "POST") {
    const body = await request.text();
    server.publish(TOPIC, body);
    sse.publish(body);
    return new Response(null, { status: 202 });
  }
  if (request.method !== "GET") {
    return new Response("method not allowed\n", { status: 405 });
  }
  if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
    if (server.upgrade(request)) return undefined;
    return new Response("upgrade failed\n", { status: 400 });
  }
  if (request.headers.get("accept")?.includes("text/event-stream")) {
    return sse.subscribe();
  }
  return new Response("expected a WebSocket upgrade or text/event-stream\n", {
    status: 426,
  });
}

const server = bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.argv[2] ?? "0"),
  // The default 10 s idle timeout would close quiet SSE streams.
  idleTimeout: 0,
  fetch: handle,
  websocket: {
    open(ws) {
      ws.subscribe(TOPIC);
    },
    message() {},
  },
});
console.log(`Serving on: ws://127.0.0.1:${server.port}/events`);
// Exit on SIGTERM, so a CPU profile (bench/run --profile) gets written.
process.on("SIGTERM", () => process.exit(0));
