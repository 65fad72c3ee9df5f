import assert from "node:assert/strict";
import { type Config, parseConfig } from "../src/config.ts";
import { UsageError } from "../src/errors.ts";

/** An environment as `parseConfig()` reads it. */
export type Env = Record<string, string | undefined>;

/** Parses `args` and `env`, asserts a serve command and returns its config. */
export function serveConfig(args: readonly string[], env: Env = {}): Config {
  const command = parseConfig(args, env);
  assert.equal(command.kind, "serve");
  if (command.kind !== "serve") throw new Error("unreachable");
  return command.config;
}

/**
 * Asserts that `parseConfig(args, env)` throws a UsageError whose message
 * contains every part, and returns that error.
 */
export function assertUsageError(
  args: readonly string[],
  env: Env,
  ...parts: string[]
): UsageError {
  let caught: UsageError | undefined;
  assert.throws(
    () => parseConfig(args, env),
    (error: unknown) => {
      assert.ok(error instanceof UsageError, `UsageError for ${args}`);
      for (const part of parts) {
        assert.ok(
          error.message.includes(part),
          `message ${JSON.stringify(error.message)} names ${
            JSON.stringify(part)
          }`,
        );
      }
      caught = error;
      return true;
    },
  );
  return caught!;
}
