/**
 * A `redis-server` of the benchmark's own (Deno only, like process.ts): on a
 * free 127.0.0.1 port, in a temporary directory that is removed when it
 * stops, with AOF on (`appendfsync everysec`, as the deploy example runs
 * it), never the system's instance.
 *
 * @module
 */

const START_TIMEOUT_MS = 10_000;
const STOP_TIMEOUT_MS = 5_000;

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
function freePort(): number {
  const listener = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const { port } = listener.addr as Deno.NetAddr;
  listener.close();
  return port;
}

/** Sends PING over a raw connection; resolves on +PONG. */
async function ping(port: number): Promise<boolean> {
  try {
    const conn = await Deno.connect({ hostname: "127.0.0.1", port });
    try {
      await conn.write(new TextEncoder().encode("PING\r\n"));
      const buffer = new Uint8Array(64);
      const n = await conn.read(buffer);
      return n !== null &&
        new TextDecoder().decode(buffer.subarray(0, n)).startsWith("+PONG");
    } finally {
      conn.close();
    }
  } catch {
    return false;
  }
}

/**
 * Starts `redis-server` (Debian's, from PATH) and waits until it answers.
 *
 * @throws {Error} When it is not installed, exits, or does not answer in time.
 */
export async function startRedis(): Promise<RedisProcess> {
  const dir = await Deno.makeTempDir({ prefix: "wsevent-bench-redis-" });
  const port = freePort();
  let child: Deno.ChildProcess;
  try {
    child = new Deno.Command("redis-server", {
      args: [
        "--port",
        String(port),
        "--bind",
        "127.0.0.1",
        "--dir",
        dir,
        "--save",
        "",
        "--appendonly",
        "yes",
        "--appendfsync",
        "everysec",
        "--loglevel",
        "warning",
      ],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
  } catch (error) {
    await Deno.remove(dir, { recursive: true });
    throw new Error(
      `Cannot start redis-server (install Debian's redis-server, scripts/setup does): ${
        error instanceof Error ? error.message : error
      }`,
    );
  }
  let exited = false;
  const status = child.status.then((s) => {
    exited = true;
    return s;
  });
  const stderr = new Response(child.stderr).text();
  const stop = async () => {
    if (!exited) {
      child.kill("SIGTERM");
      const timer = setTimeout(() => {
        if (!exited) child.kill("SIGKILL");
      }, STOP_TIMEOUT_MS);
      await status;
      clearTimeout(timer);
    }
    await stderr.catch(() => "");
    await Deno.remove(dir, { recursive: true }).catch(() => {});
  };
  const deadline = Date.now() + START_TIMEOUT_MS;
  while (!(await ping(port))) {
    if (exited || Date.now() > deadline) {
      await stop();
      throw new Error(
        `redis-server did not answer on 127.0.0.1:${port}: ${
          (await stderr.catch(() => "")).trim() || "no output"
        }`,
      );
    }
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
  return { pid: child.pid, port, url: `redis://127.0.0.1:${port}`, stop };
}
