/**
 * Raw clients over node:net for integration tests that need what a real
 * WebSocket client never does: stop reading, ignore pings, send invalid,
 * oversized, unmasked or truncated frames, skip handshake headers, or write
 * garbage HTTP. Also a few small helpers shared by the issue-4 tests.
 */

import { randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { connect as connectTls } from "node:tls";
import {
  acceptKey,
  answerSse,
  answerUpgrade,
  listenRaw,
  onRequestHead,
} from "./_raw_server.ts";

/** One frame as received from the server (servers never mask). */
export interface Frame {
  fin: boolean;
  rsv: number;
  opcode: number;
  payload: Uint8Array;
}

/** Options of {@link rawConnect}. */
export interface RawConnectOptions {
  /** Extra headers; a `null` value removes a default header. */
  headers?: Record<string, string | null>;
  /** Answer pings with pongs (default true; false makes a half-open peer). */
  autoPong?: boolean;
  /** Answer a close frame with a close frame (default true). */
  autoClose?: boolean;
  /** Pause reading right after the handshake (a subscriber that never reads). */
  pauseAfterHandshake?: boolean;
  /** Give up on the handshake after this long. @default {5000} */
  timeoutMs?: number;
  /** Connect over TLS (wss://), trusting these PEM certificates. */
  tls?: { ca: string[] };
}

/** A raw WebSocket client connection. */
export interface RawWs {
  socket: Socket;
  /** HTTP status of the handshake answer. */
  status: number;
  /** Response headers, lower-case names. */
  headers: Record<string, string>;
  /** The response body when the upgrade was refused. */
  body: string;
  /** Every frame received after the handshake. */
  frames: Frame[];
  /** Text messages (reassembled from fragments). */
  messages: string[];
  /** Pings received. */
  pings: number;
  /** The server's close frame, once received. */
  closeFrame: { code: number; reason: string } | null;
  /** Resolves when the TCP connection has ended (either side). */
  ended: Promise<void>;
  isEnded(): boolean;
  /** Time the TCP connection ended (Date.now()), or 0. */
  endedAt(): number;
  /** Writes one frame. */
  send(
    opcode: number,
    payload: Uint8Array | string,
    options?: FrameOptions,
  ): void;
  /** Writes bytes as they are. */
  write(bytes: Uint8Array | string): void;
  pause(): void;
  resume(): void;
  destroy(): void;
}

/** How to build a frame. */
export interface FrameOptions {
  fin?: boolean;
  /** Reserved bits RSV1..3 as a 3-bit number. */
  rsv?: number;
  /** Mask the payload, as a client must (default true). */
  mask?: boolean;
  /** Declare this payload length instead of the real one (truncated frames). */
  declaredLength?: number;
}

const ENCODER = new TextEncoder();

/**
 * Encodes one WebSocket frame.
 *
 * @param opcode The opcode (0-15).
 * @param payload The payload.
 * @param options Bits, masking, a false length.
 * @returns The frame bytes.
 */
export function encodeFrame(
  opcode: number,
  payload: Uint8Array | string,
  options: FrameOptions = {},
): Uint8Array {
  const data = typeof payload === "string" ? ENCODER.encode(payload) : payload;
  const mask = options.mask ?? true;
  const length = options.declaredLength ?? data.byteLength;
  const head: number[] = [
    ((options.fin ?? true) ? 0x80 : 0) | ((options.rsv ?? 0) & 7) << 4 |
    (opcode & 15),
  ];
  const maskBit = mask ? 0x80 : 0;
  if (length < 126) head.push(maskBit | length);
  else if (length < 65536) head.push(maskBit | 126, length >> 8, length & 255);
  else {
    head.push(maskBit | 127, 0, 0);
    const high = Math.floor(length / 2 ** 32);
    head.push((high >> 8) & 255, high & 255);
    head.push(
      (length >>> 24) & 255,
      (length >>> 16) & 255,
      (length >>> 8) & 255,
      length & 255,
    );
  }
  const key = mask ? randomBytes(4) : new Uint8Array(0);
  const out = new Uint8Array(head.length + key.length + data.byteLength);
  out.set(head, 0);
  out.set(key, head.length);
  for (let i = 0; i < data.byteLength; i++) {
    out[head.length + key.length + i] = mask ? data[i] ^ key[i & 3] : data[i];
  }
  return out;
}

/** A close frame payload: code and reason. */
export function closePayload(code: number, reason = ""): Uint8Array {
  const text = ENCODER.encode(reason);
  const out = new Uint8Array(2 + text.byteLength);
  out[0] = code >> 8;
  out[1] = code & 255;
  out.set(text, 2);
  return out;
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  if (a.byteLength === 0) return b;
  const out = new Uint8Array(a.byteLength + b.byteLength);
  out.set(a, 0);
  out.set(b, a.byteLength);
  return out;
}

/** Parses as many whole server frames as `buffer` holds. */
function parseFrames(
  buffer: Uint8Array,
  onFrame: (frame: Frame) => void,
): Uint8Array {
  let offset = 0;
  while (buffer.byteLength - offset >= 2) {
    const b0 = buffer[offset];
    const b1 = buffer[offset + 1];
    let length = b1 & 127;
    let header = 2;
    if (length === 126) {
      if (buffer.byteLength - offset < 4) break;
      length = buffer[offset + 2] << 8 | buffer[offset + 3];
      header = 4;
    } else if (length === 127) {
      if (buffer.byteLength - offset < 10) break;
      length = 0;
      for (let i = 2; i < 10; i++) length = length * 256 + buffer[offset + i];
      header = 10;
    }
    const masked = (b1 & 128) !== 0;
    if (masked) header += 4;
    if (buffer.byteLength - offset < header + length) break;
    let payload = buffer.slice(offset + header, offset + header + length);
    if (masked) {
      const key = buffer.slice(offset + header - 4, offset + header);
      payload = payload.map((byte, i) => byte ^ key[i & 3]);
    }
    onFrame({
      fin: (b0 & 128) !== 0,
      rsv: (b0 >> 4) & 7,
      opcode: b0 & 15,
      payload,
    });
    offset += header + length;
  }
  return buffer.slice(offset);
}

function headerEnd(buffer: Uint8Array): number {
  for (let i = 3; i < buffer.byteLength; i++) {
    if (
      buffer[i] === 10 && buffer[i - 1] === 13 && buffer[i - 2] === 10 &&
      buffer[i - 3] === 13
    ) return i + 1;
  }
  return -1;
}

/**
 * Opens a WebSocket by hand over TCP. Resolves once the server has answered
 * the handshake (101 or a refusal with its body read).
 *
 * @param url ws://127.0.0.1:PORT/path?query
 * @param options Headers and behaviour.
 * @returns The connection.
 */
export function rawConnect(
  url: string,
  options: RawConnectOptions = {},
): Promise<RawWs> {
  const target = new URL(url);
  const key = randomBytes(16).toString("base64");
  const headers: Record<string, string | null> = {
    Host: target.host,
    Upgrade: "websocket",
    Connection: "Upgrade",
    "Sec-WebSocket-Key": key,
    "Sec-WebSocket-Version": "13",
    ...options.headers,
  };
  const lines = [`GET ${target.pathname}${target.search} HTTP/1.1`];
  for (const [name, value] of Object.entries(headers)) {
    if (value !== null) lines.push(`${name}: ${value}`);
  }
  const request = lines.join("\r\n") + "\r\n\r\n";
  const autoPong = options.autoPong ?? true;
  const autoClose = options.autoClose ?? true;
  return new Promise((resolve, reject) => {
    const port = Number(target.port);
    const socket = options.tls
      ? connectTls({ host: "127.0.0.1", port, ca: options.tls.ca })
      : connect({ host: "127.0.0.1", port });
    let buffer: Uint8Array = new Uint8Array(0);
    let handshaken = false;
    let settled = false;
    let ended = false;
    let endedAt = 0;
    let fragments: Uint8Array[] = [];
    let fragmentOpcode = 0;
    let markEnded!: () => void;
    const endedPromise = new Promise<void>((done) => (markEnded = done));
    const timer = setTimeout(() => {
      if (settled) return;
      settled = true;
      socket.destroy();
      reject(new Error(`Handshake with ${url} timed out`));
    }, options.timeoutMs ?? 5000);
    const client: RawWs = {
      socket,
      status: 0,
      headers: {},
      body: "",
      frames: [],
      messages: [],
      pings: 0,
      closeFrame: null,
      ended: endedPromise,
      isEnded: () => ended,
      endedAt: () => endedAt,
      send(opcode, payload, frameOptions) {
        if (!socket.destroyed) {
          socket.write(encodeFrame(opcode, payload, frameOptions));
        }
      },
      write(bytes) {
        if (!socket.destroyed) {
          socket.write(
            typeof bytes === "string" ? ENCODER.encode(bytes) : bytes,
          );
        }
      },
      pause: () => void socket.pause(),
      resume: () => void socket.resume(),
      destroy: () => void socket.destroy(),
    };
    const onFrame = (frame: Frame): void => {
      client.frames.push(frame);
      if (frame.opcode === 9) {
        client.pings++;
        if (autoPong) client.send(10, frame.payload);
      } else if (frame.opcode === 8) {
        const view = frame.payload;
        client.closeFrame = {
          code: view.byteLength >= 2 ? view[0] << 8 | view[1] : 1005,
          reason: new TextDecoder().decode(view.slice(2)),
        };
        if (autoClose) client.send(8, view.slice(0, 2));
      } else if (
        frame.opcode === 1 || frame.opcode === 2 || frame.opcode === 0
      ) {
        if (frame.opcode !== 0) fragmentOpcode = frame.opcode;
        fragments.push(frame.payload);
        if (frame.fin) {
          const whole = fragments.reduce(concat, new Uint8Array(0));
          fragments = [];
          client.messages.push(
            fragmentOpcode === 1
              ? new TextDecoder().decode(whole)
              : `<binary ${whole.byteLength}>`,
          );
        }
      }
    };
    const finish = (): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      resolve(client);
    };
    socket.on("data", (chunk: Uint8Array) => {
      buffer = concat(
        buffer,
        new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength),
      );
      if (!handshaken) {
        const end = headerEnd(buffer);
        if (end < 0) return;
        const head = new TextDecoder().decode(buffer.slice(0, end));
        const [statusLine, ...rest] = head.trim().split("\r\n");
        client.status = Number(statusLine.split(" ")[1]);
        for (const line of rest) {
          const colon = line.indexOf(":");
          if (colon > 0) {
            client.headers[line.slice(0, colon).trim().toLowerCase()] = line
              .slice(colon + 1).trim();
          }
        }
        buffer = buffer.slice(end);
        handshaken = true;
        if (client.status === 101) {
          const expected = acceptKey(key);
          if (
            headers["Sec-WebSocket-Key"] === key &&
            client.headers["sec-websocket-accept"] !== expected
          ) {
            socket.destroy();
            settled = true;
            clearTimeout(timer);
            reject(new Error(`Bad Sec-WebSocket-Accept from ${url}`));
            return;
          }
          if (options.pauseAfterHandshake) socket.pause();
          finish();
        }
      }
      if (client.status === 101) {
        buffer = parseFrames(buffer, onFrame);
      } else {
        client.body = new TextDecoder().decode(buffer);
        const length = Number(client.headers["content-length"] ?? NaN);
        if (Number.isFinite(length) && buffer.byteLength >= length) finish();
      }
    });
    const onEnd = (): void => {
      if (!ended) {
        ended = true;
        endedAt = Date.now();
        markEnded();
      }
      if (!settled) {
        if (handshaken) finish();
        else {
          settled = true;
          clearTimeout(timer);
          reject(
            new Error(`Connection to ${url} ended before the handshake answer`),
          );
        }
      }
    };
    socket.on("end", () => {
      socket.end();
      onEnd();
    });
    socket.on("close", onEnd);
    socket.on("error", () => onEnd());
    socket.on(
      options.tls ? "secureConnect" : "connect",
      () => socket.write(request),
    );
  });
}

/**
 * Sends raw bytes to 127.0.0.1:port and collects what comes back until the
 * server closes, `quietMs` pass without data, or `timeoutMs` pass.
 *
 * @returns The answer as latin1 text ("" when none).
 */
export function rawExchange(
  port: number,
  bytes: Uint8Array | string,
  options: { quietMs?: number; timeoutMs?: number; halfClose?: boolean } = {},
): Promise<string> {
  return new Promise((resolve) => {
    const socket = connect({ host: "127.0.0.1", port });
    let answer = "";
    let quiet: ReturnType<typeof setTimeout> | undefined;
    const done = (): void => {
      clearTimeout(quiet);
      clearTimeout(hard);
      socket.destroy();
      resolve(answer);
    };
    const hard = setTimeout(done, options.timeoutMs ?? 2000);
    const arm = (): void => {
      clearTimeout(quiet);
      quiet = setTimeout(done, options.quietMs ?? 300);
    };
    socket.on("connect", () => {
      socket.write(typeof bytes === "string" ? ENCODER.encode(bytes) : bytes);
      if (options.halfClose) socket.end();
      arm();
    });
    socket.on("data", (chunk: Uint8Array) => {
      answer += String.fromCharCode(
        ...new Uint8Array(chunk.buffer, chunk.byteOffset, chunk.byteLength)
          .slice(0, 4096),
      );
      arm();
    });
    socket.on("end", done);
    socket.on("close", done);
    socket.on("error", done);
  });
}

/** The resident set size of a process in bytes (Linux /proc), or NaN. */
export function rssOf(pid: number): number {
  try {
    const status = readFileSync(`/proc/${pid}/status`, "utf8");
    const match = /VmRSS:\s+(\d+)\s+kB/.exec(status);
    return match ? Number(match[1]) * 1024 : NaN;
  } catch {
    return NaN;
  }
}

/** Reads one sample (without labels, or with the exact label text) from /metrics. */
export async function metric(
  base: string,
  name: string,
  labels = "",
): Promise<number> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return metricIn(text, name, labels);
}

/** Reads one sample from Prometheus text. */
export function metricIn(text: string, name: string, labels = ""): number {
  for (const line of text.split("\n")) {
    if (line.startsWith("#")) continue;
    const space = line.lastIndexOf(" ");
    if (line.slice(0, space) === `${name}${labels}`) {
      return Number(line.slice(space + 1));
    }
  }
  return NaN;
}

/** A seeded PRNG (mulberry32) so a fuzz run can be replayed. */
export function createRandom(
  seed: number,
): { next(): number; int(n: number): number; pick<T>(items: readonly T[]): T } {
  let state = seed >>> 0;
  const next = (): number => {
    state = (state + 0x6D2B79F5) >>> 0;
    let t = state;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (n) => Math.floor(next() * n),
    pick: (items) => items[Math.floor(next() * items.length)],
  };
}

/** A keep-alive HTTP/1.1 connection that POSTs one request at a time (lighter than fetch on Node). */
export interface RawPublisher {
  /** POSTs `body` to `/path`; resolves with the status and the response body. */
  post(
    body: string | Uint8Array,
    headers?: Record<string, string>,
  ): Promise<{ status: number; body: string }>;
  close(): void;
}

/**
 * Opens a keep-alive connection for publishing.
 *
 * @param port The server's port on 127.0.0.1.
 * @param path The stream path without a leading slash.
 * @returns The publisher.
 */
export function rawPublisher(
  port: number,
  path: string,
): Promise<RawPublisher> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.setNoDelay(true);
    let buffer = "";
    let waiting: {
      resolve(answer: { status: number; body: string }): void;
      reject(error: Error): void;
    } | undefined;
    const fail = (error: Error): void => {
      waiting?.reject(error);
      waiting = undefined;
    };
    socket.setEncoding("latin1");
    socket.on("data", (chunk: string) => {
      buffer += chunk;
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0 || waiting === undefined) return;
      const head = buffer.slice(0, end);
      const length = Number(
        /\r\ncontent-length:\s*(\d+)/i.exec(head)?.[1] ?? NaN,
      );
      if (!Number.isFinite(length)) {
        return fail(new Error(`No Content-Length in ${JSON.stringify(head)}`));
      }
      if (buffer.length < end + 4 + length) return;
      const body = buffer.slice(end + 4, end + 4 + length);
      buffer = buffer.slice(end + 4 + length);
      const done = waiting;
      waiting = undefined;
      done.resolve({ status: Number(head.split(" ")[1]), body });
    });
    socket.on("error", (error) => {
      fail(error);
      reject(error);
    });
    socket.on("close", () => fail(new Error("Publisher connection closed")));
    socket.on("connect", () =>
      resolve({
        post(body, headers = { "Content-Type": "text/plain" }) {
          const bytes = typeof body === "string" ? ENCODER.encode(body) : body;
          const lines = [
            `POST /${path} HTTP/1.1`,
            `Host: 127.0.0.1:${port}`,
            `Content-Length: ${bytes.byteLength}`,
          ];
          for (const [name, value] of Object.entries(headers)) {
            lines.push(`${name}: ${value}`);
          }
          return new Promise((ok, no) => {
            waiting = { resolve: ok, reject: no };
            socket.write(lines.join("\r\n") + "\r\n\r\n");
            socket.write(bytes);
          });
        },
        close: () => void socket.destroy(),
      }));
  });
}

/**
 * Publishes `count` events over `concurrency` keep-alive connections, each
 * with one request in flight, and checks every answer is 202.
 *
 * @returns The time the last answer arrived (Date.now()).
 */
export async function publishMany(
  port: number,
  path: string,
  count: number,
  body: (i: number) => string,
  concurrency = 4,
): Promise<number> {
  const publishers = await Promise.all(
    Array.from({ length: concurrency }, () => rawPublisher(port, path)),
  );
  let next = 0;
  try {
    await Promise.all(publishers.map(async (publisher) => {
      while (next < count) {
        const i = next++;
        const answer = await publisher.post(body(i));
        if (answer.status !== 202) {
          throw new Error(
            `Publish ${i} answered ${answer.status} ${answer.body}`,
          );
        }
      }
    }));
  } finally {
    for (const publisher of publishers) publisher.close();
  }
  return Date.now();
}

/**
 * The state of the server side of a loopback TCP connection, from
 * /proc/net/tcp (Linux): "01" is ESTABLISHED, "gone" when not listed.
 *
 * @param serverPort The server's port.
 * @param clientPort The client's local port.
 * @returns The state in hex, as the kernel lists it.
 */
export function serverSideState(
  serverPort: number,
  clientPort: number,
): string {
  const hex = (n: number): string =>
    n.toString(16).toUpperCase().padStart(4, "0");
  for (const file of ["/proc/net/tcp", "/proc/net/tcp6"]) {
    let text = "";
    try {
      text = readFileSync(file, "utf8");
    } catch {
      continue;
    }
    for (const line of text.split("\n").slice(1)) {
      const fields = line.trim().split(/\s+/);
      if (
        fields.length > 3 && fields[1].endsWith(`:${hex(serverPort)}`) &&
        fields[2].endsWith(`:${hex(clientPort)}`)
      ) return fields[3];
    }
  }
  return "gone";
}

/** A fake upstream that accepts connections, says one heartbeat, then goes silent. */
export interface SilentUpstream {
  port: number;
  /** Date.now() of each accepted stream (WebSocket handshake or SSE request). */
  accepted: number[];
  close(): Promise<void>;
}

/**
 * Starts a fake upstream on 127.0.0.1 that answers a WebSocket handshake
 * (`"ws"`) or an SSE request (`"sse"`), sends one heartbeat
 * (`{"type":"heartbeat"}` or `: heartbeat`), then nothing, keeping the
 * connection open.
 *
 * @param kind The protocol to fake.
 * @returns The running fake.
 */
export function startSilentUpstream(
  kind: "ws" | "sse",
): Promise<SilentUpstream> {
  const accepted: number[] = [];
  return listenRaw((socket) => {
    // Frames after the head are ignored: we never answer.
    onRequestHead(socket, (head) => {
      accepted.push(Date.now());
      if (kind === "ws") {
        answerUpgrade(socket, head);
        socket.write(encodeFrame(1, '{"type":"heartbeat"}', { mask: false }));
      } else {
        answerSse(socket, "chunked");
        const body = "retry: 1000\n: heartbeat\n\n";
        socket.write(`${body.length.toString(16)}\r\n${body}\r\n`);
      }
    });
  }).then((server) => ({ port: server.port, accepted, close: server.close }));
}

/** A raw SSE request: the answer's status and headers, then the streamed text. */
export interface RawSse {
  status: number;
  headers: Record<string, string>;
  /** Everything received after the header block (still chunk-encoded). */
  text(): string;
  ended(): boolean;
  close(): void;
}

/**
 * GETs `path` with `Accept: text/event-stream` and `headers` over TCP (so
 * any header, Origin included, goes out as written).
 *
 * @param port The server's port on 127.0.0.1.
 * @param path The path with its query.
 * @param headers Extra headers.
 * @returns Once the response head has arrived.
 */
export function rawSse(
  port: number,
  path: string,
  headers: Record<string, string> = {},
): Promise<RawSse> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: "127.0.0.1", port });
    socket.setEncoding("utf8");
    let buffer = "";
    let body = "";
    let head: { status: number; headers: Record<string, string> } | undefined;
    let ended = false;
    const timer = setTimeout(() => {
      socket.destroy();
      reject(new Error(`No answer to GET ${path}`));
    }, 5000);
    socket.on("data", (chunk: string) => {
      if (head !== undefined) {
        body += chunk;
        return;
      }
      buffer += chunk;
      const end = buffer.indexOf("\r\n\r\n");
      if (end < 0) return;
      const [statusLine, ...lines] = buffer.slice(0, end).split("\r\n");
      const parsed: Record<string, string> = {};
      for (const line of lines) {
        const colon = line.indexOf(":");
        if (colon > 0) {
          parsed[line.slice(0, colon).trim().toLowerCase()] = line.slice(
            colon + 1,
          ).trim();
        }
      }
      head = { status: Number(statusLine.split(" ")[1]), headers: parsed };
      body = buffer.slice(end + 4);
      clearTimeout(timer);
      resolve({
        status: head.status,
        headers: head.headers,
        text: () => body,
        ended: () => ended,
        close: () => void socket.destroy(),
      });
    });
    const onEnd = (): void => {
      ended = true;
    };
    socket.on("end", onEnd);
    socket.on("close", onEnd);
    socket.on("error", (error) => {
      onEnd();
      if (head === undefined) {
        clearTimeout(timer);
        reject(error);
      }
    });
    socket.on("connect", () => {
      const lines = [
        `GET ${path} HTTP/1.1`,
        `Host: 127.0.0.1:${port}`,
        "Accept: text/event-stream",
      ];
      for (const [name, value] of Object.entries(headers)) {
        lines.push(`${name}: ${value}`);
      }
      socket.write(lines.join("\r\n") + "\r\n\r\n");
    });
  });
}
