/**
 * A `redis-server` of the benchmark's own, for every benchmark that needs
 * one (scenario r, `redis_clients.ts`, the soak and the churn with
 * `--engine redis`): Debian's `redis-server` from PATH, on a free 127.0.0.1
 * port, in a temporary directory that is removed when it stops, never the
 * system's instance. Written on `node:` modules, so it runs on Deno, Bun and
 * Node alike.
 *
 * @module
 */

import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { connect, createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;
/** Linux's USER_HZ, the unit of /proc/<pid>/stat's CPU times. */
const CLOCK_TICKS_PER_S = 100;

/** Options of {@link startRedis}. */
export interface RedisOptions {
  /**
   * AOF on with `appendfsync everysec`, as the deploy example runs it
   * (`docs/deploy/redis.conf`); off: no persistence at all. @default {true}
   */
  aof?: boolean;
  /** More `redis-server` arguments (e.g. `--client-output-buffer-limit`). */
  args?: readonly string[];
}

/** A running redis-server. */
export interface RedisProcess {
  pid: number;
  port: number;
  /** `redis://127.0.0.1:PORT`. */
  url: string;
  /** Sends SIGTERM (SIGKILL after a timeout), waits, removes its directory. */
  stop(): Promise<void>;
}

/** A port that was free a moment ago on 127.0.0.1. */
function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address ? address.port : 0;
      server.close(() => resolve(port));
    });
  });
}

/** Sends PING over a raw connection; resolves true on +PONG. */
function ping(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect(port, "127.0.0.1");
    const done = (ok: boolean) => {
      socket.destroy();
      resolve(ok);
    };
    socket.setTimeout(1_000, () => done(false));
    socket.once("error", () => done(false));
    socket.once("connect", () => socket.write("PING\r\n"));
    socket.once("data", (data) => done(data.toString().startsWith("+PONG")));
  });
}

/**
 * Starts `redis-server` and waits until it answers PING.
 *
 * @param options Persistence and extra arguments.
 * @returns The running server.
 * @throws {Error} When it is not installed, exits, or does not answer in time.
 */
export async function startRedis(
  options: RedisOptions = {},
): Promise<RedisProcess> {
  const dir = mkdtempSync(join(tmpdir(), "wsevent-bench-redis-"));
  const port = await freePort();
  const persistence = options.aof ?? true
    ? ["--appendonly", "yes", "--appendfsync", "everysec"]
    : ["--appendonly", "no"];
  const child: ChildProcess = spawn("redis-server", [
    "--port",
    String(port),
    "--bind",
    "127.0.0.1",
    "--dir",
    dir,
    "--save",
    "",
    ...persistence,
    ...(options.args ?? []),
    "--loglevel",
    "warning",
  ], { stdio: ["ignore", "ignore", "pipe"] });
  let stderr = "";
  child.stderr!.setEncoding("utf8").on(
    "data",
    (text: string) => (stderr = (stderr + text).slice(-4_000)),
  );
  let spawnError: Error | undefined;
  child.once("error", (error) => (spawnError = error));
  const exited = new Promise<void>((resolve) => {
    child.once("exit", () => resolve());
    child.once("error", () => resolve());
  });
  const isRunning = () =>
    spawnError === undefined && child.exitCode === null &&
    child.signalCode === null;
  const stop = async () => {
    if (isRunning()) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => {
        if (isRunning()) child.kill("SIGKILL");
      }, STOP_TIMEOUT_MS);
      await exited;
      clearTimeout(timer);
    }
    rmSync(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await ping(port))) {
    if (!isRunning() || Date.now() > deadline) {
      await stop();
      if (spawnError !== undefined) {
        throw new Error(
          `Cannot start redis-server (install Debian's redis-server, scripts/setup does): ${spawnError.message}`,
        );
      }
      throw new Error(
        `redis-server did not answer on 127.0.0.1:${port}: ${
          stderr.trim() || "no output"
        }`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { pid: child.pid!, port, url: `redis://127.0.0.1:${port}`, stop };
}

/**
 * CPU seconds (user + system) a process has used, from /proc (Linux).
 *
 * @param pid The process.
 * @returns Seconds, or NaN when it cannot be read.
 */
export function procCpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS_PER_S;
  } catch {
    return NaN;
  }
}
