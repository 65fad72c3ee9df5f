/**
 * Baseline broadcaster for Deno with no framework: `Deno.serve` plus
 * `Deno.upgradeWebSocket`, and a naive loop that sends every published body
 * to every socket, one `send()` per socket per event.
 *
 * `GET /events` with `Upgrade: websocket` subscribes over WebSocket, with
 * `Accept: text/event-stream` over Server-Sent Events (one enqueue per stream
 * per event); `POST /events` publishes the body and answers 202.
 *
 * Usage: `deno run -A bench/baseline/deno.ts [port]` (port 0 picks a free one).
 *
 * @module
 */

import { createSseBroadcast } from "./_sse.ts";

const port = Number(Deno.args[0] ?? "0");
const sockets = new Set<WebSocket>();
const sse = createSseBroadcast();

function publish(body: string): void {
  for (const socket of sockets) {
    if (socket.readyState === WebSocket.OPEN) socket.send(body);
  }
  sse.publish(body);
}

function subscribeWebSocket(request: Request): Response {
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.onopen = () => sockets.add(socket);
  socket.onclose = () => sockets.delete(socket);
  socket.onerror = () => sockets.delete(socket);
  return response;
}

async function handle(request: Request): Promise<Response> {
  if (new URL(request.url).pathname !== "/events") {
    return new Response("not found\n", { status: 404 });
  }
  if (request.method === "POST") {
    publish(await request.text());
    return new Response(null, { status: 202 });
  }
  if (request.method !== "GET") {
    return new Response("method not allowed\n", { status: 405 });
  }
  if (request.headers.get("upgrade")?.toLowerCase() === "websocket") {
    return subscribeWebSocket(request);
  }
  if (request.headers.get("accept")?.includes("text/event-stream")) {
    return sse.subscribe();
  }
  return new Response("expected a WebSocket upgrade or text/event-stream\n", {
    status: 426,
  });
}

Deno.serve({
  hostname: "127.0.0.1",
  port,
  onListen(address) {
    console.log(`Serving on: ws://127.0.0.1:${address.port}/events`);
  },
}, handle);
