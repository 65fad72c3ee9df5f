// The README's embedding examples (examples/embed_<runtime>.ts, included
// in README.md verbatim), run end to end on the runtime running this test.
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import process from "node:process";
import { describe, test } from "node:test";
import {
  connectSse,
  connectWs,
  freePort,
  ROOT,
  RUNTIME,
  runtimeCommand,
  startChild,
  waitFor,
} from "./_helpers.ts";

const RUNTIMES = ["deno", "bun", "node"] as const;

function example(runtime: string): string {
  return readFileSync(join(ROOT, "examples", `embed_${runtime}.ts`), "utf8");
}

describe("embedding in a Hono app (README)", { timeout: 60_000 }, () => {
  test("README.md includes each runtime's example verbatim", () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    for (const runtime of RUNTIMES) {
      assert.ok(
        readme.includes("```ts\n" + example(runtime) + "```\n"),
        `README.md lacks examples/embed_${runtime}.ts as a ts block`,
      );
    }
  });

  test(`the ${RUNTIME} example: WebSocket and SSE at /live/orders, publish from a route and by POST, resume`, async () => {
    // As a user's file would import it, with "wsevent" pointing here.
    const dir = join(ROOT, ".tmp", `embed-${process.pid}-${Date.now()}`);
    mkdirSync(dir, { recursive: true });
    const file = join(dir, `embed_${RUNTIME}.ts`);
    writeFileSync(
      file,
      example(RUNTIME).replace('from "wsevent"', 'from "../../mod.ts"'),
    );
    const port = await freePort();
    const [command, args] = runtimeCommand(file);
    const child = startChild(command, args, { PORT: String(port) });
    const base = `http://127.0.0.1:${port}`;
    try {
      const deadline = Date.now() + 20_000;
      for (;;) {
        try {
          const home = await fetch(`${base}/`);
          assert.equal(await home.text(), "my app");
          break;
        } catch (error) {
          if (Date.now() > deadline || child.proc.exitCode !== null) {
            throw new Error(
              `the example did not serve: ${error}\n${child.stderr()}`,
            );
          }
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      const json = connectWs(`ws://127.0.0.1:${port}/live/orders?format=json`);
      const bare = connectWs(`ws://127.0.0.1:${port}/live/orders`);
      const sse = connectSse(`${base}/live/orders`);
      try {
        await Promise.all([json.opened, bare.opened, sse.headers]);
        const created = await fetch(`${base}/orders`, {
          method: "POST",
          body: "order 1",
        });
        assert.equal(created.status, 201);
        const { id: first } = await created.json() as { id: string };
        const posted = await fetch(`${base}/live/orders`, {
          method: "POST",
          body: "order 2",
        });
        assert.equal(posted.status, 202);
        const { id: second } = await posted.json() as { id: string };
        await waitFor(
          () =>
            json.messages.length >= 2 && bare.messages.length >= 2 &&
            sse.messages.length >= 2,
          10_000,
          "both orders on every subscriber",
        );
        assert.deepEqual(json.messages.map((m) => JSON.parse(m)), [
          { id: first, data: "order 1" },
          { id: second, data: "order 2" },
        ]);
        assert.deepEqual(bare.messages, ["order 1", "order 2"]);
        assert.deepEqual(
          sse.messages.map((m) => [m.id, m.data]),
          [[first, "order 1"], [second, "order 2"]],
        );
        // Resume after the first: only the second comes.
        const resumed = connectSse(`${base}/live/orders`, {
          "Last-Event-ID": first,
        });
        try {
          await waitFor(() => resumed.messages.length >= 1, 10_000, "resume");
          assert.deepEqual(resumed.messages.map((m) => m.data), ["order 2"]);
        } finally {
          resumed.close();
        }
        const missing = await fetch(`${base}/live/nope`);
        assert.equal(missing.status, 404);
        await missing.body?.cancel();
      } finally {
        json.close();
        bare.close();
        sse.close();
      }
    } finally {
      await child.stop("SIGKILL");
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
