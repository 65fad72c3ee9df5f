/**
 * The Node adapter's WebSocket sink on a fake `ws` socket (no port): what it
 * reports as queued is what `-max-queue` bounds, so a peer that never reads
 * is closed as slow; a socket's frames of one turn leave in one write.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { runtime } from "../../src/runtime/node.ts";
import { StreamEvent } from "../../src/event.ts";
import { createHub } from "../../src/hub.ts";

/** The parts of a ws socket the adapter uses, over a TCP stream that never drains. */
interface FakeWs {
  readyState: number;
  /** As ws computes it: what sits in the stream's write buffer (nobody reads). */
  readonly bufferedAmount: number;
  _socket: {
    destroyed: boolean;
    writableEnded: boolean;
    write(chunk: Uint8Array): boolean;
  };
  _sender: Record<string, never>;
  /** Each write to the stream, in order. */
  writes: Buffer[];
  /** What the adapter asked ws for besides raw writes. */
  calls: string[];
  /** Bytes the test adds on top (ws's own queue). */
  extra: number;
  on(event: string, listener: () => void): void;
  send(data: unknown): void;
  close(code: number, reason: string): void;
  ping(): void;
  terminate(): void;
}

function fakeWs(): FakeWs {
  const ws: FakeWs = {
    readyState: 1,
    get bufferedAmount() {
      return ws.extra + ws.writes.reduce((sum, w) => sum + w.byteLength, 0);
    },
    _socket: {
      destroyed: false,
      writableEnded: false,
      write(chunk) {
        ws.writes.push(Buffer.from(chunk));
        return false;
      },
    },
    _sender: {},
    writes: [],
    calls: [],
    extra: 0,
    on() {},
    send: () => ws.calls.push("send"),
    close(code, reason) {
      ws.calls.push(`close ${code} ${reason}`);
      ws.readyState = 2;
    },
    ping: () => ws.calls.push("ping"),
    terminate: () => ws.calls.push("terminate"),
  };
  return ws;
}

const nextTurn = (): Promise<void> =>
  new Promise((resolve) => setImmediate(resolve));

const support = runtime.websocketSupport({
  heartbeatMs: 15_000,
  maxFrameBytes: 1 << 20,
});

describe("node runtime adapter", () => {
  test("node websocketSupport().createSink() counts ws's buffered bytes plus the frames batched this turn, and writes them in one write after the turn", async () => {
    const ws = fakeWs();
    ws.extra = 5000;
    const sink = support.createSink(ws, "raw");
    assert.equal(sink.queued(), 5000, "ws's own buffered bytes");
    const payload = "x".repeat(1000);
    const first = sink.send(new StreamEvent({ epoch: "e", seq: 0 }, payload));
    // A text frame of 1000 bytes: 4 bytes of header (length 126..65535).
    assert.equal(first, 5000 + 1004, "the batched frame counts at once");
    const second = sink.send(new StreamEvent({ epoch: "e", seq: 1 }, payload));
    assert.equal(second, 5000 + 2 * 1004);
    assert.equal(ws.writes.length, 0, "nothing written during the turn");
    await nextTurn();
    assert.equal(ws.writes.length, 1, "one write for the turn's frames");
    assert.equal(ws.writes[0].byteLength, 2 * 1004);
    assert.deepEqual([...ws.writes[0].subarray(0, 4)], [0x81, 126, 0x03, 0xe8]);
    assert.equal(ws.writes[0].subarray(4, 1004).toString(), payload);
    // Now in the stream's buffer, which ws counts in bufferedAmount.
    assert.equal(sink.queued(), 5000 + 2 * 1004);
    assert.deepEqual(ws.calls, []);
  });

  test("node adapter: closing a sink writes the frames batched this turn before the close frame, and nothing after it", async () => {
    const ws = fakeWs();
    const sink = support.createSink(ws, "raw");
    const written = () => ws.writes.reduce((sum, w) => sum + w.byteLength, 0);
    let writtenAtClose = -1;
    const close = ws.close;
    ws.close = (code, reason) => {
      writtenAtClose = written();
      close(code, reason);
    };
    sink.send(new StreamEvent({ epoch: "e", seq: 0 }, "a"));
    sink.send(new StreamEvent({ epoch: "e", seq: 1 }, "b"));
    assert.equal(written(), 0, "batched for the end of the turn");
    sink.close(1001, "going away");
    // Two text frames of 1 byte (2 bytes of header each), then the close.
    assert.equal(writtenAtClose, 6, "the turn's frames went out first");
    assert.deepEqual(ws.calls, ["close 1001 going away"]);
    assert.equal(
      Buffer.concat(ws.writes).toString("latin1"),
      "\x81\x01a\x81\x01b",
    );
    sink.send(new StreamEvent({ epoch: "e", seq: 2 }, "c"));
    await nextTurn();
    assert.equal(written(), 6, "nothing written after the close frame");
  });

  test("node adapter: a hub closes a subscriber whose peer never reads with 1008 once its queue passes -max-queue, and not before", async () => {
    const maxQueueBytes = 64 * 1024;
    const hub = createHub({ maxQueueBytes });
    const topic = hub.addTopic("events", "e");
    const ws = fakeWs();
    topic.subscribe(support.createSink(ws, "raw"));
    const size = 1024;
    let published = 0;
    // Turn by turn, as a publisher's POSTs arrive: what was written stays in
    // the stream's buffer because the peer never reads.
    while (ws.calls.length === 0 && published < 1000) {
      for (let i = 0; i < 16; i++) {
        topic.publish(`${published++}:`.padEnd(size, "x"));
      }
      await nextTurn();
    }
    assert.equal(ws.calls.length, 1, `closed once after ${published} events`);
    assert.match(ws.calls[0], /^close 1008 slow consumer/);
    const bound = maxQueueBytes / (size + 4);
    assert.ok(
      published > bound && published <= bound + 32,
      `closed after ${published} events of ${size} B; the bound is ${bound}`,
    );
    assert.equal(hub.stats.slowDisconnects, 1);
    assert.equal(topic.counts.websocket, 0);
    hub.close(1001, "test over");
  });
});
