import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  createSocketSink,
  type SocketOps,
} from "../../src/http/socket_sink.ts";
import { StreamEvent } from "../../src/event.ts";

type Frame =
  | { kind: "text"; text: string; bytes: Uint8Array | undefined }
  | { kind: "binary"; bytes: Uint8Array }
  | { kind: "close"; code: number; reason: string }
  | { kind: "ping" }
  | { kind: "terminate" };

// The fake is both the operations and the socket they are given, so a
// test also sees that the sink passes its socket to every operation.
interface FakeOps extends SocketOps<FakeOps> {
  frames: Frame[];
  bufferedBytes: number;
  pong: boolean;
}

function fakeOps(
  options: { ping?: boolean; terminate?: boolean } = {},
): FakeOps {
  const ops: FakeOps = {
    frames: [],
    bufferedBytes: 0,
    pong: true,
    text(socket, text, bytes) {
      socket.frames.push({ kind: "text", text, bytes });
    },
    binary(socket, bytes) {
      socket.frames.push({ kind: "binary", bytes });
    },
    buffered: (socket) => socket.bufferedBytes,
    close(socket, code, reason) {
      socket.frames.push({ kind: "close", code, reason });
    },
  };
  if (options.ping) {
    ops.ping = (socket) => {
      socket.frames.push({ kind: "ping" });
      const answered = socket.pong;
      socket.pong = false;
      return answered;
    };
  }
  if (options.terminate) {
    ops.terminate = (socket) => socket.frames.push({ kind: "terminate" });
  }
  return ops;
}

const TEXT = new StreamEvent({ epoch: "e", seq: 1 }, "hello\n");
const BINARY = new StreamEvent({ epoch: "e", seq: 2 }, new Uint8Array([1, 2]));
const NOTICE = { lastEventId: "e-0", reason: "gone" };

describe("createSocketSink()", () => {
  test("createSocketSink() raw sends text payloads as text frames with their UTF-8", () => {
    const ops = fakeOps();
    const sink = createSocketSink(ops, ops, "raw");
    assert.equal(sink.format, "raw");
    assert.equal(sink.transport, "websocket");
    sink.send(TEXT);
    assert.deepEqual(ops.frames, [
      { kind: "text", text: "hello\n", bytes: TEXT.bytes },
    ]);
  });

  test("createSocketSink() raw sends binary payloads as binary frames", () => {
    const ops = fakeOps();
    createSocketSink(ops, ops, "raw").send(BINARY);
    assert.deepEqual(ops.frames, [{ kind: "binary", bytes: BINARY.bytes }]);
  });

  test("createSocketSink() json sends the shared envelope for text and binary", () => {
    const ops = fakeOps();
    const sink = createSocketSink(ops, ops, "json");
    sink.send(TEXT);
    sink.send(BINARY);
    assert.deepEqual(ops.frames, [
      { kind: "text", text: TEXT.json, bytes: undefined },
      { kind: "text", text: BINARY.json, bytes: undefined },
    ]);
    assert.deepEqual(JSON.parse(TEXT.json), { id: "e-1", data: "hello\n" });
  });

  test("createSocketSink() send and queued report the socket's buffered bytes", () => {
    const ops = fakeOps();
    const sink = createSocketSink(ops, ops, "raw");
    ops.bufferedBytes = 1234;
    assert.equal(sink.send(TEXT), 1234);
    assert.equal(sink.queued(), 1234);
  });

  test("createSocketSink() sends gap notices only in json format", () => {
    const json = fakeOps();
    createSocketSink(json, json, "json").notify(NOTICE);
    assert.equal(json.frames.length, 1);
    const frame = json.frames[0];
    assert.equal(frame.kind, "text");
    if (frame.kind === "text") {
      assert.deepEqual(JSON.parse(frame.text), { type: "gap", ...NOTICE });
    }
    const raw = fakeOps();
    createSocketSink(raw, raw, "raw").notify(NOTICE);
    assert.deepEqual(raw.frames, []);
  });

  test("createSocketSink() closes once and sends no notice after close", () => {
    const ops = fakeOps();
    const sink = createSocketSink(ops, ops, "json");
    sink.close(1008, "slow");
    sink.close(1001, "again");
    sink.notify(NOTICE);
    sink.heartbeat();
    assert.deepEqual(ops.frames, [{
      kind: "close",
      code: 1008,
      reason: "slow",
    }]);
  });

  test("createSocketSink() heartbeat pings and, in json, sends a heartbeat message", () => {
    const ops = fakeOps({ ping: true, terminate: true });
    const sink = createSocketSink(ops, ops, "json");
    sink.heartbeat();
    assert.deepEqual(ops.frames, [
      { kind: "ping" },
      { kind: "text", text: '{"type":"heartbeat"}', bytes: undefined },
    ]);
    const raw = fakeOps({ ping: true });
    createSocketSink(raw, raw, "raw").heartbeat();
    assert.deepEqual(raw.frames, [{ kind: "ping" }]);
  });

  test("createSocketSink() terminates a peer that did not answer the last ping", () => {
    const ops = fakeOps({ ping: true, terminate: true });
    const sink = createSocketSink(ops, ops, "raw");
    sink.heartbeat(); // answered (initial state)
    sink.heartbeat(); // the first ping was never answered
    sink.heartbeat(); // nothing more after termination
    sink.close(1001, "late");
    assert.deepEqual(ops.frames, [
      { kind: "ping" },
      { kind: "ping" },
      { kind: "terminate" },
    ]);
  });

  test("createSocketSink() closes with 1001 when a dead peer cannot be terminated", () => {
    const ops = fakeOps({ ping: true });
    ops.pong = false;
    createSocketSink(ops, ops, "raw").heartbeat();
    assert.deepEqual(ops.frames, [
      { kind: "ping" },
      { kind: "close", code: 1001, reason: "heartbeat timeout" },
    ]);
  });

  test("createSocketSink() heartbeat without ping (runtime pings) sends only the json heartbeat", () => {
    const ops = fakeOps();
    createSocketSink(ops, ops, "raw").heartbeat();
    assert.deepEqual(ops.frames, []);
    createSocketSink(ops, ops, "json").heartbeat();
    assert.deepEqual(ops.frames, [
      { kind: "text", text: '{"type":"heartbeat"}', bytes: undefined },
    ]);
  });
});
