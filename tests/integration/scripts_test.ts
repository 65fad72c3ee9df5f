import assert from "node:assert/strict";
import { readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  connectWs,
  freePort,
  ROOT,
  startChild,
  startService,
  waitFor,
} from "./_helpers.ts";

const DEMO = /^\d+: 127\.0\.0\.1:\d+: [A-Za-z]{10}$/;

describe("the original's scripts", { timeout: 60_000 }, () => {
  test("scripts/wsproxy PORT BACKENDS balances through real nginx, and SIGTERM stops it cleanly (exit 0, prefix removed); scripts/wsclient PORT PATH prints events", async () => {
    const ports = [await freePort(), await freePort()];
    const producers = await Promise.all(
      ports.map((p) =>
        startService(["-serve-address", `127.0.0.1:${p}`, "-interval", "20"])
      ),
    );
    const port = await freePort();
    const proxy = startChild("bash", [
      join(ROOT, "scripts/wsproxy"),
      String(port),
      ...ports.map(String),
    ]);
    try {
      await waitFor(
        () => /Load balancing ws:\/\/localhost:\d+\//.test(proxy.stdout()),
        10_000,
        "wsproxy to start",
      );
      const prefix = /nginx prefix (\S+)\)/.exec(proxy.stdout())![1];
      let client = connectWs(`ws://127.0.0.1:${port}/events`);
      for (let i = 0; i < 20; i++) {
        try {
          await client.opened;
          break;
        } catch {
          await new Promise((r) => setTimeout(r, 100));
          client = connectWs(`ws://127.0.0.1:${port}/events`);
        }
      }
      // Balanced: four subscribers held open together are spread over both
      // backends (each demo message names the producer's address).
      const clients = [client];
      for (let i = 1; i < 4; i++) {
        clients.push(connectWs(`ws://127.0.0.1:${port}/events`));
        await clients[i].opened;
      }
      await waitFor(
        () => clients.every((c) => c.messages.length >= 3),
        10_000,
        "events through wsproxy on four subscribers",
      );
      const served = new Set(
        clients.map((c) =>
          Number(/^\d+: 127\.0\.0\.1:(\d+): /.exec(c.messages[0])?.[1])
        ),
      );
      assert.deepEqual(
        [...served].sort(),
        [...ports].sort(),
        "both backends served the subscribers",
      );
      for (const c of clients) c.close();

      const wsclient = startChild("bash", [
        join(ROOT, "scripts/wsclient"),
        String(port),
        "events",
        "--count",
        "4",
        "--quiet",
      ], {
        WSEVENT_RUNTIME: "deno",
      });
      const { code } = await wsclient.exited;
      assert.equal(code, 0, wsclient.stderr());
      const lines = wsclient.stdout().split("\n").filter((l) => l !== "");
      assert.equal(lines.length, 4);
      for (const line of lines) assert.match(line, DEMO);

      assert.deepEqual(await proxy.stop("SIGTERM"), { code: 0, signal: null });
      const left = readdirSync(tmpdir()).filter((name) =>
        join(tmpdir(), name) === prefix
      );
      assert.deepEqual(left, [], "the nginx prefix directory is removed");
    } finally {
      // SIGTERM: the script stops its nginx (SIGKILL would orphan it).
      await proxy.stop("SIGTERM");
      await Promise.all(producers.map((p) => p.stop()));
    }
  });

  test("scripts/wsproxy refuses a bad port with exit 2 and one line", async () => {
    const proxy = startChild("bash", [join(ROOT, "scripts/wsproxy"), "eighty"]);
    const { code } = await proxy.exited;
    assert.equal(code, 2);
    assert.match(
      proxy.stderr(),
      /^error: PORT must be a number, received "eighty"\n$/,
    );
  });
});
