import { UsageError } from "../errors.ts";
import type { Engine } from "./types.ts";
/** Placeholder until the Redis engine lands. */
export function createRedisEngine(_options: unknown): Engine {
  throw new UsageError(
    "Cannot start the Redis engine: not available in this build yet",
  );
}
