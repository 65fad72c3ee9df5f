// `wsevent subscribe URL | head -1`: once the reader of its standard output
// is gone, the command stops quietly with exit code 0, as a Unix filter
// does, instead of crashing with a stack trace (Node), "Broken pipe"
// (Deno), or printing the error and running on for ever (Bun).
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { join } from "node:path";
import process from "node:process";
import { describe, test } from "node:test";
import { ROOT, runtimeCommand, startService } from "./_helpers.ts";

describe("subscribe into a closed pipe", () => {
  test("wsevent subscribe stops with exit 0 and no error once its stdout reader is gone", async () => {
    const service = await startService([
      "--serve-address",
      "127.0.0.1:0",
      "--interval",
      "50",
    ]);
    const [command, base] = runtimeCommand(join(ROOT, "cli.ts"));
    const child = spawn(command, [...base, "subscribe", service.url], {
      cwd: ROOT,
      env: { ...process.env, NO_COLOR: "1" },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let err = "";
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => (err += chunk));
    const exited = new Promise<{ code: number | null; signal: string | null }>(
      (done) => child.once("exit", (code, signal) => done({ code, signal })),
    );
    // Like `head -1`: read the first line, then close the pipe.
    child.stdout.once("data", () => child.stdout.destroy());
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const result = await Promise.race([
        exited,
        new Promise<string>((resolve) => {
          timer = setTimeout(() => resolve("still running after 15 s"), 15_000);
        }),
      ]);
      assert.deepEqual(result, { code: 0, signal: null }, err);
      assert.doesNotMatch(err, /EPIPE|Broken pipe|error/i);
    } finally {
      clearTimeout(timer);
      if (child.exitCode === null && child.signalCode === null) {
        child.kill("SIGKILL");
        await exited;
      }
      await service.stop();
    }
  });
});
