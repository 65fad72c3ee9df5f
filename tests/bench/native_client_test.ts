/**
 * The benchmark's native load client (bench/native/client.c), built as the
 * runner builds it and run against a real wsevent server on this runtime:
 * the ready/go/result exchange, nothing lost or duplicated over WebSocket
 * and SSE, flat out and at a steady rate, and an error line for bad input.
 * The server pings every 250 ms, so the client has to answer pings too.
 * A fake server then sends what wsevent does not: fragmented frames, 16 and
 * 64-bit lengths, pings between messages, SSE with CRLF, ids, comments and
 * close-delimited bodies, each message split across two reads.
 *
 * @module
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { Buffer } from "node:buffer";
import type { Socket } from "node:net";
import { fileURLToPath } from "node:url";
import { buildNativeClient } from "../../bench/native/build.ts";
import { encodeFrame } from "../integration/_raw_ws.ts";
import { listenRaw, type RawServer } from "../integration/_raw_server.ts";
import type {
  ClientConfig,
  ClientMessage,
  ResultMessage,
} from "../../bench/lib/protocol.ts";
import { freePort, type Service, startHub } from "../integration/_helpers.ts";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CLIENT_TIMEOUT_MS = 20_000;
const SUBSCRIBERS_PER_GROUP = 10;

/** What a client run printed, and how it ended. */
interface Run {
  code: number | null;
  messages: ClientMessage[];
  stderr: string;
  elapsedMs: number;
}

/**
 * Runs the client with `args`, answers its ready line with `go`, and
 * resolves once it exits (killed after {@link CLIENT_TIMEOUT_MS}).
 */
function runClient(binary: string, args: string[]): Promise<Run> {
  return new Promise((resolve, reject) => {
    const started = performance.now();
    const child = spawn(binary, args, {
      cwd: ROOT,
      stdio: ["pipe", "pipe", "pipe"],
    });
    const messages: ClientMessage[] = [];
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (chunk: string) => {
      stdout += chunk;
      let end = stdout.indexOf("\n");
      while (end !== -1) {
        const message = JSON.parse(stdout.slice(0, end)) as ClientMessage;
        messages.push(message);
        if (message.type === "ready") child.stdin.write("go\n");
        stdout = stdout.slice(end + 1);
        end = stdout.indexOf("\n");
      }
    });
    child.stderr.setEncoding("utf8").on(
      "data",
      (chunk: string) => stderr += chunk,
    );
    // The client may exit before reading stdin (on an error).
    child.stdin.on("error", () => {});
    const timer = setTimeout(() => child.kill("SIGKILL"), CLIENT_TIMEOUT_MS);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({
        code,
        messages,
        stderr,
        elapsedMs: performance.now() - started,
      });
    });
  });
}

/** A server that speaks just enough HTTP, WebSocket and SSE, awkwardly. */
interface FakeServer extends RawServer {
  /** Pong frames received from the client. */
  pongs(): number;
}

/** A frame from the server: unmasked. */
function wsFrame(opcode: number, fin: boolean, payload: Buffer): Buffer {
  return Buffer.from(encodeFrame(opcode, payload, { fin, mask: false }));
}

/** The n-th message to a WebSocket subscriber, framed in one of four ways. */
function wsMessage(n: number, body: Buffer): Buffer {
  switch (n % 4) {
    case 0:
      return Buffer.concat([
        wsFrame(1, false, body.subarray(0, 1)),
        wsFrame(0, false, body.subarray(1, 100)),
        wsFrame(0, true, body.subarray(100)),
      ]);
    case 1:
      return wsFrame(1, true, body);
    case 2: {
      // A 64-bit length, which a server may use for any size.
      const head = Buffer.alloc(10);
      head[0] = 0x82;
      head[1] = 127;
      head.writeBigUInt64BE(BigInt(body.length), 2);
      return Buffer.concat([head, body]);
    }
    default:
      return Buffer.concat([
        wsFrame(9, true, Buffer.from("ping")),
        wsFrame(1, true, body),
      ]);
  }
}

/** The n-th message to an SSE subscriber: with CRLF, id, retry and comment, or bare. */
function sseMessage(n: number, body: Buffer): Buffer {
  return n % 2 === 0
    ? Buffer.concat([
      Buffer.from(`id: ${n}\r\nretry: 500\r\n: note\r\ndata: `),
      body,
      Buffer.from("\r\n\r\n"),
    ])
    : Buffer.concat([Buffer.from("data:"), body, Buffer.from("\n\n")]);
}

/**
 * Starts a fake server on 127.0.0.1. GET with Upgrade opens a WebSocket
 * subscriber, GET /chunked and /plain an SSE one (chunked or
 * close-delimited); each POST goes to every subscriber, written in two
 * pieces a millisecond apart so that the client reads them separately.
 */
async function startFakeServer(): Promise<FakeServer> {
  const subscribers: { send(body: Buffer): void }[] = [];
  let pongs = 0;
  let answers = 0;
  const server = await listenRaw((socket) => {
    socket.setNoDelay(true);
    let buffer = Buffer.alloc(0);
    let upgraded = false;
    socket.on("data", (chunk: Buffer) => {
      if (upgraded) {
        for (let i = 0; i < chunk.length; i++) if (chunk[i] === 0x8a) pongs++;
        return;
      }
      buffer = Buffer.concat([buffer, chunk]);
      for (;;) {
        const headEnd = buffer.indexOf("\r\n\r\n");
        if (headEnd === -1) return;
        const head = buffer.subarray(0, headEnd).toString("latin1");
        const length = Number(/content-length: *(\d+)/i.exec(head)?.[1] ?? 0);
        if (buffer.length < headEnd + 4 + length) return;
        const body = buffer.subarray(headEnd + 4, headEnd + 4 + length);
        buffer = buffer.subarray(headEnd + 4 + length);
        if (head.startsWith("POST ")) {
          // Alternately framed by Content-Length and chunked.
          socket.write(
            answers++ % 2 === 0
              ? "HTTP/1.1 202 Accepted\r\nContent-Length: 2\r\n\r\n{}"
              : "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n",
          );
          for (const s of subscribers) s.send(Buffer.from(body));
          continue;
        }
        upgraded = true;
        if (/upgrade: websocket/i.test(head)) {
          socket.write(
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n" +
              "Connection: Upgrade\r\nSec-WebSocket-Accept: x\r\n\r\n",
          );
          subscribers.push(split(socket, wsMessage));
        } else if (head.startsWith("GET /chunked ")) {
          socket.write(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n" +
              "Transfer-Encoding: chunked\r\n\r\n",
          );
          subscribers.push(split(socket, (n, body) => {
            const event = sseMessage(n, body);
            const at = 3 + (n % (event.length - 6));
            return Buffer.concat([
              Buffer.from(`${at.toString(16)}\r\n`),
              event.subarray(0, at),
              Buffer.from(`\r\n${(event.length - at).toString(16)}\r\n`),
              event.subarray(at),
              Buffer.from("\r\n"),
            ]);
          }));
        } else {
          socket.write(
            "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\n\r\n: hi\n\n",
          );
          subscribers.push(split(socket, sseMessage));
        }
        return;
      }
    });
  });
  return { ...server, pongs: () => pongs };
}

/**
 * A subscriber on `socket` whose n-th message is `encode(n, body)`, written
 * in two pieces (split at a point that moves with n) a millisecond apart.
 * Messages go out in order: each waits for the previous one.
 */
function split(
  socket: Socket,
  encode: (n: number, body: Buffer) => Buffer,
): { send(body: Buffer): void } {
  let chain = Promise.resolve();
  let n = 0;
  return {
    send(body) {
      const bytes = encode(n, body);
      const at = 1 + (n++ * 7) % (bytes.length - 1);
      chain = chain.then(async () => {
        if (socket.destroyed) return;
        socket.write(bytes.subarray(0, at));
        await new Promise((resolve) => setTimeout(resolve, 1));
        if (!socket.destroyed) socket.write(bytes.subarray(at));
      });
    },
  };
}

function config(
  url: string,
  options: { events: number; rate: number; inflight: number },
): ClientConfig {
  return {
    groups: [
      { name: "ws", url, count: SUBSCRIBERS_PER_GROUP, transport: "ws" },
      { name: "sse", url, count: SUBSCRIBERS_PER_GROUP, transport: "sse" },
    ],
    publishUrl: url,
    ...options,
    payloadBytes: 64,
    connectConcurrency: 8,
    // Wide: a quiet spell ends the wait early (counted lost), and a loaded
    // 2-core machine can stall a process for a second or more.
    quietMs: 5000,
    deadlineMs: 15_000,
    subscriberKind: "raw",
  };
}

/** Checks a run that should have delivered every event once to every subscriber. */
function assertComplete(run: Run, events: number): ResultMessage {
  const report = `exit ${run.code}\nmessages: ${
    JSON.stringify(run.messages)
  }\nstderr: ${run.stderr}`;
  assert.equal(run.code, 0, report);
  const [ready, result] = run.messages;
  assert.equal(ready?.type, "ready", report);
  if (ready.type === "ready") {
    assert.equal(ready.connected, 2 * SUBSCRIBERS_PER_GROUP, report);
  }
  assert.equal(result?.type, "result", report);
  if (result.type !== "result") throw new Error(report);
  assert.equal(result.publishErrors, 0, report);
  assert.equal(result.subscriberErrors, 0, report);
  assert.equal(result.timedOut, false, report);
  assert.deepEqual(result.groups.map((g) => g.name), ["ws", "sse"], report);
  for (const group of result.groups) {
    assert.equal(group.subscribers, SUBSCRIBERS_PER_GROUP, report);
    assert.equal(group.received, SUBSCRIBERS_PER_GROUP * events, report);
    assert.equal(group.lost, 0, report);
    assert.equal(group.duplicated, 0, report);
    const { p50, p99, max } = group.latency;
    assert.ok(p50 > 0 && p50 <= p99 && p99 <= max, report);
  }
  assert.ok(result.durationS > 0 && result.deliveriesPerS > 0, report);
  assert.ok(result.clientCpuPct >= 0, report);
  return result;
}

describe("bench/native/client.c", { timeout: 90_000 }, () => {
  let binary = "";
  let server: Service | undefined;

  before(async () => {
    // No skip without a compiler: the benchmark's default client needs one.
    binary = await buildNativeClient(ROOT);
    // Pings during every run, so the client must answer them; 100 ms
    // closed a subscriber the loaded machine kept from answering in time.
    server = await startHub(["--heartbeat", "250"]);
  });

  after(async () => {
    await server?.stop();
  });

  function eventsUrl(): string {
    assert.ok(server !== undefined, "server did not start");
    return `http://127.0.0.1:${server.port}/events`;
  }

  test("publishes flat out and every WebSocket and SSE subscriber gets every event once", async () => {
    const events = 300;
    const run = await runClient(binary, [
      JSON.stringify(config(eventsUrl(), { events, rate: 0, inflight: 4 })),
    ]);
    assertComplete(run, events);
  });

  test("publishes over one WebSocket (publishVia ws, ?publish) and every subscriber gets every event once", async () => {
    const events = 300;
    const run = await runClient(binary, [
      JSON.stringify({
        ...config(eventsUrl(), { events, rate: 0, inflight: 16 }),
        publishVia: "ws",
      }),
    ]);
    const result = assertComplete(run, events);
    assert.equal(result.publishErrors, 0, JSON.stringify(result));
  });

  test("publishVia ws to a path not served: the refused upgrade is an error line naming the 404", async () => {
    const refused = {
      ...config(eventsUrl(), { events: 10, rate: 0, inflight: 2 }),
      publishUrl: eventsUrl().replace("/events", "/nowhere"),
      publishVia: "ws",
    };
    const run = await runClient(binary, [JSON.stringify(refused)]);
    assert.equal(run.code, 1, run.stderr);
    assert.match(
      JSON.stringify(run.messages),
      /WS publish refused: HTTP\/1.1 404/,
    );
  });

  test("prints an error line and exits 1 on a publishVia other than post or ws", async () => {
    const run = await runClient(binary, [
      JSON.stringify({
        ...config(eventsUrl(), { events: 1, rate: 0, inflight: 1 }),
        publishVia: "carrier-pigeon",
      }),
    ]);
    assert.equal(run.code, 1);
    assert.match(
      JSON.stringify(run.messages),
      /publishVia must be \\"post\\" or \\"ws\\"/,
    );
  });

  test("publishes at a steady rate and every subscriber gets every event once", async () => {
    const events = 100;
    const run = await runClient(binary, [
      JSON.stringify(config(eventsUrl(), { events, rate: 200, inflight: 8 })),
    ]);
    const result = assertComplete(run, events);
    // 100 events at 200 per second take half a second.
    assert.ok(result.durationS >= 0.45, JSON.stringify(result));
  });

  test("parses fragments, long lengths, pings, chunked and plain SSE split across reads", async () => {
    const fake = await startFakeServer();
    try {
      const url = `http://127.0.0.1:${fake.port}`;
      const events = 40;
      const run = await runClient(binary, [JSON.stringify({
        ...config(`${url}/chunked`, { events, rate: 0, inflight: 4 }),
        groups: [
          { name: "ws", url: `${url}/ws`, count: 4, transport: "ws" },
          {
            name: "chunked",
            url: `${url}/chunked`,
            count: 4,
            transport: "sse",
          },
          { name: "plain", url: `${url}/plain`, count: 4, transport: "sse" },
        ],
        payloadBytes: 200,
      })]);
      const report = `${JSON.stringify(run.messages)}\n${run.stderr}`;
      assert.equal(run.code, 0, report);
      const result = run.messages[1];
      if (result?.type !== "result") throw new Error(report);
      assert.equal(result.subscriberErrors, 0, report);
      assert.equal(result.publishErrors, 0, report);
      for (const group of result.groups) {
        assert.equal(group.received, 4 * events, report);
        assert.equal(group.lost + group.duplicated, 0, report);
      }
      assert.ok(fake.pongs() > 0, "no pong answered a ping");
    } finally {
      await fake.close();
    }
  });

  test("prints an error line and exits 1 on a bad argument", async () => {
    const run = await runClient(binary, ["--bogus"]);
    assert.equal(run.code, 1);
    assert.equal(run.messages.length, 1);
    const [message] = run.messages;
    assert.equal(message.type, "error");
    if (message.type === "error") {
      assert.match(message.message, /Cannot parse the config/);
    }
  });

  test("prints an error line and exits 1 on a URL off loopback", async () => {
    const bad = config("http://192.0.2.1:80/events", {
      events: 1,
      rate: 0,
      inflight: 1,
    });
    const run = await runClient(binary, [JSON.stringify(bad)]);
    assert.equal(run.code, 1);
    assert.equal(run.messages[0]?.type, "error");
    assert.match(JSON.stringify(run.messages[0]), /Cannot parse URL/);
  });

  test("prints an error line and exits 1 when the publish URL is unreachable", async () => {
    // Free a moment ago: nothing listens there.
    const port = await freePort();
    const unreachable = {
      ...config(eventsUrl(), { events: 10, rate: 0, inflight: 2 }),
      publishUrl: `http://127.0.0.1:${port}/events`,
    };
    const run = await runClient(binary, [JSON.stringify(unreachable)]);
    assert.equal(run.code, 1, run.stderr);
    assert.equal(run.messages.length, 1, JSON.stringify(run.messages));
    const [message] = run.messages;
    assert.equal(message.type, "error");
    if (message.type === "error") {
      assert.match(message.message, /warm-up: POST failed: cannot connect/);
    }
    assert.ok(run.elapsedMs < CLIENT_TIMEOUT_MS);
  });
});
