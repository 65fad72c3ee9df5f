/**
 * The memory engine, the default: the hub's replay buffer is each topic's
 * log and the process gives the ids (`<epoch>-<seq>`, a new epoch at every
 * start). Nothing to connect to, so it is always ready.
 *
 * @module
 */

import type { EventData } from "../event.ts";
import type { Topic } from "../hub.ts";
import type { Engine } from "./types.ts";

/**
 * Creates the memory engine.
 *
 * @example Usage
 * ```ts
 * import { createHub, createMemoryEngine } from "../../mod.ts";
 * const engine = createMemoryEngine();
 * const topic = createHub().addTopic("events", "e1");
 * engine.open(topic);
 * console.log(engine.append(topic, "hello")); // "e1-0"
 * ```
 *
 * @returns The engine.
 */
export function createMemoryEngine(): Engine {
  return {
    name: "memory",
    status: undefined,
    // The topic's buffer is the log: nothing to feed, nothing to read back.
    open(_topic: Topic): void {},
    release(_topic: Topic): void {},
    append: (topic: Topic, data: EventData): string => topic.publish(data).id,
    close: (): Promise<void> => Promise.resolve(),
  };
}
