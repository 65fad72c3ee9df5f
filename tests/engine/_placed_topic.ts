/** A topic on a Redis engine, with a subscriber, placed in its log. */

import type { Engine } from "../../src/engine/types.ts";
import { createHub, type Topic } from "../../src/hub.ts";
import { FakeSink } from "../_fake_sink.ts";
import { waitFor } from "../integration/_helpers.ts";

/**
 * Opens topic `path` of a new hub on `engine` with one subscriber, waits
 * for the engine, and appends a first event, which places the topic's
 * reader in the log (its own sync) and reaches the subscriber.
 */
export async function openPlaced(
  engine: Engine,
  path: string,
): Promise<{ topic: Topic; sink: FakeSink }> {
  const topic = createHub().addTopic(path, "unused");
  engine.open(topic);
  const sink = new FakeSink();
  topic.subscribe(sink);
  await waitFor(() => engine.status!.connected, 10_000, "the engine");
  await engine.opened?.(topic);
  const first = await engine.append(topic, "first");
  await waitFor(() => sink.ids.includes(first), 10_000, "the first event");
  return { topic, sink };
}
