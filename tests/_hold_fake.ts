/**
 * Test helpers for the hub's hold (`Topic.appendSent` / `Topic.appendDone`):
 * a fake engine called as the Redis engine calls the hub, and a topic with
 * one subscriber.
 */

import assert from "node:assert/strict";
import { createHub, type Topic } from "../src/hub.ts";
import { FakeSink } from "./_fake_sink.ts";

/**
 * A fake engine on one topic: `appendSent()` as an append is sent; on its
 * answer (in order, when the test says so) the event is ingested (when
 * stored), then `appendDone()`.
 */
export class FakeEngine {
  readonly topic: Topic;
  /** The next seq to be given. */
  seq = 0;
  #waiting: string[] = [];

  constructor(topic: Topic) {
    this.topic = topic;
  }

  /** Sends `n` appends. */
  send(n: number): void {
    for (let i = 0; i < n; i++) {
      this.#waiting.push(`d${this.seq + this.#waiting.length}`);
      this.topic.appendSent();
    }
  }

  /**
   * The oldest append in flight is stored (with `data` when given): its
   * event reaches the topic, then its answer.
   */
  store(data?: string): string {
    const sent = this.#waiting.shift();
    assert.ok(sent !== undefined, "an append in flight");
    const seq = this.seq++;
    this.topic.ingest({ epoch: "r", seq }, data ?? sent);
    this.topic.appendDone();
    return `r-${seq}`;
  }

  /** The oldest append in flight fails (503): nothing stored. */
  fail(): void {
    assert.ok(this.#waiting.shift() !== undefined, "an append in flight");
    this.topic.appendDone();
  }

  /** An event appended by another instance arrives on the live channel. */
  other(): string {
    const seq = this.seq++;
    this.topic.ingest({ epoch: "r", seq }, `other${seq}`);
    return `r-${seq}`;
  }
}

/** A hub with topic "events", one subscriber, and a fake engine on it. */
export function setUp() {
  const hub = createHub();
  const topic = hub.addTopic("events", "unused");
  const sink = new FakeSink();
  topic.subscribe(sink);
  return { hub, topic, sink, engine: new FakeEngine(topic) };
}
