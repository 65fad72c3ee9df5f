/**
 * The parts every fake upstream on raw sockets shares (the hostile, silent
 * and id-less upstreams of the relay tests): a TCP server on 127.0.0.1 that
 * ends its connections when closed, the request head, and the answers that
 * open a WebSocket or an SSE stream.
 */

import { createHash } from "node:crypto";
import { createServer, type Socket } from "node:net";

const HEAD_END = "\r\n\r\n";

/** The Sec-WebSocket-Accept value for a Sec-WebSocket-Key (RFC 6455 4.2.2). */
export function acceptKey(key: string): string {
  return createHash("sha1").update(
    key + "258EAFA5-E914-47DA-95CA-C5AB0DC85B11",
  ).digest("base64");
}

/** A TCP server listening on 127.0.0.1. */
export interface RawServer {
  port: number;
  /** Destroys every open connection, then closes the server. */
  close(): Promise<void>;
}

/**
 * Listens on a free port of 127.0.0.1 and hands each connection (its errors
 * ignored: the peer is the server under test) to `onConnection`.
 */
export function listenRaw(
  onConnection: (socket: Socket) => void,
): Promise<RawServer> {
  const sockets = new Set<Socket>();
  const server = createServer((socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
    socket.on("error", () => {});
    onConnection(socket);
  });
  return new Promise((resolve) => {
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      resolve({
        port: typeof address === "object" && address !== null
          ? address.port
          : 0,
        close: () =>
          new Promise<void>((done) => {
            for (const socket of sockets) socket.destroy();
            server.close(() => done());
          }),
      });
    });
  });
}

/**
 * Calls `onHead` once with the request head (the request line and headers,
 * as latin1 text, without the blank line); the bytes after it (a body, or
 * WebSocket frames) are ignored.
 */
export function onRequestHead(
  socket: Socket,
  onHead: (head: string) => void,
): void {
  let head = "";
  let done = false;
  socket.setEncoding("latin1");
  socket.on("data", (chunk: string) => {
    if (done) return;
    head += chunk;
    const end = head.indexOf(HEAD_END);
    if (end < 0) return;
    done = true;
    onHead(head.slice(0, end));
  });
}

/** Answers the WebSocket handshake whose request head is `head` with 101. */
export function answerUpgrade(socket: Socket, head: string): void {
  const key = /^sec-websocket-key:\s*(\S+)/im.exec(head)?.[1] ?? "";
  socket.write(
    "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
      `Connection: Upgrade\r\nSec-WebSocket-Accept: ${acceptKey(key)}\r\n\r\n`,
  );
}

/**
 * Answers an SSE request with 200 and `text/event-stream`: a chunked body,
 * or (`"close"`) one that ends with the connection.
 */
export function answerSse(socket: Socket, body: "chunked" | "close"): void {
  socket.write(
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" +
      "Cache-Control: no-cache\r\n" +
      (body === "chunked"
        ? "Transfer-Encoding: chunked"
        : "Connection: close") +
      HEAD_END,
  );
}
