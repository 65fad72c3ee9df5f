/**
 * Connection churn against one instance: subscribers over WebSocket and
 * SSE that connect, receive a little and leave, half of them cleanly
 * (a WebSocket close handshake, an SSE FIN) and half by an abort (a TCP
 * RST), a fixed number in flight at any time. Raw `node:net` sockets, so
 * the client costs little and works the same on Deno, Bun and Node.
 * Used by `bench/churn.ts` and by the churn integration test.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { readdirSync, readFileSync } from "node:fs";
import { connect, type Socket } from "node:net";

/** Options of {@link churn}. */
export interface ChurnOptions {
  /** Host of the instance. @default {"127.0.0.1"} */
  host?: string;
  /** Port of the instance. */
  port: number;
  /** Path served. @default {"events"} */
  path?: string;
  /** Connections to make in all (half WebSocket, half SSE). */
  total: number;
  /** Connections in flight at once. @default {200} */
  concurrency?: number;
  /**
   * Bytes after the response headers a subscriber waits for before it
   * leaves (the first event(s)). @default {1}
   */
  receiveBytes?: number;
  /** Gives up on one connection after this long. @default {10000} */
  connectionTimeoutMs?: number;
  /** Which kinds, taken in turn. @default {all four} */
  kinds?: readonly Kind[];
  /** Called every `progressEvery` finished connections. */
  onProgress?(done: number): void;
  /** @default {10000} */
  progressEvery?: number;
}

/** What {@link churn} did. */
export interface ChurnResult {
  /** Connections that got their bytes and left as planned. */
  completed: number;
  /** Connections that failed or timed out (with the first few reasons). */
  failed: number;
  reasons: string[];
  /** Per kind: WebSocket/SSE, clean/abort. */
  kinds: Record<"wsClean" | "wsAbort" | "sseClean" | "sseAbort", number>;
  /** Wall time, ms. */
  elapsedMs: number;
}

/** A subscriber's transport and way of leaving. */
export type Kind = keyof ChurnResult["kinds"];
const KINDS: readonly Kind[] = ["wsClean", "sseAbort", "wsAbort", "sseClean"];

// A masked close frame with code 1000 and mask 0 (a zero mask leaves the
// payload as is).
const WS_CLOSE = Buffer.from([0x88, 0x82, 0, 0, 0, 0, 0x03, 0xe8]);
const HEADER_END = Buffer.from("\r\n\r\n");

function request(kind: Kind, host: string, port: number, path: string): string {
  const lines = [`GET /${path} HTTP/1.1`, `Host: ${host}:${port}`];
  if (kind.startsWith("ws")) {
    lines.push(
      "Upgrade: websocket",
      "Connection: Upgrade",
      "Sec-WebSocket-Version: 13",
      `Sec-WebSocket-Key: ${
        Buffer.from(String(Math.random()).slice(2, 18).padEnd(16, "0"))
          .toString("base64")
      }`,
    );
  } else {
    lines.push("Accept: text/event-stream");
  }
  return lines.join("\r\n") + "\r\n\r\n";
}

/** One subscriber's life; resolves with an error message or "". */
function once(
  kind: Kind,
  options: ChurnOptions,
): Promise<string> {
  const host = options.host ?? "127.0.0.1";
  const want = options.receiveBytes ?? 1;
  return new Promise((done) => {
    let head = Buffer.alloc(0);
    let headersRead = false;
    let body = 0;
    let leaving = false;
    let settled = false;
    const finish = (error: string): void => {
      if (settled) return;
      settled = true;
      clearTimeout(timer);
      if (!socket.destroyed) socket.destroy();
      done(error);
    };
    const socket: Socket = connect({ host, port: options.port });
    const timer = setTimeout(
      () => finish(`${kind}: timed out`),
      options.connectionTimeoutMs ?? 10_000,
    );
    socket.setNoDelay(true);
    socket.on("error", (e) => finish(`${kind}: ${e.message}`));
    socket.on("close", () => {
      finish(leaving ? "" : `${kind}: closed by the server before leaving`);
    });
    socket.on("connect", () => {
      socket.write(request(kind, host, options.port, options.path ?? "events"));
    });
    socket.on("data", (chunk: Buffer) => {
      if (leaving) return;
      if (!headersRead) {
        head = Buffer.concat([head, chunk]);
        const end = head.indexOf(HEADER_END);
        if (end < 0) return;
        const status = head.subarray(0, head.indexOf("\r\n")).toString();
        const expected = kind.startsWith("ws") ? " 101 " : " 200 ";
        if (!status.includes(expected)) {
          return finish(`${kind}: unexpected status line ${status}`);
        }
        headersRead = true;
        body = head.byteLength - end - 4;
      } else {
        body += chunk.byteLength;
      }
      // SSE's first bytes are the `retry:` and `: connected` lines: wait
      // for more than those so an event came too.
      const needed = kind.startsWith("sse") ? want + 24 : want;
      if (body < needed) return;
      leaving = true;
      switch (kind) {
        case "wsClean":
          // The close handshake; the server answers and closes.
          socket.end(WS_CLOSE);
          break;
        case "sseClean":
          socket.end();
          break;
        default:
          socket.resetAndDestroy();
          finish("");
      }
    });
  });
}

/**
 * Runs the churn and resolves when every connection has finished.
 *
 * @param options Where and how much.
 * @returns Counts and timing.
 */
export async function churn(options: ChurnOptions): Promise<ChurnResult> {
  const started = Date.now();
  const result: ChurnResult = {
    completed: 0,
    failed: 0,
    reasons: [],
    kinds: { wsClean: 0, wsAbort: 0, sseClean: 0, sseAbort: 0 },
    elapsedMs: 0,
  };
  let next = 0;
  const every = options.progressEvery ?? 10_000;
  const worker = async (): Promise<void> => {
    while (next < options.total) {
      const kinds = options.kinds ?? KINDS;
      const kind = kinds[next++ % kinds.length];
      const error = await once(kind, options);
      if (error === "") {
        result.completed++;
        result.kinds[kind]++;
      } else {
        result.failed++;
        if (result.reasons.length < 5) result.reasons.push(error);
      }
      const finished = result.completed + result.failed;
      if (finished % every === 0) options.onProgress?.(finished);
    }
  };
  const workers = Math.min(options.concurrency ?? 200, options.total);
  await Promise.all(Array.from({ length: workers }, worker));
  result.elapsedMs = Date.now() - started;
  return result;
}

/** What `/proc/<pid>` says about a process (Linux). */
export interface ProcSample {
  /** Resident set size, bytes. */
  rssBytes: number;
  /** Open file descriptors. */
  fds: number;
}

/**
 * Reads a process's resident memory and open file descriptors.
 *
 * @param pid The process.
 * @returns The sample.
 */
export function procSample(pid: number): ProcSample {
  const status = readFileSync(`/proc/${pid}/status`, "utf8");
  const rss = /VmRSS:\s+(\d+) kB/.exec(status);
  if (rss === null) throw new Error(`Cannot read VmRSS of process ${pid}`);
  return {
    rssBytes: Number(rss[1]) * 1024,
    fds: readdirSync(`/proc/${pid}/fd`).length,
  };
}

/**
 * The arguments that start `cli.ts` on a runtime with `gc()` exposed, so
 * that SIGUSR2 collects (see `Runtime.collectOnSignal`).
 *
 * @param runtime Which runtime.
 * @param cli Path of cli.ts.
 * @returns Arguments before the wsevent flags.
 */
export function gcExposedArgs(
  runtime: "deno" | "bun" | "node",
  cli: string,
): string[] {
  if (runtime === "deno") return ["run", "-A", "--v8-flags=--expose-gc", cli];
  return ["--expose-gc", cli];
}
