/**
 * Child processes of the benchmark runner (Deno only): servers, whose port is
 * read from their `Serving on:` line, and the load client, which speaks JSON
 * lines (see `protocol.ts`). Also reads a process's memory and CPU time
 * from `/proc`.
 *
 * @module
 */

import type { ClientConfig, ClientMessage } from "./protocol.ts";

const SERVING_RE = /Serving on: ws:\/\/[^\s]*:(\d+)\//;
const STOP_TIMEOUT_MS = 5_000;
const TAIL_LINES = 20;
const CLOCK_TICKS_PER_S = 100;

/** A running server. */
export interface ServerProcess {
  pid: number;
  port: number;
  /** `http://127.0.0.1:PORT/events`. */
  url: string;
  /** Last lines of its stdout and stderr, for error messages. */
  tail: string[];
  /** Sends SIGTERM (SIGKILL after a timeout) and waits for the exit. */
  stop(): Promise<void>;
}

/** Calls `onLine` for each line of `stream`, until it ends. */
async function forEachLine(
  stream: ReadableStream<Uint8Array>,
  onLine: (line: string) => void,
): Promise<void> {
  let buffer = "";
  const decoder = new TextDecoder();
  for await (const chunk of stream) {
    buffer += decoder.decode(chunk, { stream: true });
    let end = buffer.indexOf("\n");
    while (end !== -1) {
      onLine(buffer.slice(0, end));
      buffer = buffer.slice(end + 1);
      end = buffer.indexOf("\n");
    }
  }
  if (buffer !== "") onLine(buffer);
}

function pushTail(tail: string[], line: string): void {
  tail.push(line);
  if (tail.length > TAIL_LINES) tail.shift();
}

/**
 * Starts `command` in `cwd` and waits for its `Serving on:` line.
 *
 * @throws {Error} When it exits or stays silent for `timeoutMs`.
 */
export async function startServer(
  command: string[],
  options: { cwd: string; timeoutMs: number },
): Promise<ServerProcess> {
  const child = new Deno.Command(command[0], {
    args: command.slice(1),
    cwd: options.cwd,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const tail: string[] = [];
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const port = new Promise<number>((resolve, reject) => {
    const timer = setTimeout(
      () =>
        reject(
          new Error(`no "Serving on:" line within ${options.timeoutMs} ms`),
        ),
      options.timeoutMs,
    );
    // Both pipes are drained for the whole life of the server, so that a
    // chatty server never blocks on a full pipe.
    forEachLine(child.stdout, (line) => {
      pushTail(tail, line);
      const match = SERVING_RE.exec(line);
      if (match) {
        clearTimeout(timer);
        resolve(Number(match[1]));
      }
    });
    forEachLine(child.stderr, (line) => pushTail(tail, line));
    status.then((s) => {
      clearTimeout(timer);
      reject(new Error(`exited with code ${s.code} before serving`));
    });
  });
  async function stop(): Promise<void> {
    if (exited) return;
    child.kill("SIGTERM");
    const timer = setTimeout(() => {
      if (!exited) child.kill("SIGKILL");
    }, STOP_TIMEOUT_MS);
    await status;
    clearTimeout(timer);
  }
  try {
    const found = await port;
    return {
      pid: child.pid,
      port: found,
      url: `http://127.0.0.1:${found}/events`,
      tail,
      stop,
    };
  } catch (error) {
    await stop();
    const detail = tail.length > 0 ? `:\n  ${tail.join("\n  ")}` : "";
    throw new Error(
      `${command.join(" ")}: ${
        error instanceof Error ? error.message : error
      }${detail}`,
    );
  }
}

/** A running load client. */
export interface ClientProcess {
  /** Resolves with the next message the client prints. */
  next(): Promise<ClientMessage>;
  /** Tells the client to start publishing. */
  go(): Promise<void>;
  /** Waits for the exit (kills it if it does not exit within the timeout). */
  close(): Promise<void>;
}

/**
 * Starts the load client with `command` (e.g. `bun bench/client.ts`).
 */
export function startClient(
  command: string[],
  config: ClientConfig,
  cwd: string,
): ClientProcess {
  const child = new Deno.Command(command[0], {
    args: [...command.slice(1), JSON.stringify(config)],
    cwd,
    stdin: "piped",
    stdout: "piped",
    stderr: "inherit",
    // Bun's fetch opens at most 256 connections unless told otherwise.
    env: { BUN_CONFIG_MAX_HTTP_REQUESTS: "65000" },
  }).spawn();
  const messages: ClientMessage[] = [];
  const waiters: ((message: ClientMessage) => void)[] = [];
  function deliver(message: ClientMessage): void {
    const waiter = waiters.shift();
    if (waiter) waiter(message);
    else messages.push(message);
  }
  forEachLine(child.stdout, (line) => {
    if (line.startsWith("{")) deliver(JSON.parse(line) as ClientMessage);
  }).then(() =>
    deliver({ type: "error", message: "load client exited without a result" })
  );
  const writer = child.stdin.getWriter();
  return {
    next: () => {
      const message = messages.shift();
      return message
        ? Promise.resolve(message)
        : new Promise((resolve) => waiters.push(resolve));
    },
    go: () => writer.write(new TextEncoder().encode("go\n")),
    close: async () => {
      await writer.close().catch(() => {});
      const timer = setTimeout(() => child.kill("SIGKILL"), STOP_TIMEOUT_MS);
      await child.status;
      clearTimeout(timer);
    },
  };
}

/** Resident memory of `pid` in KiB, from `/proc/<pid>/status`. */
export function readRssKb(pid: number): number {
  const match = /VmRSS:\s+(\d+) kB/.exec(
    Deno.readTextFileSync(`/proc/${pid}/status`),
  );
  if (!match) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]);
}

/** CPU time (user + system) of `pid` in seconds, from `/proc/<pid>/stat`. */
export function readCpuS(pid: number): number {
  const stat = Deno.readTextFileSync(`/proc/${pid}/stat`);
  // Fields after the command name, which may hold spaces: state is field 3.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
}

/** The soft limit on open files of this process, from `/proc/self/limits`. */
export function readOpenFilesLimit(): number {
  const match = /Max open files\s+(\d+|unlimited)/.exec(
    Deno.readTextFileSync("/proc/self/limits"),
  );
  return match === null || match[1] === "unlimited"
    ? Infinity
    : Number(match[1]);
}
