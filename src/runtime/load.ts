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
  if ("Deno" in globalThis) {
    const deno = await import("./deno.ts");
    // Without --allow-env the ws package cannot load: Deno.serve then.
    if (!deno.nodeServerAllowed()) return deno.runtime;
    return deno.withNodeServer((await import("./node.ts")).runtime);
  }
  if ("Bun" in globalThis) return (await import("./bun.ts")).runtime;
  return (await import("./node.ts")).runtime;
}
