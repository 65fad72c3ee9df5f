/**
 * A real redis-server (the Debian package) for tests: on a free loopback
 * port, in its own temporary directory, stopped by the test.
 */

import { mkdtempSync, rmSync } from "node:fs";
import { createConnection } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Child, freePort, startChild } from "./_helpers.ts";

/** Options of {@link startRedis}. */
export interface RedisOptions {
  /** Append-only file with fsync on every write: nothing acknowledged is lost. */
  aof?: boolean;
}

/** PEM files for a Redis that speaks TLS only (`rediss://`). */
export interface RedisTls {
  /** The server's certificate. */
  cert: string;
  /** Its key. */
  key: string;
  /** The CA that signed it (clients need not present certificates). */
  ca: string;
}

/** A running redis-server. */
export interface RedisServer {
  port: number;
  /** `redis://127.0.0.1:<port>` (`rediss://` with TLS). */
  url: string;
  /** Its data directory. */
  dir: string;
  /** Kills it (SIGKILL: no chance to save anything). */
  kill(): Promise<void>;
  /**
   * Starts it again on the same port.
   *
   * @param options Persistence for the new run; `fresh` empties its data directory first.
   */
  restart(options?: RedisOptions & { fresh?: boolean }): Promise<void>;
  /** Runs one command with redis-cli and returns its output. */
  cli(...args: string[]): Promise<string>;
  /** Stops it and removes its directory. */
  stop(): Promise<void>;
}

/** True when something answers on the port. */
function answers(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = createConnection({ host: "127.0.0.1", port });
    socket.once("connect", () => {
      socket.destroy();
      resolve(true);
    });
    socket.once("error", () => resolve(false));
  });
}

async function waitForPort(port: number, child: Child): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (!(await answers(port))) {
    if (child.proc.exitCode !== null || Date.now() > deadline) {
      throw new Error(`redis-server did not start: ${child.stdout()}`);
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

/**
 * Starts redis-server for a test.
 *
 * @param options Persistence of its first run.
 * @param tls Certificate files: TLS only on the port (`--port 0`).
 */
export async function startRedis(
  options: RedisOptions = {},
  tls?: RedisTls,
): Promise<RedisServer> {
  const port = await freePort();
  let dir = mkdtempSync(join(tmpdir(), "wsevent-redis-"));
  const dirs = [dir];
  let child: Child;
  const listen = tls === undefined ? ["--port", String(port)] : [
    "--port",
    "0",
    "--tls-port",
    String(port),
    "--tls-cert-file",
    tls.cert,
    "--tls-key-file",
    tls.key,
    "--tls-ca-cert-file",
    tls.ca,
    "--tls-auth-clients",
    "no",
  ];
  const cliTls = tls === undefined ? [] : ["--tls", "--cacert", tls.ca];
  const launch = async (run: RedisOptions): Promise<void> => {
    child = startChild("redis-server", [
      ...listen,
      "--bind",
      "127.0.0.1",
      "--dir",
      dir,
      "--save",
      "",
      "--appendonly",
      run.aof ? "yes" : "no",
      "--appendfsync",
      "always",
      "--daemonize",
      "no",
      "--logfile",
      "",
    ]);
    await waitForPort(port, child);
  };
  await launch(options);
  const server: RedisServer = {
    port,
    url: `${tls === undefined ? "redis" : "rediss"}://127.0.0.1:${port}`,
    get dir() {
      return dir;
    },
    async kill() {
      await child.stop("SIGKILL");
    },
    async restart(run = {}) {
      if (run.fresh) {
        dir = mkdtempSync(join(tmpdir(), "wsevent-redis-"));
        dirs.push(dir);
      }
      await launch(run);
    },
    async cli(...args) {
      const cli = startChild("redis-cli", [
        "-p",
        String(port),
        ...cliTls,
        ...args,
      ]);
      await cli.exited;
      return cli.stdout().trim();
    },
    async stop() {
      await child.stop("SIGKILL");
      for (const d of dirs) rmSync(d, { recursive: true, force: true });
    },
  };
  return server;
}
