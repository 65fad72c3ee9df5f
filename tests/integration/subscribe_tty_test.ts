import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { promisify } from "node:util";
import { ROOT, runtimeCommand, startChild, startProducer } from "./_helpers.ts";

const run = promisify(execFile);
// deno-lint-ignore no-control-regex -- the terminal escape is what is tested
const ESCAPE = /\x1b\[/;

function shellQuote(arg: string): string {
  return `'${arg.replaceAll("'", `'\\''`)}'`;
}

describe("subscribe in a terminal", { timeout: 60_000 }, () => {
  test("under a TTY (util-linux script) stderr shows a live status line; stdout stays plain data", async () => {
    const producer = await startProducer(20);
    const dir = mkdtempSync(join(tmpdir(), "wsevent-tty-"));
    try {
      const [command, base] = runtimeCommand(join(ROOT, "cli.ts"));
      const out = join(dir, "out.txt");
      const line = [
        command,
        ...base,
        "subscribe",
        producer.url,
        "--count",
        "40",
      ].map(shellQuote).join(" ");
      await run("script", [
        "-qfec",
        `${line} > ${shellQuote(out)}`,
        join(dir, "tty.log"),
      ], { cwd: ROOT });
      const tty = readFileSync(join(dir, "tty.log"), "utf8");
      assert.match(
        tty,
        // deno-lint-ignore no-control-regex -- the terminal escape is what is tested
        /\r\x1b\[2Klive ws:\/\/127\.0\.0\.1:\d+\/events \| [\d.]+ ev\/s \| \d+ events \| last \S+-\d+ \| reconnects 0/,
      );
      const data = readFileSync(out, "utf8");
      assert.doesNotMatch(data, ESCAPE);
      const lines = data.split("\n").filter((l) => l !== "");
      assert.equal(lines.length, 40);
      for (const l of lines) {
        assert.match(l, /^\d+: 127\.0\.0\.1:0: [A-Za-z]{10}$/);
      }
    } finally {
      rmSync(dir, { recursive: true, force: true });
      await producer.stop();
    }
  });

  test("in a pipe there is no status line: stderr has plain log lines only", async () => {
    const producer = await startProducer(20);
    try {
      const [command, base] = runtimeCommand(join(ROOT, "cli.ts"));
      const child = startChild(command, [
        ...base,
        "subscribe",
        producer.url,
        "--count",
        "10",
      ]);
      const { code } = await child.exited;
      assert.equal(code, 0);
      assert.doesNotMatch(child.stderr(), ESCAPE);
      assert.doesNotMatch(child.stderr(), /ev\/s/);
      assert.match(child.stderr(), /connected to ws:\/\//);
      assert.equal(
        child.stdout().split("\n").filter((l) => l !== "").length,
        10,
      );
    } finally {
      await producer.stop();
    }
  });
});
