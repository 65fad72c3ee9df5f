/**
 * A hostile upstream for relay tests, over node:net on 127.0.0.1: it
 * answers a WebSocket handshake or an SSE request and then writes whatever
 * the test tells it to (unterminated SSE events, huge binary frames, close
 * frames with forged log lines), and answers publishes (POST) with a body
 * and content type of the test's choosing.
 */

import type { Socket } from "node:net";
import { encodeFrame } from "./_raw_ws.ts";
import {
  answerSse,
  answerUpgrade,
  listenRaw,
  onRequestHead,
} from "./_raw_server.ts";

/** One stream a relay opened to the hostile upstream. */
export interface HostileStream {
  /** "ws" after a WebSocket handshake, "sse" after an SSE request. */
  kind: "ws" | "sse";
  /** The request head as received (request line and headers). */
  head: string;
  /** Writes raw bytes (SSE: already chunk-encoded by {@link sseChunk}). */
  write(bytes: Uint8Array | string): boolean;
  /** Resolves once the stream's socket can take more (after a false write). */
  drained(): Promise<void>;
  /** True once the relay closed the connection. */
  closed(): boolean;
  /** Writes the last bytes and ends the connection (a clean TCP close). */
  end(bytes?: Uint8Array | string): void;
  /** Closes the connection. */
  destroy(): void;
}

/** A running hostile upstream. */
export interface HostileUpstream {
  port: number;
  /** Request heads of every request, in order. */
  requests: string[];
  /** The streams opened so far, in order. */
  streams: HostileStream[];
  /** Resolves with the n-th stream (0-based) once it is open. */
  stream(n: number, timeoutMs?: number): Promise<HostileStream>;
  close(): Promise<void>;
}

/** What the hostile upstream answers to a POST. */
export interface PostAnswer {
  status: number;
  contentType: string;
  body: string;
}

/** One chunk of a chunked HTTP body. */
export function sseChunk(text: string | Uint8Array): Uint8Array {
  const body = typeof text === "string" ? new TextEncoder().encode(text) : text;
  const head = new TextEncoder().encode(`${body.byteLength.toString(16)}\r\n`);
  const out = new Uint8Array(head.byteLength + body.byteLength + 2);
  out.set(head, 0);
  out.set(body, head.byteLength);
  out.set([13, 10], head.byteLength + body.byteLength);
  return out;
}

/** A server-to-client (unmasked) WebSocket frame. */
export function serverFrame(
  opcode: number,
  payload: Uint8Array | string,
): Uint8Array {
  return encodeFrame(opcode, payload, { mask: false });
}

/**
 * Starts the hostile upstream.
 *
 * @param post What to answer a POST with.
 * @returns The running upstream.
 */
export function startHostileUpstream(
  post: PostAnswer = {
    status: 202,
    contentType: "application/json",
    body: '{"id":"x-1"}',
  },
): Promise<HostileUpstream> {
  const requests: string[] = [];
  const streams: HostileStream[] = [];
  return listenRaw((socket) => {
    onRequestHead(socket, (head) => {
      requests.push(head);
      answer(socket, head, post, streams);
    });
  }).then((server) => ({
    port: server.port,
    requests,
    streams,
    async stream(n, timeoutMs = 20_000) {
      const deadline = Date.now() + timeoutMs;
      while (streams.length <= n) {
        if (Date.now() > deadline) {
          throw new Error(`No stream ${n} from the relay in ${timeoutMs} ms`);
        }
        await new Promise((r) => setTimeout(r, 10));
      }
      return streams[n];
    },
    close: server.close,
  }));
}

function answer(
  socket: Socket,
  head: string,
  post: PostAnswer,
  streams: HostileStream[],
): void {
  if (head.startsWith("POST ")) {
    // Wait for the body to arrive (or not): the answer does not depend on it.
    const body = new TextEncoder().encode(post.body);
    socket.end(
      `HTTP/1.1 ${post.status} X\r\nContent-Type: ${post.contentType}\r\n` +
        `Content-Length: ${body.byteLength}\r\nConnection: close\r\n\r\n${post.body}`,
    );
    return;
  }
  const upgrade = /^upgrade:\s*websocket/im.test(head);
  if (upgrade) answerUpgrade(socket, head);
  else answerSse(socket, "chunked");
  let closed = false;
  socket.on("close", () => (closed = true));
  streams.push({
    kind: upgrade ? "ws" : "sse",
    head,
    write: (bytes) => !closed && socket.write(bytes),
    drained: () =>
      new Promise<void>((resolve) => {
        if (closed || socket.writableLength === 0) return resolve();
        socket.once("drain", () => resolve());
        socket.once("close", () => resolve());
      }),
    closed: () => closed,
    end: (bytes) =>
      void (bytes === undefined ? socket.end() : socket.end(bytes)),
    destroy: () => socket.destroy(),
  });
}
