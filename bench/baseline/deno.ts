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

const port = Number(Deno.args[0] ?? "0");
const sockets = new Set<WebSocket>();
const streams = new Set<ReadableStreamDefaultController<Uint8Array>>();
const encoder = new TextEncoder();

function sseFrame(body: string): Uint8Array {
  return encoder.encode(`data: ${body.split("\n").join("\ndata: ")}\n\n`);
}

function publish(body: string): void {
  for (const socket of sockets) {
    if (socket.readyState === WebSocket.OPEN) socket.send(body);
  }
  if (streams.size === 0) return;
  const frame = sseFrame(body);
  for (const controller of streams) controller.enqueue(frame);
}

function subscribeWebSocket(request: Request): Response {
  const { socket, response } = Deno.upgradeWebSocket(request);
  socket.onopen = () => sockets.add(socket);
  socket.onclose = () => sockets.delete(socket);
  socket.onerror = () => sockets.delete(socket);
  return response;
}

function subscribeSse(): Response {
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
    return subscribeSse();
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
