/**
 * Picks the adapter of the runtime we run on.
 *
 * @module
 */

import type { Runtime } from "./types.ts";

/**
 * Loads the adapter of the runtime we run on. Each branch is a literal
 * import so `deno compile` and bundlers can see it.
 *
 * @returns The runtime adapter.
 */
export async function loadRuntime(): Promise<Runtime> {
  if ("Deno" in globalThis) return (await import("./deno.ts")).runtime;
  if ("Bun" in globalThis) return (await import("./bun.ts")).runtime;
  return (await import("./node.ts")).runtime;
}
