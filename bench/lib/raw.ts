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
import { createChunkDecoder, createSseParser } from "./sse_bytes.ts";
import type { TcpLink, TcpSink } from "./tcp.ts";

/** Called once when the connection fails or closes, with a reason. */
export type OnEnd = (reason: string) => void;

const EMPTY: Buffer = Buffer.alloc(0);
const HEAD_END = Buffer.from("\r\n\r\n");
const OP_CONTINUATION = 0;
const OP_CLOSE = 8;
const OP_PING = 9;
const OP_PONG = 10;

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
