/**
 * bench/redis_clients.ts, the Redis client micro-benchmark, on the runtime
 * running this test, at a tiny scale: it starts its own redis-server, and
 * every client that exists on the runtime (node-redis and ioredis; Bun's own
 * client on Bun) reports each of its three tests with a positive rate and a
 * measured CPU time. Never judges timings. Bad options exit 2 with a message.
 *
 * @module
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { fileURLToPath } from "node:url";
import process from "node:process";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const RUNTIME = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";
const RUN_TIMEOUT_MS = 60_000;

function run(
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  const command = RUNTIME === "deno"
    ? ["run", "-A", "bench/redis_clients.ts", ...args]
    : ["bench/redis_clients.ts", ...args];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, command, {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on("data", (c: string) => stdout += c);
    child.stderr.setEncoding("utf8").on("data", (c: string) => stderr += c);
    const timer = setTimeout(() => child.kill("SIGKILL"), RUN_TIMEOUT_MS);
    child.on("error", (error) => {
      clearTimeout(timer);
      reject(error);
    });
    child.on("close", (code) => {
      clearTimeout(timer);
      resolve({ code, stdout, stderr });
    });
  });
}

interface Row {
  runtime: string;
  client: string;
  test: string;
  eventsPerSecond: number;
  cpuMsPer1k: number;
  redisCpuMsPer1k: number;
}

describe("bench/redis_clients.ts", { timeout: RUN_TIMEOUT_MS + 10_000 }, () => {
  test(`measures every client of ${RUNTIME} on its own redis-server`, async () => {
    const { code, stdout, stderr } = await run([
      "--json",
      "--trials",
      "1",
      "--scale",
      "0.02",
    ]);
    assert.equal(code, 0, `stdout:\n${stdout}\nstderr:\n${stderr}`);
    const rows = stdout.split("\n").filter((line) => line.startsWith("{"))
      .map((line) => JSON.parse(line) as Row);
    const clients = RUNTIME === "bun"
      ? ["ioredis", "node-redis", "bun"]
      : ["ioredis", "node-redis"];
    assert.deepEqual(
      rows.map((r) => `${r.client}/${r.test}`),
      clients.flatMap((c) => [`${c}/append`, `${c}/pubsub`, `${c}/xrange`]),
    );
    for (const row of rows) {
      const what = `${row.client}/${row.test}`;
      assert.equal(row.runtime, RUNTIME, what);
      assert.ok(row.eventsPerSecond > 0, `${what}: ${row.eventsPerSecond}`);
      assert.ok(
        Number.isFinite(row.cpuMsPer1k) && row.cpuMsPer1k >= 0,
        `${what}: CPU ${row.cpuMsPer1k}`,
      );
      // redis-server's CPU comes from /proc (Deno: with -A, as here).
      assert.ok(
        Number.isFinite(row.redisCpuMsPer1k) && row.redisCpuMsPer1k >= 0,
        `${what}: redis CPU ${row.redisCpuMsPer1k}`,
      );
    }
  });

  test("exits 2 with a message on a bad option", async () => {
    for (
      const [args, message] of [
        [["--trials", "0"], /Cannot parse --trials: .*received "0"/],
        [["--scale", "x"], /Cannot parse --scale: .*received "x"/],
        [["--clients", "hiredis"], /Cannot parse --clients: .*"hiredis"/],
        [["--fast"], /Unknown option "--fast"/],
      ] as const
    ) {
      const { code, stderr } = await run([...args]);
      assert.equal(code, 2, `${args.join(" ")}: ${stderr}`);
      assert.match(stderr, message);
    }
  });
});
