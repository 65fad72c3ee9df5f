/**
 * Checks of the deploy examples' systemd units that deploy_config_test.ts
 * and deploy_redis_test.ts share, and the command runner they use.
 *
 * @module
 */
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { Unit } from "./_deploy_helpers.ts";

/** Runs a command to its end (20 s at most). */
export function run(
  command: string,
  args: string[],
): { status: number | null; output: string } {
  const result = spawnSync(command, args, {
    encoding: "utf8",
    timeout: 20_000,
  });
  if (result.error) {
    throw new Error(`cannot run ${command}: ${result.error.message}`);
  }
  return { status: result.status, output: `${result.stdout}${result.stderr}` };
}

/** Checks the sections of a unit, and every key of it against `keys`. */
export function assertKnownKeys(
  unit: Unit,
  keys: Record<string, Record<string, RegExp>>,
): void {
  assert.deepEqual([...unit.keys()], ["Unit", "Service", "Install"]);
  for (const [section, entries] of unit) {
    for (const [key, text] of entries) {
      const pattern = keys[section][key];
      assert.ok(
        pattern,
        `[${section}] ${key} is not a key this test knows (typo?)`,
      );
      assert.match(text, pattern, `[${section}] ${key}=${text}`);
    }
  }
}

/** systemd-analyze verify of `text` saved as `name` must print nothing. */
export function assertVerifies(name: string, text: string): void {
  const probe = spawnSync("systemd-analyze", ["--version"], {
    encoding: "utf8",
  });
  assert.ok(
    !probe.error && probe.status === 0,
    "systemd-analyze is not installed: apt-get install systemd (scripts/setup does)",
  );
  const dir = mkdtempSync(join(tmpdir(), "wsevent-unit-"));
  try {
    const file = join(dir, name);
    writeFileSync(file, text);
    const result = run("systemd-analyze", ["verify", file]);
    assert.equal(result.status, 0, result.output);
    assert.equal(
      result.output.trim(),
      "",
      `systemd-analyze verify complained:\n${result.output}`,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}
