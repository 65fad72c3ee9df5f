/**
 * A child for bun_error_page_test.ts: the Bun adapter serving a fetch that
 * throws, with a message naming this file's path. Run with Bun.
 */

import { runtime } from "../../src/runtime/bun.ts";

const server = await runtime.serve(() => {
  throw new Error(`boom in ${import.meta.url}`);
}, { hostname: "127.0.0.1", port: 0, maxFrameBytes: 1024 });
console.log(`listening ${server.port}`);
