/**
 * The benchmark's quick mode (`bench/run.ts --quick`) for the runtime running
 * this test: every scenario, small, against wsevent and the runtime's
 * baseline (scenario r: the Redis engine against the memory engine, with a
 * redis-server of its own). It fails only on lost or duplicated messages or errors, never on
 * timings. The runner itself is a Deno program, so this test spawns Deno
 * whichever runtime runs it.
 *
 * @module
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
/**
 * Bounds a hung run only: the whole quick run (scenario r included) took
 * 22 s on Node at load 3 and up to 50 s in full-suite runs at load 10-15,
 * so a 100 s bound was hit on a loaded 2-core machine.
 */
const RUN_TIMEOUT_MS = 240_000;
const RUNTIME = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";
const LOCAL_DENO = join(ROOT, "node_modules", ".bin", "deno");
const DENO = existsSync(LOCAL_DENO) ? LOCAL_DENO : "deno";

/** Runs `command` in the project root; resolves with its exit code and output. */
function run(
  command: string,
  args: string[],
): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, {
      cwd: ROOT,
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stdout = "";
    let stderr = "";
    child.stdout.setEncoding("utf8").on(
      "data",
      (chunk: string) => stdout += chunk,
    );
    child.stderr.setEncoding("utf8").on(
      "data",
      (chunk: string) => stderr += chunk,
    );
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

/** The lost and duplicated columns of the table's first row for `scenario` and the runtime. */
function countsOf(table: string, scenario: string): string[][] {
  return table.split("\n")
    .filter((line) =>
      line.startsWith(`| ${scenario} `) && line.split(" | ")[2] === RUNTIME
    )
    .map((line) =>
      line.split(" | ").slice(7, 9).map((cell) =>
        cell.replace(/ \|$/, "").trim()
      )
    );
}

describe("bench/run.ts --quick", { timeout: RUN_TIMEOUT_MS + 10_000 }, () => {
  // Its own timeout: the runners' default (--test-timeout, --timeout) is
  // 120 s a test.
  test(`runs every scenario on ${RUNTIME} with nothing lost or duplicated`, {
    timeout: RUN_TIMEOUT_MS + 10_000,
  }, async () => {
    const { code, stdout, stderr } = await run(DENO, [
      "run",
      "-A",
      "bench/run.ts",
      "--quick",
      "--runtime",
      RUNTIME,
    ]);
    const report = `stdout:\n${stdout}\nstderr:\n${stderr}`;
    assert.equal(code, 0, report);
    assert.match(stdout, /^result: lost=0 duplicated=0 errors=0$/m, report);
    // r: the Redis engine (wsevent column) against the memory engine.
    for (const scenario of ["a", "b", "c", "e", "r"]) {
      assert.deepEqual(
        countsOf(stdout, scenario),
        [["0 / 0", "0 / 0"]],
        `scenario ${scenario}\n${report}`,
      );
    }
    assert.deepEqual(
      countsOf(stdout, "d"),
      [["0", "0"]],
      `scenario d\n${report}`,
    );
  });

  test("exits 2 on an unknown scenario", async () => {
    const { code, stderr } = await run(DENO, [
      "run",
      "-A",
      "bench/run.ts",
      "--quick",
      "--scenario",
      "z",
    ]);
    assert.equal(code, 2);
    assert.match(
      stderr,
      /Cannot parse --scenario: expected some of a,b,c,d,e,r, received "z"/,
    );
  });
});
