/**
 * Topics on demand (src/topics.ts): names, the limit, the idle sweep with
 * a fake clock, the engine seam (open on create, release on drop), and a
 * new epoch for a topic created again.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createMemoryEngine } from "../src/engine/memory.ts";
import type { Engine } from "../src/engine/types.ts";
import { createHub, type Sink, type Topic } from "../src/hub.ts";
import {
  createTopicPatterns,
  MAX_TOPIC_NAME_CHARS,
  topicNameProblem,
  TopicRefusedError,
} from "../src/topics.ts";
import type { GapNotice, StreamEvent } from "../src/event.ts";

function recordingEngine(): Engine & { log: string[] } {
  const memory = createMemoryEngine();
  const log: string[] = [];
  return {
    ...memory,
    log,
    open(topic: Topic) {
      log.push(`open ${topic.path}`);
    },
    release(topic: Topic) {
      log.push(`release ${topic.path}`);
    },
  };
}

function sink(): Sink & { events: string[]; gaps: GapNotice[] } {
  const events: string[] = [];
  const gaps: GapNotice[] = [];
  return {
    format: "raw",
    transport: "sse",
    events,
    gaps,
    send(event: StreamEvent) {
      events.push(event.id);
      return 0;
    },
    queued: () => 0,
    notify: (notice) => void gaps.push(notice),
    close() {},
  };
}

function setup(options: { maxTopics?: number; ttlMs?: number } = {}) {
  let clock = 1_000_000;
  const hub = createHub();
  hub.addTopic("events", "e1");
  const engine = recordingEngine();
  const created: string[] = [];
  const dropped: string[] = [];
  const topics = createTopicPatterns({
    patterns: ["rooms/*", "users/*"],
    hub,
    engine,
    maxTopics: options.maxTopics ?? 3,
    ttlMs: options.ttlMs ?? 1000,
    now: () => clock,
    onCreate: (t) => void created.push(t.path),
    onDrop: (t) => void dropped.push(t.path),
  });
  return {
    hub,
    engine,
    topics,
    created,
    dropped,
    tick(ms: number) {
      clock += ms;
      topics.sweep();
    },
  };
}

describe("topicNameProblem()", () => {
  test("accepts names of letters, digits and . _ ~ : @ - between slashes", () => {
    for (const name of ["rooms/42", "rooms/a.b_c~d:e@f-g", "rooms/1/chat"]) {
      assert.equal(topicNameProblem(name), null, name);
    }
  });

  test("refuses empty and dot segments, other characters, and long names", () => {
    const cases: [string, RegExp][] = [
      ["rooms//a", /empty path segment/],
      ["rooms/a/", /empty path segment/],
      ["rooms/.", /"\." and "\.\." are not topic names/],
      ["rooms/../etc", /"\." and "\.\."/],
      ["rooms/a b", /expected letters, digits/],
      ["rooms/<script>", /expected letters, digits/],
      ["rooms/é", /expected letters, digits/],
      ["rooms/*", /expected letters, digits/],
      [`rooms/${"x".repeat(MAX_TOPIC_NAME_CHARS)}`, /at most 200 characters/],
    ];
    for (const [name, message] of cases) {
      assert.match(topicNameProblem(name) ?? "accepted", message, name);
    }
  });
});

describe("createTopicPatterns()", () => {
  test("obtain() creates a topic once, through the engine, and finds it after", () => {
    const { hub, engine, topics, created } = setup();
    const room = topics.obtain("rooms/1");
    assert.equal(topics.obtain("rooms/1"), room);
    assert.equal(hub.topic("rooms/1"), room);
    assert.deepEqual(engine.log, ["open rooms/1"]);
    assert.deepEqual(created, ["rooms/1"]);
    assert.ok(topics.owns(room));
    assert.ok(!topics.owns(hub.topic("events")!));
    assert.equal(topics.patternOf("users/ann"), "users/*");
    assert.equal(topics.patternOf("other/1"), undefined);
  });

  test("obtain() refuses a bad name with 400 and creates nothing", () => {
    const { hub, topics } = setup();
    assert.throws(() => topics.obtain("rooms/a//b"), (error) => {
      assert.ok(error instanceof TopicRefusedError);
      assert.equal(error.status, 400);
      assert.equal(error.code, "bad_topic");
      return true;
    });
    assert.throws(() => topics.obtain("nothere/1"), /no served pattern/);
    assert.equal(hub.topics().length, 1);
  });

  test("obtain() past maxTopics answers 503; existing topics keep working", () => {
    const { topics } = setup({ maxTopics: 2 });
    const one = topics.obtain("rooms/1");
    topics.obtain("users/1");
    assert.throws(() => topics.obtain("rooms/3"), (error) => {
      assert.ok(error instanceof TopicRefusedError);
      assert.equal(error.status, 503);
      assert.match(error.message, /maximum of 2 topics/);
      return true;
    });
    assert.equal(topics.refused, 1);
    assert.equal(topics.obtain("rooms/1"), one);
    assert.equal(one.publish("still").id.endsWith("-0"), true);
  });

  test("sweep() drops a topic idle for the TTL with its buffer, and frees its place", () => {
    const { hub, engine, topics, dropped, tick } = setup({ maxTopics: 1 });
    const room = topics.obtain("rooms/1");
    room.publish("a");
    tick(600);
    tick(600); // published at the first sweep: still within the TTL
    assert.equal(hub.topic("rooms/1"), room);
    tick(600);
    assert.equal(hub.topic("rooms/1"), undefined);
    assert.deepEqual(dropped, ["rooms/1"]);
    assert.deepEqual(engine.log, ["open rooms/1", "release rooms/1"]);
    assert.equal(topics.dropped, 1);
    const again = topics.obtain("rooms/2");
    assert.equal(again.path, "rooms/2");
  });

  test("sweep() keeps a topic with subscribers, and one that is published to", () => {
    const { hub, topics, tick } = setup();
    const watched = topics.obtain("rooms/1");
    const busy = topics.obtain("rooms/2");
    const subscription = watched.subscribe(sink());
    for (let i = 0; i < 10; i++) {
      busy.publish(`e${i}`);
      tick(500);
    }
    assert.equal(hub.topic("rooms/1"), watched);
    assert.equal(hub.topic("rooms/2"), busy);
    subscription.cancel();
    tick(500);
    tick(600);
    assert.equal(hub.topic("rooms/1"), undefined, "dropped once unwatched");
  });

  test("a topic created again gets a new epoch: a resume across it is told of the gap", () => {
    const { topics, tick } = setup();
    const first = topics.obtain("rooms/1");
    const old = first.publish("before").id;
    tick(600);
    tick(1100);
    const second = topics.obtain("rooms/1");
    assert.notEqual(second, first);
    assert.notEqual(second.epoch, first.epoch);
    second.publish("after");
    const resumed = sink();
    second.subscribe(resumed, { lastEventId: old });
    assert.equal(resumed.gaps.length, 1);
    assert.match(resumed.gaps[0].reason, /restarted/);
    assert.equal(resumed.events.length, 1);
  });

  test("stats() counts per pattern; close() releases every topic", () => {
    const { engine, topics } = setup();
    topics.obtain("rooms/1").publish("abc");
    topics.obtain("rooms/2");
    topics.obtain("users/1").subscribe(sink());
    assert.deepEqual(topics.stats(), [
      {
        pattern: "rooms/*",
        topics: 2,
        subscribers: 0,
        buffered: 1,
        bufferedBytes: 3,
      },
      {
        pattern: "users/*",
        topics: 1,
        subscribers: 1,
        buffered: 0,
        bufferedBytes: 0,
      },
    ]);
    topics.close();
    assert.equal(engine.log.filter((l) => l.startsWith("release")).length, 3);
  });

  test("with a TTL of 0 nothing is dropped", () => {
    const { hub, topics, tick } = setup({ ttlMs: 0 });
    topics.obtain("rooms/1");
    tick(10_000_000);
    assert.ok(hub.topic("rooms/1") !== undefined);
  });
});
