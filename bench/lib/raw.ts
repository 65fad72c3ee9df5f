/**
 * Raw subscribers for the load client: WebSocket and Server-Sent Events
 * spoken directly over `node:net`, parsing frames and events as bytes, with
 * no event object or string per message. One `performance.now()` per TCP
 * read stamps every message in it. This keeps the client's cost per
 * delivery far below the servers' (see the benchmark's README section).
 *
 * @module
 */

import { Buffer } from "node:buffer";
import type { Receiver, SubscriberTally } from "./receiver.ts";
import { receiveBytes } from "./receiver.ts";
import { connectTcp } from "./tcp.ts";
import type { TcpLink, TcpSink } from "./tcp.ts";

/** Called once when the connection fails or closes, with a reason. */
export type OnEnd = (reason: string) => void;

const EMPTY: Buffer = Buffer.alloc(0);
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

/** The bytes of `buffer` from `offset` on, copied so the read buffer can go. */
function rest(buffer: Buffer, offset: number): Buffer {
  return offset >= buffer.length ? EMPTY : Buffer.from(buffer.subarray(offset));
}

/** An open connection past its HTTP response head. */
interface Upgraded {
  link: TcpLink;
  sink: TcpSink;
  /** Bytes received after the head. */
  rest: Buffer;
  /** The response head, lower-cased. */
  head: string;
}

/**
 * Connects, sends `head`, and resolves once a response with `status`
 * arrives. The caller then takes over `sink`.
 */
async function handshake(
  url: URL,
  head: string,
  status: number,
): Promise<Upgraded> {
  let buffer = EMPTY;
  let settle:
    | { resolve(value: Upgraded): void; reject(error: Error): void }
    | undefined;
  const answered = new Promise<Upgraded>((resolve, reject) =>
    settle = { resolve, reject }
  );
  const sink: TcpSink = {
    onData(chunk) {
      buffer = buffer.length === 0 ? chunk : Buffer.concat([buffer, chunk]);
      const end = buffer.indexOf(HEAD_END);
      if (end === -1) return;
      sink.onData = () => {};
      const text = buffer.subarray(0, end).toString("latin1");
      if (text.startsWith(`HTTP/1.1 ${status}`)) {
        settle?.resolve({
          link,
          sink,
          rest: rest(buffer, end + 4),
          head: text.toLowerCase(),
        });
      } else {
        sink.onEnd = () => {};
        link.destroy();
        settle?.reject(new Error(`${url} answered ${text.split("\r\n")[0]}`));
      }
    },
    onEnd(reason) {
      settle?.reject(new Error(`${url}: ${reason} during the handshake`));
    },
  };
  const link = await connectTcp(url.hostname, Number(url.port), sink);
  link.write(head);
  return answered;
}

/** A masked frame from client to server (zero mask: allowed, and a bench). */
function clientFrame(opcode: number, payload: Uint8Array): Buffer {
  const frame = Buffer.alloc(6 + payload.length);
  frame[0] = 0x80 | opcode;
  frame[1] = 0x80 | payload.length;
  frame.set(payload, 6);
  return frame;
}

/** Parses WebSocket frames from the server, handing each message on. */
export function createFrameParser(
  onMessage: (bytes: Buffer, start: number, end: number) => void,
  onControl: (opcode: number, payload: Buffer) => void,
): (chunk: Buffer) => void {
  let pending = EMPTY;
  let fragments: Buffer[] = [];
  return (chunk) => {
    const buffer = pending.length === 0
      ? chunk
      : Buffer.concat([pending, chunk]);
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
      if (opcode >= OP_CLOSE) {
        onControl(opcode, buffer.subarray(offset, offset + length));
      } else if (fin && opcode !== OP_CONTINUATION && fragments.length === 0) {
        onMessage(buffer, offset, offset + length);
      } else {
        fragments.push(Buffer.from(buffer.subarray(offset, offset + length)));
        if (fin) {
          const message = Buffer.concat(fragments);
          fragments = [];
          onMessage(message, 0, message.length);
        }
      }
      i = offset + length;
    }
    pending = rest(buffer, i);
  };
}

/**
 * Opens a WebSocket subscriber at `url` over a raw TCP connection.
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
  const { link, sink, rest } = await handshake(url, head, 101);
  let now = 0;
  const parse = createFrameParser(
    (bytes, start, end) =>
      receiveBytes(receiver, tally, bytes, start, end, now),
    (opcode, payload) => {
      if (opcode === OP_PING) link.write(clientFrame(OP_PONG, payload));
      else if (opcode === OP_CLOSE) {
        sink.onEnd(
          `WebSocket closed by the server (${
            payload.length >= 2 ? payload.readUInt16BE(0) : 1005
          })`,
        );
      }
    },
  );
  sink.onData = (chunk) => {
    now = performance.now();
    parse(chunk);
  };
  sink.onEnd = (reason) => {
    link.destroy();
    onEnd(reason);
  };
  if (rest.length > 0) sink.onData(rest);
  return () => {
    sink.onEnd = () => {};
    link.destroy();
  };
}

/** Hands on the bytes `buffer[start, end)`, without copying them. */
export type RangeSink = (buffer: Buffer, start: number, end: number) => void;

const CHUNK_SIZE = 0;
const CHUNK_EXTENSION = 1;
const CHUNK_DATA = 2;
const CHUNK_CRLF = 3;
const CHUNK_DONE = 4;

function hexValue(byte: number): number {
  if (byte >= 48 && byte <= 57) return byte - 48;
  if (byte >= 97 && byte <= 102) return byte - 87;
  if (byte >= 65 && byte <= 70) return byte - 55;
  return -1;
}

/**
 * Decodes `Transfer-Encoding: chunked` byte by byte, keeping its state across
 * reads, and hands on ranges of the read buffer (no copies, no strings).
 */
export function createChunkDecoder(onData: RangeSink): (chunk: Buffer) => void {
  let state = CHUNK_SIZE;
  let size = 0;
  let skip = 0;
  return (buffer) => {
    let i = 0;
    const length = buffer.length;
    while (i < length) {
      if (state === CHUNK_DATA) {
        const end = Math.min(length, i + size);
        onData(buffer, i, end);
        size -= end - i;
        i = end;
        if (size === 0) {
          state = CHUNK_CRLF;
          skip = 2;
        }
      } else if (state === CHUNK_SIZE || state === CHUNK_EXTENSION) {
        const byte = buffer[i++];
        if (byte === LF) {
          state = size === 0 ? CHUNK_DONE : CHUNK_DATA;
        } else if (state === CHUNK_SIZE) {
          const value = hexValue(byte);
          if (value >= 0) size = size * 16 + value;
          else if (byte !== CR) state = CHUNK_EXTENSION;
        }
      } else if (state === CHUNK_CRLF) {
        const step = Math.min(skip, length - i);
        i += step;
        skip -= step;
        if (skip === 0) {
          state = CHUNK_SIZE;
          size = 0;
        }
      } else {
        i = length;
      }
    }
  };
}

/** Whether `buffer[start, start + 5)` is `data:`. */
function isDataField(buffer: Buffer, start: number): boolean {
  return buffer[start] === 100 && buffer[start + 1] === 97 &&
    buffer[start + 2] === 116 && buffer[start + 3] === 97 &&
    buffer[start + 4] === 58;
}

/**
 * Calls `onData` with the value of each `data:` line. Every payload of the
 * benchmark is one line, so each data line is one message. Lines are found
 * in place; only a line split across reads is copied.
 */
export function createSseParser(onData: RangeSink): RangeSink {
  let partial = EMPTY;
  function line(buffer: Buffer, start: number, end: number): void {
    if (end > start && buffer[end - 1] === CR) end--;
    if (end - start >= 5 && isDataField(buffer, start)) {
      onData(buffer, buffer[start + 5] === 32 ? start + 6 : start + 5, end);
    }
  }
  return (buffer, start, end) => {
    let i = start;
    while (i < end) {
      let eol = i;
      while (eol < end && buffer[eol] !== LF) eol++;
      if (eol === end) {
        partial = Buffer.concat([partial, buffer.subarray(i, end)]);
        return;
      }
      if (partial.length > 0) {
        const joined = Buffer.concat([partial, buffer.subarray(i, eol)]);
        partial = EMPTY;
        line(joined, 0, joined.length);
      } else {
        line(buffer, i, eol);
      }
      i = eol + 1;
    }
  };
}

/**
 * Opens a Server-Sent Events subscriber at `url` over a raw TCP connection.
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
  const { link, sink, rest, head: responseHead } = await handshake(
    url,
    head,
    200,
  );
  let now = 0;
  const parseSse = createSseParser((bytes, start, end) =>
    receiveBytes(receiver, tally, bytes, start, end, now)
  );
  const feed = /\r\ntransfer-encoding: *chunked/.test(responseHead)
    ? createChunkDecoder(parseSse)
    : (chunk: Buffer) => parseSse(chunk, 0, chunk.length);
  sink.onData = (chunk) => {
    now = performance.now();
    feed(chunk);
  };
  sink.onEnd = (reason) => {
    link.destroy();
    onEnd(`SSE ${reason}`);
  };
  if (rest.length > 0) sink.onData(rest);
  return () => {
    sink.onEnd = () => {};
    link.destroy();
  };
}
