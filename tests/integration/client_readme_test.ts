/**
 * The README's client example, run as written (only the import and the URL
 * replaced) against a real instance, over WebSocket and over SSE.
 *
 * @module
 */

import assert from "node:assert/strict";
import { mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import process from "node:process";
import { describe, test } from "node:test";
import {
  ROOT,
  runtimeCommand,
  startChild,
  startService,
  waitFor,
} from "./_helpers.ts";

/** The first ```ts block under "### Client". */
function readmeExample(): string {
  const readme = readFileSync(join(ROOT, "README.md"), "utf8");
  const section = readme.slice(readme.indexOf("\n### Client\n"));
  const match = /```ts\n([\s\S]*?)```/.exec(section);
  assert.ok(match, "README has a ts example under ### Client");
  return match[1];
}

describe("README client example", { timeout: 60_000 }, () => {
  test("runs as written on this runtime over WebSocket and SSE: prints the demo events and its own, then exits", async () => {
    const example = readmeExample();
    assert.ok(example.includes('from "wsevent/client"'));
    assert.ok(example.includes('"ws://localhost:8080/events"'));
    const service = await startService([
      "--serve-address",
      "127.0.0.1:0",
      "--interval",
      "50",
    ]);
    const dir = join(ROOT, ".tmp", `readme-client-${process.pid}`);
    mkdirSync(dir, { recursive: true });
    try {
      const client = pathToFileURL(join(ROOT, "src/client.ts")).href;
      for (const url of [service.url, `${service.http}/events`]) {
        const file = join(dir, url.startsWith("ws") ? "ws.ts" : "sse.ts");
        writeFileSync(
          file,
          example.replace('"wsevent/client"', JSON.stringify(client))
            .replace('"ws://localhost:8080/events"', JSON.stringify(url)),
        );
        const [command, args] = runtimeCommand(file);
        const child = startChild(command, args);
        let exited = false;
        child.exited.then(() => (exited = true));
        await waitFor(() => exited, 20_000, `the example (${url}) to exit`)
          .catch(async (error) => {
            await child.stop("SIGKILL");
            throw new Error(
              `${error.message}: ${child.stdout()}${child.stderr()}`,
            );
          });
        const { code } = await child.exited;
        assert.equal(code, 0, child.stderr());
        const lines = child.stdout().trim().split("\n");
        assert.match(lines.at(-1)!, /^\S+-\d+ hello from the client$/);
        assert.ok(lines.length >= 1);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await service.stop();
    }
  });
});
