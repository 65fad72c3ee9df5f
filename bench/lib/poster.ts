/**
 * POSTs for the load client over raw keep-alive HTTP/1.1 connections: one
 * request at a time per connection, as many connections as POSTs in
 * flight. The answer is framed by Content-Length or chunked encoding and
 * only its status is read. This costs the client a fraction of `fetch`
 * (whose Request, Response and header objects were about 7% of the
 * client's samples against Bun), and costs every server the same.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { connectTcp } from "./tcp.ts";
import type { TcpLink, TcpSink } from "./tcp.ts";

const HEAD_END = Buffer.from("\r\n\r\n");
const CRLF = Buffer.from("\r\n");
const EMPTY = Buffer.alloc(0);

/** Sends POSTs to one URL; `post` resolves to "" on 2xx, else an error. */
export interface Poster {
  post(body: string): Promise<string>;
  close(): void;
}

/** The end of a complete response in `buffer` and its status, or null if more bytes are needed. */
export function parseResponse(
  buffer: Buffer,
): { end: number; status: number } | null | Error {
  const headEnd = buffer.indexOf(HEAD_END);
  if (headEnd === -1) return null;
  const head = buffer.subarray(0, headEnd).toString("latin1");
  const match = /^HTTP\/1\.[01] (\d{3})/.exec(head);
  if (match === null) return new Error(`not an HTTP response: ${head}`);
  const status = Number(match[1]);
  const bodyStart = headEnd + 4;
  const lower = head.toLowerCase();
  const length = /\r\ncontent-length:\s*(\d+)/.exec(lower);
  if (length !== null) {
    const end = bodyStart + Number(length[1]);
    return end <= buffer.length ? { end, status } : null;
  }
  if (/\r\ntransfer-encoding:[^\r]*chunked/.test(lower)) {
    let at = bodyStart;
    for (;;) {
      const lineEnd = buffer.indexOf(CRLF, at);
      if (lineEnd === -1) return null;
      const size = parseInt(
        buffer.subarray(at, lineEnd).toString("latin1"),
        16,
      );
      if (Number.isNaN(size)) return new Error("bad chunk size");
      // No trailers: the last chunk is followed by one more CRLF.
      const next = lineEnd + 2 + size + 2;
      if (next > buffer.length) return null;
      if (size === 0) return { end: next, status };
      at = next;
    }
  }
  if (status === 204 || status === 304) return { end: bodyStart, status };
  return new Error(`cannot frame a ${status} answer without a length`);
}

/** One keep-alive connection with at most one request in flight. */
class Connection {
  #link: TcpLink | undefined;
  #buffer: Buffer = EMPTY;
  #waiting: ((error: string) => void) | undefined;
  #broken = false;

  static async open(host: string, port: number): Promise<Connection> {
    const connection = new Connection();
    const sink: TcpSink = {
      onData: (chunk) => connection.#onData(chunk),
      onEnd: (reason) => connection.#fail(`connection ended: ${reason}`),
    };
    connection.#link = await connectTcp(host, port, sink);
    return connection;
  }

  get broken(): boolean {
    return this.#broken;
  }

  send(request: string): Promise<string> {
    return new Promise((resolve) => {
      this.#waiting = resolve;
      this.#link?.write(request);
    });
  }

  close(): void {
    this.#broken = true;
    this.#link?.destroy();
  }

  #onData(chunk: Buffer): void {
    this.#buffer = this.#buffer.length === 0
      ? chunk
      : Buffer.concat([this.#buffer, chunk]);
    const parsed = parseResponse(this.#buffer);
    if (parsed === null) return;
    if (parsed instanceof Error) return this.#fail(parsed.message);
    this.#buffer = parsed.end >= this.#buffer.length
      ? EMPTY
      : Buffer.from(this.#buffer.subarray(parsed.end));
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.(
      parsed.status >= 200 && parsed.status < 300
        ? ""
        : `POST answered ${parsed.status}`,
    );
  }

  #fail(message: string): void {
    this.#broken = true;
    this.#link?.destroy();
    const waiting = this.#waiting;
    this.#waiting = undefined;
    waiting?.(`POST failed: ${message}`);
  }
}

/**
 * Makes a poster for `url`: it keeps idle connections for reuse and opens
 * one more whenever all are busy.
 *
 * @param url Where to publish (`http://host:port/path`).
 * @returns The poster.
 */
export function createPoster(url: string): Poster {
  const target = new URL(url);
  const host = target.hostname.replace(/^\[|\]$/g, "");
  const port = Number(target.port || 80);
  const head = `POST ${target.pathname}${target.search} HTTP/1.1\r\n` +
    `Host: ${target.host}\r\nContent-Type: text/plain\r\n`;
  const idle: Connection[] = [];
  const all = new Set<Connection>();
  return {
    async post(body) {
      let connection = idle.pop();
      while (connection?.broken) {
        all.delete(connection);
        connection = idle.pop();
      }
      try {
        if (connection === undefined) {
          connection = await Connection.open(host, port);
          all.add(connection);
        }
      } catch (error) {
        return `POST failed: cannot connect: ${error}`;
      }
      const error = await connection.send(
        `${head}Content-Length: ${Buffer.byteLength(body)}\r\n\r\n${body}`,
      );
      if (connection.broken) all.delete(connection);
      else idle.push(connection);
      return error;
    },
    close() {
      for (const connection of all) connection.close();
      all.clear();
      idle.length = 0;
    },
  };
}
