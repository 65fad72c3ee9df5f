/**
 * Byte-level decoding for the load client's raw SSE subscribers: chunked
 * transfer encoding and `data:` lines, found in place in the read buffer,
 * with state kept across reads.
 *
 * @module
 */

import { Buffer } from "node:buffer";

const EMPTY: Buffer = Buffer.alloc(0);
const LF = 10;
const CR = 13;

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
      // The blank line that ends each event, without a call.
      if (buffer[i] === LF && partial.length === 0) {
        i++;
        continue;
      }
      // indexOf is a native scan: a byte loop here made the client, not
      // the server, the limit of SSE fan-out on Bun.
      let eol = buffer.indexOf(LF, i);
      if (eol < 0 || eol > end) eol = end;
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
