// SIGTERM on every entry point: subscribers get 1001 (Going Away) and the
// process exits 0 within 2 s, as systemd and edge platforms expect.
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import process from "node:process";
import { promisify } from "node:util";
import {
  type Child,
  connectSse,
  connectWs,
  freePort,
  ROOT,
  runtimeCommand,
  startChild,
} from "./_helpers.ts";

const run = promisify(execFile);
const DENO = join(ROOT, "node_modules", ".bin", "deno");
/** What systemd and edge platforms wait before they kill. */
const EXIT_WITHIN_MS = 2000;

/** Waits until `url` answers /healthz. */
async function healthy(child: Child, http: string): Promise<void> {
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    if (child.proc.exitCode !== null) break;
    try {
      if ((await fetch(`${http}/healthz`)).ok) return;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await child.stop("SIGKILL");
  throw new Error(`did not start:\n${child.stdout()}\n${child.stderr()}`);
}

/**
 * Starts `command`, which serves /events on 127.0.0.1:`port`, subscribes
 * over WebSocket and SSE, sends SIGTERM and checks the close and the exit.
 */
async function checkSigterm(
  command: string,
  args: string[],
  port: number,
): Promise<void> {
  const child = startChild(command, args);
  const http = `http://127.0.0.1:${port}`;
  await healthy(child, http);
  const ws = connectWs(`ws://127.0.0.1:${port}/events?format=json`);
  const sse = connectSse(`${http}/events`);
  try {
    await Promise.all([ws.opened, sse.headers]);
    // Both are subscribed once the instance counts them.
    const deadline = Date.now() + 10_000;
    while (Date.now() < deadline) {
      const health = await (await fetch(`${http}/healthz`)).json() as {
        subscribers: { websocket: number; sse: number };
      };
      if (health.subscribers.websocket >= 1 && health.subscribers.sse >= 1) {
        break;
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    const sent = Date.now();
    process.kill(child.proc.pid!, "SIGTERM");
    const timeout = new Promise<"timeout">((r) =>
      setTimeout(() => r("timeout"), EXIT_WITHIN_MS + 3000)
    );
    const exit = await Promise.race([child.exited, timeout]);
    const took = Date.now() - sent;
    assert.notEqual(
      exit,
      "timeout",
      `still running 5 s after SIGTERM:\n${child.stderr()}`,
    );
    assert.deepEqual(exit, { code: 0, signal: null }, child.stderr());
    assert.ok(took < EXIT_WITHIN_MS, `exited ${took} ms after SIGTERM`);
    const closed = await Promise.race([
      ws.closed,
      new Promise<"open">((r) => setTimeout(() => r("open"), 2000)),
    ]);
    assert.notEqual(closed, "open", "the WebSocket was never closed");
    assert.equal((closed as { code: number }).code, 1001);
    await Promise.race([
      sse.done,
      new Promise((_, fail) =>
        setTimeout(() => fail(new Error("SSE stream still open")), 2000)
      ),
    ]);
  } finally {
    ws.close();
    sse.close();
    await child.stop("SIGKILL");
  }
}

describe("SIGTERM: 1001 to subscribers and exit 0 within 2 s", {
  timeout: 90_000,
}, () => {
  test("cli.ts on this runtime", async () => {
    const port = await freePort();
    const [command, base] = runtimeCommand(join(ROOT, "cli.ts"));
    await checkSigterm(command, [
      ...base,
      "--serve-address",
      `127.0.0.1:${port}`,
      "--interval",
      "50",
    ], port);
  });

  test("deno serve mod.ts after it has answered requests (spawns Deno on every runtime: deno serve is Deno's)", async () => {
    const port = await freePort();
    await checkSigterm(DENO, [
      "serve",
      "--allow-net",
      "--allow-env",
      "--host",
      "127.0.0.1",
      "--port",
      String(port),
      "mod.ts",
    ], port);
  });

  test("the bun build --compile binary (built with Bun on every runtime: the binary is Bun's)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wsevent-sigterm-"));
    try {
      const binary = join(dir, "wsevent");
      await run("bash", [join(ROOT, "scripts/build/compile-bun"), binary], {
        cwd: ROOT,
      });
      const port = await freePort();
      await checkSigterm(
        binary,
        ["--serve-address", `127.0.0.1:${port}`],
        port,
      );
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
