/**
 * Bun.serve answers an exception in fetch with its development error page
 * (working directory, paths, stack, source lines) unless told otherwise.
 * Spawns Bun on every runtime: the page is Bun's.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { join } from "node:path";
import { ROOT, startChild, waitFor } from "../integration/_helpers.ts";

const BUN = join(ROOT, "node_modules", ".bin", "bun");

describe("Bun adapter errors (spawns Bun on every runtime: the page is Bun's)", () => {
  test("serve() answers a throwing fetch with a plain JSON 500, never Bun's development page", async () => {
    // Bun shows the page unless NODE_ENV is production.
    const child = startChild(
      BUN,
      [join(ROOT, "tests/runtime/_bun_throwing_server.ts")],
      { NODE_ENV: "development" },
    );
    try {
      await waitFor(
        () => /listening \d+/.test(child.stdout()),
        20_000,
        `the server (${child.stderr()})`,
      );
      const port = /listening (\d+)/.exec(child.stdout())![1];
      const answer = await fetch(`http://127.0.0.1:${port}/events`, {
        headers: { Accept: "text/html" },
      });
      const text = await answer.text();
      assert.equal(answer.status, 500);
      assert.match(answer.headers.get("content-type") ?? "", /json/);
      assert.deepEqual(JSON.parse(text), {
        error: "Internal error",
        code: "internal",
      });
      assert.equal(text.includes(ROOT), false);
    } finally {
      await child.stop("SIGKILL");
    }
  });
});
