/**
 * Baseline broadcaster for Node with no framework: `node:http` plus the `ws`
 * package, and a naive loop that sends every published body to every socket,
 * one `send()` per socket per event.
 *
 * `GET /events` with `Upgrade: websocket` subscribes over WebSocket, with
 * `Accept: text/event-stream` over Server-Sent Events (one `write()` per
 * response per event); `POST /events` publishes the body and answers 202.
 *
 * Usage: `node bench/baseline/node.ts [port]` (port 0 picks a free one).
 *
 * @module
 */

import { createServer } from "node:http";
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import type { AddressInfo } from "node:net";
import process from "node:process";
import { WebSocket, WebSocketServer } from "ws";

const sockets = new Set<WebSocket>();
const streams = new Set<ServerResponse>();
const wss = new WebSocketServer({ noServer: true });

function publish(body: string): void {
  for (const socket of sockets) {
    if (socket.readyState === WebSocket.OPEN) socket.send(body);
  }
  if (streams.size === 0) return;
  const frame = Buffer.from(`data: ${body.split("\n").join("\ndata: ")}\n\n`);
  for (const response of streams) response.write(frame);
}

function onRequest(request: IncomingMessage, response: ServerResponse): void {
  if (new URL(request.url ?? "/", "http://x").pathname !== "/events") {
    response.writeHead(404).end("not found\n");
    return;
  }
  if (request.method === "POST") {
    const chunks: Buffer[] = [];
    request.on("data", (chunk: Buffer) => chunks.push(chunk));
    request.on("end", () => {
      publish(Buffer.concat(chunks).toString("utf8"));
      response.writeHead(202).end();
    });
    return;
  }
  if (
    request.method === "GET" &&
    request.headers.accept?.includes("text/event-stream")
  ) {
    response.writeHead(200, {
      "content-type": "text/event-stream",
      "cache-control": "no-cache",
    });
    response.write(": subscribed\n\n");
    streams.add(response);
    response.on("close", () => streams.delete(response));
    return;
  }
  response.writeHead(426).end(
    "expected a WebSocket upgrade or text/event-stream\n",
  );
}

function onUpgrade(
  request: IncomingMessage,
  socket: Duplex,
  head: Buffer,
): void {
  if (new URL(request.url ?? "/", "http://x").pathname !== "/events") {
    socket.destroy();
    return;
  }
  wss.handleUpgrade(request, socket, head, (ws) => {
    sockets.add(ws);
    ws.on("close", () => sockets.delete(ws));
    ws.on("error", () => sockets.delete(ws));
  });
}

const server = createServer(onRequest);
server.on("upgrade", onUpgrade);
server.listen(Number(process.argv[2] ?? "0"), "127.0.0.1", () => {
  const { port } = server.address() as AddressInfo;
  console.log(`Serving on: ws://127.0.0.1:${port}/events`);
});
