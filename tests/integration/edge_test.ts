import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  type Child,
  connectWs,
  freePort,
  nginxTemplate,
  ROOT,
  startChild,
  startHub,
  startNginx,
  waitFor,
} from "./_helpers.ts";

const DENO = join(ROOT, "node_modules", ".bin", "deno");

async function denoServe(
  port: number,
  env: Record<string, string>,
): Promise<Child> {
  const child = startChild(DENO, [
    "serve",
    "--allow-net",
    "--allow-env",
    "--host",
    "127.0.0.1",
    "--port",
    String(port),
    "mod.ts",
  ], env);
  const deadline = Date.now() + 20_000;
  while (Date.now() < deadline) {
    try {
      if ((await fetch(`http://127.0.0.1:${port}/healthz`)).ok) return child;
    } catch {
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  await child.stop("SIGKILL");
  throw new Error(`deno serve did not start: ${child.stderr()}`);
}

describe("edge deployment", { timeout: 90_000 }, () => {
  test("three `deno serve mod.ts` relays behind nginx (spawns Deno on every runtime: deno serve is Deno's); a publish at any one reaches all, once, with the origin's id", async () => {
    const origin = await startHub();
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    const edges: Child[] = [];
    let nginx;
    let clients: ReturnType<typeof connectWs>[] = [];
    try {
      for (const port of ports) {
        edges.push(
          await denoServe(port, {
            WSEVENT_CONSUME_URL: origin.url,
            WSEVENT_NO_PRODUCE: "true",
            WSEVENT_FORWARD_PUBLISH: "true",
            WSEVENT_HEARTBEAT: "1000",
          }),
        );
      }
      nginx = await startNginx(nginxTemplate(), ports);
      clients = ports.map((port) =>
        connectWs(`ws://127.0.0.1:${port}/events?format=json`)
      );
      await Promise.all(clients.map((c) => c.opened));
      // Each edge instance creates its instance, and so its relay to the
      // origin, on its first request.
      const deadline = Date.now() + 10_000;
      let metrics = "";
      while (!/wsevent_subscribers\{transport="websocket"\} 3/.test(metrics)) {
        assert.ok(
          Date.now() < deadline,
          `3 relays never reached the origin:\n${metrics}`,
        );
        await new Promise((r) => setTimeout(r, 50));
        metrics = await (await fetch(`${origin.http}/metrics`)).text();
      }
      const targets = [
        `http://127.0.0.1:${nginx.port}/events`,
        ...ports.map((p) => `http://127.0.0.1:${p}/events`),
        `http://127.0.0.1:${nginx.port}/events`,
      ];
      const ids: string[] = [];
      for (const [i, target] of targets.entries()) {
        const response = await fetch(target, {
          method: "POST",
          body: `edge publish ${i}`,
        });
        assert.equal(response.status, 202, await response.clone().text());
        ids.push((await response.json() as { id: string }).id);
      }
      const originEpoch = ids[0].split("-")[0];
      assert.ok(
        ids.every((id) => id.startsWith(`${originEpoch}-`)),
        `ids from the origin: ${ids}`,
      );
      assert.deepEqual(ids.map((id) => Number(id.split("-")[1])), [
        0,
        1,
        2,
        3,
        4,
      ]);
      await waitFor(
        () =>
          clients.every((c) =>
            c.messages.filter((m) => m.includes('"id"')).length >= 5
          ),
        10_000,
        "5 events on every edge",
      );
      for (const client of clients) {
        const events = client.messages.map((m) => JSON.parse(m)).filter((m) =>
          m.id !== undefined
        );
        assert.deepEqual(
          events,
          ids.map((id, i) => ({ id, data: `edge publish ${i}` })),
        );
      }
    } finally {
      for (const c of clients) c.close();
      await nginx?.stop();
      await Promise.all([origin.stop(), ...edges.map((e) => e.stop())]);
    }
  });
});
