import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import process from "node:process";
import { promisify } from "node:util";
import { connectWs, ROOT, startChild, waitFor } from "./_helpers.ts";

const run = promisify(execFile);

async function startBinary(binary: string, args: string[]) {
  const child = startChild(binary, args);
  await waitFor(
    () => /Serving on: \S+/.test(child.stdout()),
    15_000,
    "Serving on:",
  );
  const url = /Serving on: (\S+)/.exec(child.stdout())![1];
  return { ...child, url, port: Number(new URL(url).port) };
}

describe("standalone binaries", { timeout: 120_000 }, () => {
  test("bun build --compile (built with Bun on every runtime: the binary is Bun's): help, producer, relay, SIGTERM; payload under 1 MB", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wsevent-bin-"));
    const binary = join(dir, "wsevent");
    try {
      const built = await run("bash", [
        join(ROOT, "scripts/build/compile-bun"),
        binary,
      ], { cwd: ROOT });
      const sizes = /binary (\d+) bytes, application payload (\d+) bytes/.exec(
        built.stdout,
      );
      assert.ok(sizes, built.stdout);
      const payload = Number(sizes[2]);
      assert.ok(payload < 1_000_000, `payload ${payload} bytes`);

      const help = await run(binary, ["--help"]);
      assert.match(help.stdout, /-serve-address/);
      const version = await run(binary, ["--version"]);
      assert.match(version.stdout, /^wsevent \d+\.\d+\.\d+ \(bun\)/);

      const producer = await startBinary(binary, [
        "-serve-address",
        "127.0.0.1:0",
        "-interval",
        "20",
      ]);
      const relay = await startBinary(binary, [
        "-consume-address",
        `127.0.0.1:${producer.port}`,
        "-consume-path",
        "events",
        "-serve-address",
        "127.0.0.1:0",
        "-serve-path",
        "proxy-events",
        "-no-produce",
      ]);
      const client = connectWs(relay.url);
      try {
        await client.opened;
        await waitFor(
          () => client.messages.length >= 5,
          10_000,
          "events through the binary relay",
        );
        assert.match(
          client.messages[0],
          /^\d+: 127\.0\.0\.1:0: [A-Za-z]{10}\n$/,
        );
      } finally {
        client.close();
        const exits = await Promise.all([
          relay.stop("SIGTERM"),
          producer.stop("SIGTERM"),
        ]);
        assert.deepEqual(exits, [{ code: 0, signal: null }, {
          code: 0,
          signal: null,
        }]);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("deno compile: scripts/build/compile type-checks and bundles, and stops only at the base runtime, which cannot be downloaded here (DENORT_BIN set to a missing file)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wsevent-deno-bin-"));
    try {
      const result = await run("bash", [
        join(ROOT, "scripts/build/compile"),
        join(dir, "wsevent"),
      ], {
        cwd: ROOT,
        env: {
          ...process.env,
          DENORT_BIN: join(dir, "no-denort-here"),
          NO_COLOR: "1",
        },
      }).then(
        () => ({ stderr: "", ok: true }),
        (error: { stderr: string }) => ({ stderr: error.stderr, ok: false }),
      );
      // With a real denort (DENORT_BIN) this builds; here it must get as far
      // as embedding the bundle into the runtime, and fail only for that.
      assert.equal(result.ok, false);
      assert.match(result.stderr, /Compile \S*deno_compile_bundle\S*\.mjs/);
      assert.match(result.stderr, /Could not find denort at/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
