/**
 * Raw subscribers for the load client: WebSocket and Server-Sent Events
 * spoken directly over `node:net`, parsing frames and events as bytes, with
 * no event object or string per message. One `performance.now()` per TCP
 * read stamps every message in it. This keeps the client's cost per
 * delivery far below the servers' (see the benchmark's README section).
 *
 * @module
 */

import { connect } from "node:net";
import type { Socket } from "node:net";
import { Buffer } from "node:buffer";
import type { Receiver, SubscriberTally } from "./receiver.ts";
import { receiveBytes } from "./receiver.ts";

/** Called once when the connection fails or closes, with a reason. */
export type OnEnd = (reason: string) => void;

const HEAD_END = Buffer.from("\r\n\r\n");
const OP_CONTINUATION = 0;
const OP_CLOSE = 8;
const OP_PING = 9;
const OP_PONG = 10;
const LF = 10;
const CR = 13;

function request(url: URL, headers: string): string {
  return `GET ${url.pathname}${url.search} HTTP/1.1\r\nHost: ${url.host}\r\n${headers}\r\n`;
}

/**
 * Connects and sends `head`; resolves with the socket and the bytes after
 * the response head once a response with `status` arrives.
 */
function handshake(
  url: URL,
  head: string,
  status: number,
): Promise<{ socket: Socket; rest: Buffer; head: string }> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: url.hostname, port: Number(url.port) });
    socket.setNoDelay(true);
    let buffer: Buffer = Buffer.alloc(0);
    function onData(chunk: Buffer): void {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf(HEAD_END);
      if (end === -1) return;
      socket.off("data", onData);
      socket.off("error", onError);
      socket.off("close", onClose);
      const text = buffer.subarray(0, end).toString("latin1");
      if (!text.startsWith(`HTTP/1.1 ${status}`)) {
        socket.destroy();
        reject(new Error(`${url} answered ${text.split("\r\n")[0]}`));
        return;
      }
      resolve({
        socket,
        rest: buffer.subarray(end + 4),
        head: text.toLowerCase(),
      });
    }
    function onError(error: Error): void {
      reject(new Error(`${url}: ${error.message}`));
    }
    function onClose(): void {
      reject(new Error(`${url} closed during the handshake`));
    }
    socket.on("data", onData);
    socket.on("error", onError);
    socket.on("close", onClose);
    socket.write(head);
  });
}

/** A masked frame from client to server (zero mask: allowed, and a bench). */
function clientFrame(opcode: number, payload: Uint8Array): Buffer {
  const frame = Buffer.alloc(6 + payload.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | payload.length;
  frame.set(payload, 6);
  return frame;
}

/**
 * Opens a WebSocket subscriber at `url` over a raw TCP socket.
 *
 * @returns A function that closes it.
 */
export async function openRawWebSocket(
  url: URL,
  receiver: Receiver,
  tally: SubscriberTally,
  onEnd: OnEnd,
): Promise<() => void> {
  const head = request(
    url,
    "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\n" +
      "Sec-WebSocket-Key: YmVuY2htYXJrIGNsaWVudA==\r\n",
  );
  const { socket, rest } = await handshake(url, head, 101);
  let pending = rest;
  let fragments: Buffer[] = [];
  let ended = false;
  function end(reason: string): void {
    if (ended) return;
    ended = true;
    socket.destroy();
    onEnd(reason);
  }
  function parse(buffer: Buffer, now: number): Buffer {
    let i = 0;
    while (buffer.length - i >= 2) {
      const opcode = buffer[i] & 0x0f;
      const fin = (buffer[i] & 0x80) !== 0;
      let length = buffer[i + 1] & 0x7f;
      let offset = i + 2;
      if (length === 126) {
        if (buffer.length - i < 4) break;
        length = buffer.readUInt16BE(i + 2);
        offset = i + 4;
      } else if (length === 127) {
        if (buffer.length - i < 10) break;
        length = Number(buffer.readBigUInt64BE(i + 2));
        offset = i + 10;
      }
      if (buffer.length < offset + length) break;
      if (opcode === OP_PING) {
        socket.write(
          clientFrame(OP_PONG, buffer.subarray(offset, offset + length)),
        );
      } else if (opcode === OP_CLOSE) {
        end(
          `WebSocket closed by the server (${
            length >= 2 ? buffer.readUInt16BE(offset) : 1005
          })`,
        );
      } else if (opcode !== OP_PONG) {
        if (fin && opcode !== OP_CONTINUATION && fragments.length === 0) {
          receiveBytes(receiver, tally, buffer, offset, offset + length, now);
        } else {
          fragments.push(buffer.subarray(offset, offset + length));
          if (fin) {
            const message = Buffer.concat(fragments);
            fragments = [];
            receiveBytes(receiver, tally, message, 0, message.length, now);
          }
        }
      }
      i = offset + length;
    }
    return buffer.subarray(i);
  }
  socket.on("data", (chunk: Buffer) => {
    pending = parse(
      pending.length === 0 ? chunk : Buffer.concat([pending, chunk]),
      performance.now(),
    );
  });
  socket.on(
    "error",
    (error: Error) => end(`WebSocket error: ${error.message}`),
  );
  socket.on("close", () => end("WebSocket connection closed"));
  if (pending.length > 0) pending = parse(pending, performance.now());
  return () => {
    ended = true;
    socket.destroy();
  };
}

const CHUNK_SIZE = 0;
const CHUNK_DATA = 1;
const CHUNK_CRLF = 2;
const CHUNK_DONE = 3;

/** Decodes `Transfer-Encoding: chunked`, handing each piece of data on. */
function createChunkDecoder(
  onPiece: (piece: Buffer) => void,
): (chunk: Buffer) => void {
  let state = CHUNK_SIZE;
  let remaining = 0;
  let pending: Buffer = Buffer.alloc(0);
  return (chunk) => {
    const buffer = pending.length === 0
      ? chunk
      : Buffer.concat([pending, chunk]);
    let i = 0;
    while (i < buffer.length) {
      if (state === CHUNK_SIZE) {
        const eol = buffer.indexOf("\r\n", i);
        if (eol === -1) break;
        remaining = parseInt(buffer.subarray(i, eol).toString("latin1"), 16);
        i = eol + 2;
        state = remaining === 0 ? CHUNK_DONE : CHUNK_DATA;
      } else if (state === CHUNK_DATA) {
        const take = Math.min(remaining, buffer.length - i);
        onPiece(buffer.subarray(i, i + take));
        i += take;
        remaining -= take;
        if (remaining === 0) state = CHUNK_CRLF;
      } else if (state === CHUNK_CRLF) {
        if (buffer.length - i < 2) break;
        i += 2;
        state = CHUNK_SIZE;
      } else {
        i = buffer.length;
      }
    }
    pending = buffer.subarray(i);
  };
}

/** Whether `buffer[start, start + 5)` is `data:`. */
function isDataField(buffer: Buffer, start: number): boolean {
  return buffer[start] === 100 && buffer[start + 1] === 97 &&
    buffer[start + 2] === 116 &&
    buffer[start + 3] === 97 && buffer[start + 4] === 58;
}

/**
 * Calls `onData` with the value of each `data:` line. Every payload of the
 * benchmark is one line, so each data line is one message.
 */
function createSseParser(
  onData: (buffer: Buffer, start: number, end: number) => void,
): (piece: Buffer) => void {
  let pending: Buffer = Buffer.alloc(0);
  return (piece) => {
    const buffer = pending.length === 0
      ? piece
      : Buffer.concat([pending, piece]);
    let lineStart = 0;
    for (;;) {
      const eol = buffer.indexOf(LF, lineStart);
      if (eol === -1) break;
      let lineEnd = eol;
      if (lineEnd > lineStart && buffer[lineEnd - 1] === CR) lineEnd--;
      if (lineEnd - lineStart >= 5 && isDataField(buffer, lineStart)) {
        onData(
          buffer,
          buffer[lineStart + 5] === 32 ? lineStart + 6 : lineStart + 5,
          lineEnd,
        );
      }
      lineStart = eol + 1;
    }
    pending = buffer.subarray(lineStart);
  };
}

/**
 * Opens a Server-Sent Events subscriber at `url` over a raw TCP socket.
 *
 * @returns A function that closes it.
 */
export async function openRawSse(
  url: URL,
  receiver: Receiver,
  tally: SubscriberTally,
  onEnd: OnEnd,
): Promise<() => void> {
  const head = request(url, "Accept: text/event-stream\r\n");
  const { socket, rest, head: responseHead } = await handshake(url, head, 200);
  let now = performance.now();
  let ended = false;
  const parseSse = createSseParser((buffer, start, end) =>
    receiveBytes(receiver, tally, buffer, start, end, now)
  );
  const feed = /\r\ntransfer-encoding: *chunked/.test(responseHead)
    ? createChunkDecoder(parseSse)
    : parseSse;
  function end(reason: string): void {
    if (ended) return;
    ended = true;
    socket.destroy();
    onEnd(reason);
  }
  socket.on("data", (chunk: Buffer) => {
    now = performance.now();
    feed(chunk);
  });
  socket.on("error", (error: Error) => end(`SSE error: ${error.message}`));
  socket.on("close", () => end("SSE connection closed"));
  if (rest.length > 0) feed(rest);
  return () => {
    ended = true;
    socket.destroy();
  };
}
