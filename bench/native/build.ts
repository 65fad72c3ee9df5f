/**
 * Builds the benchmark's native load client, `bench/native/client.c`, with
 * the machine's C compiler into `.tmp/native/client` (git ignores `.tmp/`),
 * again only when the source is newer than the binary. Used by
 * `bench/run.ts` (`--client native`, the default) and by its test; written
 * with `node:` modules so that it runs on Deno, Bun and Node.
 *
 * @module
 */

import { execFile } from "node:child_process";
import { mkdirSync, renameSync, rmSync, statSync } from "node:fs";
import { dirname, join } from "node:path";
import process from "node:process";

/** The client's source, relative to the project root. */
export const NATIVE_CLIENT_SOURCE = "bench/native/client.c";
/** Where the binary goes, relative to the project root. */
export const NATIVE_CLIENT_BINARY = ".tmp/native/client";
/** Compilers tried in order after `$CC`. */
const COMPILERS = ["cc", "gcc", "clang"];
const FLAGS = ["-O2", "-std=c11", "-Wall", "-Wextra"];
const COMPILE_TIMEOUT_MS = 120_000;

/** The client could not be built: no compiler, or the compiler failed. */
export class NativeBuildError extends Error {
  override name = "NativeBuildError";
}

/** Runs `command`; resolves with its exit code and output, or null if it does not exist. */
function compile(
  command: string,
  args: string[],
  cwd: string,
): Promise<{ code: number; output: string } | null> {
  return new Promise((resolve) => {
    execFile(
      command,
      args,
      { cwd, timeout: COMPILE_TIMEOUT_MS, maxBuffer: 1 << 22 },
      (error, stdout, stderr) => {
        const output = `${stdout}${stderr}`.trim();
        if (error === null) return resolve({ code: 0, output });
        // A string code is the spawn's error, a number the exit code.
        if (error.code === "ENOENT") return resolve(null);
        const code = typeof error.code === "number" ? error.code : 1;
        resolve({ code, output: output || error.message });
      },
    );
  });
}

function modifiedMs(path: string): number | undefined {
  try {
    return statSync(path).mtimeMs;
  } catch {
    return undefined;
  }
}

/**
 * Compiles the native load client if its binary is missing or older than
 * its source.
 *
 * @param root The project root.
 * @returns The binary's absolute path.
 * @throws {NativeBuildError} When no C compiler is found or compiling fails;
 * the message carries the compiler's output.
 *
 * @example Usage
 * ```ts ignore
 * import { buildNativeClient } from "./bench/native/build.ts";
 * const client = await buildNativeClient(".");
 * ```
 */
export async function buildNativeClient(root: string): Promise<string> {
  const source = join(root, NATIVE_CLIENT_SOURCE);
  const binary = join(root, NATIVE_CLIENT_BINARY);
  const sourceMs = modifiedMs(source);
  if (sourceMs === undefined) {
    throw new NativeBuildError(`Cannot find ${NATIVE_CLIENT_SOURCE}`);
  }
  if ((modifiedMs(binary) ?? -Infinity) >= sourceMs) return binary;
  mkdirSync(dirname(binary), { recursive: true });
  // Each build writes its own file and renames it into place, so that two
  // test processes building at once never run a half-written binary.
  const partial = `${binary}.${process.pid}.partial`;
  const candidates = process.env.CC ? [process.env.CC] : COMPILERS;
  for (const compiler of candidates) {
    const result = await compile(
      compiler,
      [...FLAGS, "-o", partial, source],
      root,
    );
    if (result === null) continue;
    if (result.code !== 0) {
      rmSync(partial, { force: true });
      throw new NativeBuildError(
        `Cannot compile ${NATIVE_CLIENT_SOURCE}: ${compiler} exited with code ${result.code}:\n${result.output}`,
      );
    }
    renameSync(partial, binary);
    return binary;
  }
  throw new NativeBuildError(
    `Cannot build the native load client: no C compiler found (tried ${
      candidates.join(", ")
    }): install one (Debian: apt-get install gcc libc6-dev) or pass --client bun`,
  );
}
