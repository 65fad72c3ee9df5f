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
import {
  encodeFrame,
  metric,
  publishMany,
  rawConnect,
  type RawWs,
  serverSideState,
} from "./_raw_ws.ts";
import { CLOSE_TIMEOUT_MS } from "../../src/http/socket_sink.ts";

const delay = (ms: number): Promise<void> =>
  new Promise((resolve) => setTimeout(resolve, ms));

const closeCode = (client: RawWs): number | undefined =>
  client.closeFrame?.code;

/** Waits for `promise`, at most `ms` (no timer left behind). */
async function within(promise: Promise<unknown>, ms: number): Promise<void> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    promise,
    new Promise((resolve) => (timer = setTimeout(resolve, ms))),
  ]);
  clearTimeout(timer);
}

const DENO = join(ROOT, "node_modules", ".bin", "deno");

async function startDeno(
  permissions: string[],
  flags: string[] = [],
): Promise<
  { child: Child; port: number }
> {
  const child = startChild(DENO, [
    "run",
    ...permissions,
    join(ROOT, "cli.ts"),
    "--serve-address",
    "127.0.0.1:0",
    "--no-produce",
    ...flags,
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
    // Once for the whole run: not per request, subscriber or signal.
    assert.equal(
      child.stderr().match(/serving with Deno\.serve/g)?.length,
      1,
      child.stderr(),
    );
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

/** Sends 64 KB events over one keep-alive connection until `done()`. */
async function publishUntil(
  port: number,
  done: () => Promise<boolean>,
  limit: number,
): Promise<number> {
  let sent = 0;
  while (!await done()) {
    assert.ok(sent < limit, `still not done after ${sent} events`);
    await publishMany(port, "events", 10, () => "x".repeat(64 * 1024), 2);
    sent += 10;
  }
  return sent;
}

describe(
  "Known runtime limits of Deno.serve (deno run --allow-net; spawns Deno on every runtime)",
  {
    timeout: 60_000,
  },
  () => {
    test("Deno.serve limit: a frame over -max-body is refused with 1009 only after Deno has read all of it (node:http refuses at the header)", async () => {
      const { child, port } = await startDeno(["--allow-net"], [
        "--max-body",
        "1024",
      ]);
      let client: RawWs | undefined;
      try {
        client = await rawConnect(`ws://127.0.0.1:${port}/events`);
        // The header declares 1 MiB; the payload follows in two halves.
        const frame = encodeFrame(2, new Uint8Array(1 << 20));
        const header = frame.byteLength - (1 << 20) - 4;
        client.write(frame.subarray(0, header + 4 + (1 << 19)));
        // Half the payload sent: under Deno.serve nothing is refused yet.
        // (Bounded by what Deno does within 1 s: on node:http the 1009
        // arrives within milliseconds, see bad_input_test.)
        await within(client.ended, 1000);
        assert.equal(client.closeFrame, null, "refused before it was read");
        assert.equal(client.isEnded(), false);
        client.write(frame.subarray(header + 4 + (1 << 19)));
        await within(client.ended, 10_000);
        // (Read through a function: the assertion above narrowed the field.)
        assert.equal(closeCode(client), 1009, "refused once read");
        assert.equal(client.isEnded(), true);
      } finally {
        client?.destroy();
        await child.stop("SIGTERM");
      }
    });

    test("Deno.serve limit: a slow subscriber's WebSocket cannot be dropped while its close frame waits behind data it does not read: the hub lets go of it at once, the TCP connection stays", async () => {
      const { child, port } = await startDeno(["--allow-net"], [
        "--max-queue",
        String(256 * 1024),
        "--max-body",
        String(128 * 1024),
      ]);
      const http = `http://127.0.0.1:${port}`;
      let slow: RawWs | undefined;
      try {
        slow = await rawConnect(`ws://127.0.0.1:${port}/events`, {
          pauseAfterHandshake: true,
        });
        const clientPort = slow.socket.localPort!;
        await publishUntil(
          port,
          async () =>
            await metric(http, "wsevent_slow_consumer_disconnects_total") >= 1,
          2000,
        );
        // The hub let go of it at once.
        assert.equal(
          await metric(http, "wsevent_subscribers", '{transport="websocket"}'),
          0,
        );
        // Past the close timeout (1 s) that drops such a peer on node:http,
        // Deno still holds the connection.
        await delay(2 * CLOSE_TIMEOUT_MS);
        assert.equal(
          serverSideState(port, clientPort),
          "01",
          "the connection is still established on the server's side",
        );
      } finally {
        slow?.destroy();
        await child.stop("SIGTERM");
      }
    });
  },
);
