/**
 * Deno's least-privilege mode: without --allow-env the ws package cannot
 * load, so the CLI serves through Deno.serve and Deno.upgradeWebSocket
 * instead of node:http and ws. Spawns Deno on every runtime: the
 * permission flags are Deno's.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import {
  type Child,
  connectSse,
  connectWs,
  publish,
  ROOT,
  startChild,
  waitFor,
} from "./_helpers.ts";

const DENO = join(ROOT, "node_modules", ".bin", "deno");

async function startDeno(permissions: string[]): Promise<
  { child: Child; port: number }
> {
  const child = startChild(DENO, [
    "run",
    ...permissions,
    join(ROOT, "cli.ts"),
    "--serve-address",
    "127.0.0.1:0",
    "--no-produce",
  ]);
  let exited = false;
  child.exited.then(() => (exited = true));
  await waitFor(
    () => /Serving on: \S+/.test(child.stdout()) || exited,
    20_000,
    "Serving on:",
  );
  assert.equal(exited, false, `deno exited early: ${child.stderr()}`);
  const url = /Serving on: (\S+)/.exec(child.stdout())![1];
  return { child, port: Number(new URL(url).port) };
}

async function assertServes(port: number): Promise<void> {
  const ws = connectWs(`ws://127.0.0.1:${port}/events?format=json`);
  await ws.opened;
  const sse = connectSse(`http://127.0.0.1:${port}/events`);
  await sse.headers;
  const id = await publish(`http://127.0.0.1:${port}`, "events", "hello");
  await waitFor(
    () => ws.messages.length >= 1 && sse.messages.length >= 1,
    5000,
    "the event on WebSocket and SSE",
  );
  assert.deepEqual(JSON.parse(ws.messages[0]), { id, data: "hello" });
  assert.equal(sse.messages[0].id, id);
  assert.equal(sse.messages[0].data, "hello");
  ws.close();
  sse.close();
}

describe("Deno permissions (spawns Deno on every runtime: the permission flags are Deno's)", () => {
  test("deno run --allow-net alone serves through Deno.serve, says so once, delivers on WebSocket and SSE, and stops with 0", async () => {
    const { child, port } = await startDeno(["--allow-net"]);
    try {
      assert.match(
        child.stderr(),
        /serving with Deno\.serve; with --allow-env/,
      );
      await assertServes(port);
    } finally {
      const { code } = await child.stop("SIGTERM");
      assert.equal(code, 0, child.stderr());
    }
    assert.doesNotMatch(child.stderr(), /NotCapable|Requires env access/);
  });

  test("deno run --allow-net --allow-env serves through node:http and ws (no Deno.serve notice) and delivers on WebSocket and SSE", async () => {
    const { child, port } = await startDeno(["--allow-net", "--allow-env"]);
    try {
      assert.doesNotMatch(child.stderr(), /Deno\.serve/);
      await assertServes(port);
    } finally {
      const { code } = await child.stop("SIGTERM");
      assert.equal(code, 0, child.stderr());
    }
  });
});
