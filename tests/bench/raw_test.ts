/**
 * The load client's byte parsers (bench/lib/raw.ts, sse_bytes.ts): chunked transfer
 * decoding, SSE data lines and WebSocket frames, fed in every possible split
 * so that state carried across reads is exercised.
 *
 * @module
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createFrameParser } from "../../bench/lib/raw.ts";
import {
  createChunkDecoder,
  createSseParser,
} from "../../bench/lib/sse_bytes.ts";

function chunked(pieces: string[]): Buffer {
  const body = pieces.map((piece) =>
    `${Buffer.byteLength(piece).toString(16)}\r\n${piece}\r\n`
  ).join("");
  return Buffer.from(`${body}0\r\n\r\n`);
}

/** A parser under test: takes reads, then checks what it saw. */
interface Run {
  feed(chunk: Buffer): void;
  check(): void;
}

/**
 * Feeds `bytes` to a fresh run in two reads split at every offset, then in
 * reads of one byte, checking each run at the end.
 *
 * @returns How many runs were checked.
 */
function splits(bytes: Buffer, start: () => Run): number {
  let runs = 0;
  for (let at = 0; at <= bytes.length; at++) {
    const run = start();
    run.feed(Buffer.from(bytes.subarray(0, at)));
    run.feed(Buffer.from(bytes.subarray(at)));
    run.check();
    runs++;
  }
  const run = start();
  for (let i = 0; i < bytes.length; i++) {
    run.feed(Buffer.from(bytes.subarray(i, i + 1)));
  }
  run.check();
  return runs + 1;
}

describe("bench/lib/raw.ts", () => {
  test("createChunkDecoder() with createSseParser() finds every data line in any split", () => {
    const events = [
      ": subscribed\n\n",
      "id: 1-0\ndata: 0 12.5 xxxx\n\n",
      "id: 1-1\r\ndata:1 13.25 yy\r\n\r\n",
      "data: 2 14 z\n\ndata: 3 15 w\n\n",
    ];
    // Two events in one chunk, and one event across two chunks.
    const stream = chunked([
      events[0],
      events[1] + events[2],
      events[3].slice(0, 9),
      events[3].slice(9),
    ]);
    const runs = splits(stream, () => {
      const seen: string[] = [];
      const decode = createChunkDecoder(
        createSseParser((b, s, e) => seen.push(b.toString("latin1", s, e))),
      );
      return {
        feed: decode,
        check: () =>
          assert.deepEqual(seen, [
            "0 12.5 xxxx",
            "1 13.25 yy",
            "2 14 z",
            "3 15 w",
          ]),
      };
    });
    assert.equal(runs, stream.length + 2);
  });

  test("createChunkDecoder() ignores chunk extensions and stops at the last chunk", () => {
    const seen: string[] = [];
    const decode = createChunkDecoder((b, s, e) =>
      seen.push(b.toString("latin1", s, e))
    );
    decode(
      Buffer.from(
        "5;name=value\r\nhello\r\nA\r\n0123456789\r\n0\r\n\r\n7\r\nignored\r\n",
      ),
    );
    assert.equal(seen.join(""), "hello0123456789");
  });

  test("createFrameParser() hands on text frames, fragments and control frames in any split", () => {
    const text = (payload: string, opcode = 1, fin = true) =>
      Buffer.concat([
        Buffer.from([(fin ? 0x80 : 0) | opcode, payload.length]),
        Buffer.from(payload),
      ]);
    const long = "x".repeat(300);
    const stream = Buffer.concat([
      text("a"),
      text("ping", 9),
      text("hel", 1, false),
      text("lo", 0, true),
      Buffer.from([0x81, 126, 1, 44]),
      Buffer.from(long),
      text("", 8),
    ]);
    splits(stream, () => {
      const messages: string[] = [];
      const controls: number[] = [];
      const parse = createFrameParser(
        (b, s, e) => messages.push(b.toString("latin1", s, e)),
        (opcode) => controls.push(opcode),
      );
      return {
        feed: parse,
        check: () => {
          assert.deepEqual(messages, ["a", "hello", long]);
          assert.deepEqual(controls, [9, 8]);
        },
      };
    });
  });
});
