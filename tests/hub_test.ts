import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  type ChannelSend,
  createHub,
  HubClosedError,
  type HubOptions,
} from "../src/hub.ts";
import { FakeSink } from "./_fake_sink.ts";
import { watchTimers } from "./_timers.ts";

function topicOf(options: HubOptions = {}, path = "events", epoch = "e") {
  const hub = createHub(options);
  return { hub, topic: hub.addTopic(path, epoch) };
}

function range(epoch: string, from: number, to: number): string[] {
  const ids: string[] = [];
  for (let seq = from; seq <= to; seq++) ids.push(`${epoch}-${seq}`);
  return ids;
}

describe("createHub() options and topics", () => {
  test("createHub() fills in the documented defaults and ignores undefined", () => {
    assert.deepEqual(createHub({ bufferSize: undefined }).options, {
      bufferSize: 1000,
      bufferBytes: 1048576,
      maxQueueBytes: 4194304,
      maxSubscribers: 10000,
      slowPolicy: "close",
      coalesceMs: 0,
    });
    assert.equal(createHub({ bufferSize: 5 }).options.bufferSize, 5);
  });

  test("Hub.addTopic() is idempotent and keeps the first epoch", () => {
    const hub = createHub();
    const a = hub.addTopic("events", "one");
    assert.equal(hub.addTopic("events", "two"), a);
    assert.equal(a.epoch, "one");
    assert.equal(a.path, "events");
    assert.equal(hub.topic("events"), a);
    assert.equal(hub.topic("other"), undefined);
    const b = hub.addTopic("other", "one");
    assert.deepEqual(hub.topics(), [a, b]);
  });
});

describe("Topic.publish()", () => {
  test("Topic.publish() gives increasing ids from 0 in the topic's epoch", () => {
    const { topic } = topicOf({}, "events", "ep0ch");
    assert.deepEqual(
      [topic.publish("a"), topic.publish("b"), topic.publish("c")].map((e) =>
        e.id
      ),
      ["ep0ch-0", "ep0ch-1", "ep0ch-2"],
    );
    assert.equal(topic.lastId, "ep0ch-2");
  });

  test("Topic.publish() numbers each path on its own", () => {
    const hub = createHub();
    const a = hub.addTopic("a", "e");
    const b = hub.addTopic("b", "e");
    a.publish("x");
    a.publish("x");
    assert.equal(b.publish("y").id, "e-0");
  });

  test("Topic.publish() fans out every event to every subscriber in order, sharing one event object", () => {
    const { topic } = topicOf();
    const one = new FakeSink();
    const two = new FakeSink({ format: "sse", transport: "sse" });
    topic.subscribe(one);
    topic.subscribe(two);
    for (let i = 0; i < 50; i++) topic.publish(`m${i}`);
    assert.deepEqual(one.ids, range("e", 0, 49));
    assert.deepEqual(two.ids, range("e", 0, 49));
    one.events.forEach((event, i) => assert.equal(two.events[i], event));
    assert.deepEqual(one.notices, []);
  });

  test("Topic.publish() does not send to subscribers of other paths", () => {
    const hub = createHub();
    const a = hub.addTopic("a", "e");
    const b = hub.addTopic("b", "e");
    const sink = new FakeSink();
    b.subscribe(sink);
    a.publish("x");
    assert.deepEqual(sink.events, []);
  });

  test("Topic.subscribe() without a last id gets only live events", () => {
    const { topic } = topicOf();
    topic.publish("old");
    const sink = new FakeSink();
    topic.subscribe(sink);
    topic.publish("new");
    assert.deepEqual(sink.ids, ["e-1"]);
  });
});

describe("Topic replay buffer", () => {
  test("Topic keeps at most bufferSize events", () => {
    const { topic } = topicOf({ bufferSize: 3 });
    for (let i = 0; i < 5; i++) topic.publish("x");
    assert.equal(topic.buffered, 3);
    assert.equal(topic.capacity, 3);
    const sink = new FakeSink();
    topic.subscribe(sink, { replayAll: true });
    assert.deepEqual(sink.ids, ["e-2", "e-3", "e-4"]);
  });

  test("Topic keeps at most bufferBytes of payload", () => {
    const { topic } = topicOf({ bufferSize: 100, bufferBytes: 10 });
    for (let i = 0; i < 4; i++) topic.publish("aaaa");
    assert.equal(topic.buffered, 2);
    assert.equal(topic.bufferedBytes, 8);
    const sink = new FakeSink();
    topic.subscribe(sink, { replayAll: true });
    assert.deepEqual(sink.ids, ["e-2", "e-3"]);
  });

  test("Topic keeps the newest event even when it alone is over bufferBytes", () => {
    const { topic } = topicOf({ bufferBytes: 4 });
    topic.publish("ab");
    topic.publish("0123456789");
    assert.equal(topic.buffered, 1);
    assert.equal(topic.bufferedBytes, 10);
    assert.equal(topic.lastId, "e-1");
  });

  test("Topic counts UTF-8 and binary sizes in bufferedBytes", () => {
    const { topic } = topicOf();
    topic.publish("é");
    topic.publish(new Uint8Array(5));
    assert.equal(topic.bufferedBytes, 7);
  });

  test("Topic with bufferSize 0 keeps nothing", () => {
    const { topic } = topicOf({ bufferSize: 0 });
    topic.publish("x");
    assert.equal(topic.buffered, 0);
    assert.equal(topic.lastId, null);
  });

  test("Topic.subscribe() with replayAll gets the whole buffer then live events, with no gap notice", () => {
    const { hub, topic } = topicOf();
    topic.publish("a");
    topic.publish("b");
    const sink = new FakeSink();
    topic.subscribe(sink, { replayAll: true });
    topic.publish("c");
    assert.deepEqual(sink.log, ["e-0", "e-1", "e-2"]);
    assert.equal(hub.stats.resumes, 0);
    assert.equal(hub.stats.gaps, 0);
  });
});

describe("Topic.subscribe() resume", () => {
  test("Topic.subscribe() resuming within the buffer gets exactly the events after the id, then live ones", () => {
    const { hub, topic } = topicOf({ bufferSize: 100 });
    for (let i = 0; i < 10; i++) topic.publish(`m${i}`);
    for (const k of [0, 1, 5, 9]) {
      const sink = new FakeSink();
      const subscription = topic.subscribe(sink, { lastEventId: `e-${9 - k}` });
      assert.deepEqual(sink.log, range("e", 10 - k, 9), `k=${k}`);
      subscription.cancel();
    }
    const sink = new FakeSink();
    topic.subscribe(sink, { lastEventId: "e-6" });
    topic.publish("live");
    assert.deepEqual(sink.log, ["e-7", "e-8", "e-9", "e-10"]);
    assert.equal(hub.stats.gaps, 0);
    assert.equal(hub.stats.resumes, 5);
  });

  test("Topic.subscribe() resuming from the id just before the oldest buffered is exact", () => {
    const { hub, topic } = topicOf({ bufferSize: 3 });
    for (let i = 0; i < 10; i++) topic.publish("x");
    const sink = new FakeSink();
    topic.subscribe(sink, { lastEventId: "e-6" });
    assert.deepEqual(sink.log, ["e-7", "e-8", "e-9"]);
    assert.equal(hub.stats.gaps, 0);
  });

  test("Topic.subscribe() resuming from an id older than the buffer sends a gap notice, then every buffered event", () => {
    const { hub, topic } = topicOf({ bufferSize: 3 });
    for (let i = 0; i < 10; i++) topic.publish("x");
    const sink = new FakeSink();
    topic.subscribe(sink, { lastEventId: "e-2" });
    topic.publish("live");
    assert.deepEqual(sink.log, ["gap:e-2", "e-7", "e-8", "e-9", "e-10"]);
    assert.match(sink.notices[0].reason, /no longer buffered/);
    assert.equal(hub.stats.gaps, 1);
  });

  test("Topic.subscribe() resuming from another epoch sends a gap notice, then every buffered event", () => {
    const { topic } = topicOf({ bufferSize: 3 });
    for (let i = 0; i < 5; i++) topic.publish("x");
    const sink = new FakeSink();
    topic.subscribe(sink, { lastEventId: "old-4" });
    assert.deepEqual(sink.log, ["gap:old-4", "e-2", "e-3", "e-4"]);
    assert.match(sink.notices[0].reason, /restarted/);
  });

  test("Topic.subscribe() resuming from a malformed id sends a gap notice, then every buffered event", () => {
    const { hub, topic } = topicOf();
    topic.publish("a");
    topic.publish("b");
    for (const id of ["garbage", "", "E-1", "e-01"]) {
      const sink = new FakeSink();
      const subscription = topic.subscribe(sink, { lastEventId: id });
      assert.deepEqual(sink.log, [`gap:${id}`, "e-0", "e-1"], id);
      assert.equal(sink.notices[0].lastEventId, id);
      subscription.cancel();
    }
    assert.equal(hub.stats.gaps, 4);
  });

  test("Topic.subscribe() resuming from another epoch on an empty buffer sends the gap at the first live event", () => {
    const { topic } = topicOf();
    const sink = new FakeSink();
    topic.subscribe(sink, { lastEventId: "old-4" });
    assert.deepEqual(sink.log, []);
    topic.publish("x");
    assert.deepEqual(sink.log, ["gap:old-4", "e-0"]);
  });

  test("Topic.subscribe() resuming from an id ahead of the buffer skips what the client has and sends no gap when the next is seq+1", () => {
    // A relay restarted with an empty buffer while its client kept up-5.
    const { hub, topic } = topicOf({}, "events", "relay");
    const sink = new FakeSink();
    topic.subscribe(sink, { lastEventId: "up-5" });
    for (let seq = 3; seq <= 7; seq++) {
      topic.ingest({ epoch: "up", seq }, `m${seq}`);
    }
    assert.deepEqual(sink.log, ["up-6", "up-7"]);
    assert.equal(hub.stats.gaps, 0);
  });

  test("Topic.subscribe() resuming ahead of published ids waits for them, with no duplicate and no gap", () => {
    const { topic } = topicOf();
    topic.publish("0");
    topic.publish("1");
    const sink = new FakeSink();
    topic.subscribe(sink, { lastEventId: "e-3" });
    assert.deepEqual(sink.log, []);
    for (let i = 2; i <= 5; i++) topic.publish(String(i));
    assert.deepEqual(sink.log, ["e-4", "e-5"]);
  });

  test("Topic.subscribe() resuming ahead sends a gap when the next event jumps past seq+1", () => {
    const { topic } = topicOf({}, "events", "relay");
    const sink = new FakeSink();
    topic.subscribe(sink, { lastEventId: "up-5" });
    topic.ingest({ epoch: "up", seq: 8 }, "x");
    assert.deepEqual(sink.log, ["gap:up-5", "up-8"]);
  });

  test("Topic.subscribe() resuming from the newest id gets nothing replayed, then live events", () => {
    const { topic } = topicOf();
    topic.publish("a");
    const sink = new FakeSink();
    topic.subscribe(sink, { lastEventId: "e-0" });
    assert.deepEqual(sink.log, []);
    topic.publish("b");
    assert.deepEqual(sink.log, ["e-1"]);
  });
});

describe("Topic.subscribe() resume across an upstream gap", () => {
  test("Topic.subscribe() resuming from before an upstream gap still gets the gap notice, in place", () => {
    // A relay: the upstream restarted between up-2 and new-0 and said so.
    // A live subscriber is told; one resuming from up-1 later must be too.
    const { topic } = topicOf({}, "events", "relay");
    const live = new FakeSink({ format: "json" });
    topic.subscribe(live);
    topic.ingest({ epoch: "up", seq: 1 }, "a");
    topic.ingest({ epoch: "up", seq: 2 }, "b");
    topic.notifyGap({ lastEventId: "up-2", reason: "upstream restarted" });
    topic.ingest({ epoch: "new", seq: 0 }, "c");
    assert.deepEqual(live.log, ["up-1", "up-2", "gap:up-2", "new-0"]);
    const resumed = new FakeSink({ format: "json" });
    topic.subscribe(resumed, { lastEventId: "up-1" });
    assert.deepEqual(resumed.log, ["up-2", "gap:up-2", "new-0"]);
  });
});

describe("Topic.ingest()", () => {
  test("Topic.ingest() keeps the upstream's id and ignores the topic's epoch", () => {
    const { topic } = topicOf({}, "events", "local");
    const event = topic.ingest({ epoch: "up", seq: 41 }, "x");
    assert.equal(event?.id, "up-41");
    assert.equal(topic.lastId, "up-41");
  });

  test("Topic.ingest() drops duplicates and older events of the same epoch", () => {
    const { hub, topic } = topicOf();
    const sink = new FakeSink();
    topic.subscribe(sink);
    assert.ok(topic.ingest({ epoch: "up", seq: 3 }, "a"));
    assert.equal(topic.ingest({ epoch: "up", seq: 3 }, "a"), undefined);
    assert.equal(topic.ingest({ epoch: "up", seq: 1 }, "a"), undefined);
    assert.ok(topic.ingest({ epoch: "up", seq: 4 }, "b"));
    assert.deepEqual(sink.log, ["up-3", "up-4"]);
    assert.equal(hub.stats.published, 2);
  });

  test("Topic.ingest() accepts a new epoch starting again from 0", () => {
    const { topic } = topicOf();
    topic.ingest({ epoch: "one", seq: 10 }, "a");
    assert.equal(topic.ingest({ epoch: "two", seq: 0 }, "b")?.id, "two-0");
  });

  test("Topic.notifyGap() tells every subscriber and counts each notice", () => {
    const { hub, topic } = topicOf();
    const a = new FakeSink();
    const b = new FakeSink();
    topic.subscribe(a);
    topic.subscribe(b);
    topic.notifyGap({ lastEventId: "up-1", reason: "upstream gap" });
    assert.deepEqual(a.notices, [{
      lastEventId: "up-1",
      reason: "upstream gap",
    }]);
    assert.deepEqual(b.log, ["gap:up-1"]);
    assert.equal(hub.stats.gaps, 2);
  });
});

describe("slow subscribers", () => {
  test("createHub() closes a subscriber whose queue is over the limit with 1008; others get every event", () => {
    const { hub, topic } = topicOf({ maxQueueBytes: 100 });
    const slow = new FakeSink({ accumulate: true });
    const fast = new FakeSink();
    topic.subscribe(slow);
    topic.subscribe(fast);
    for (let i = 0; i < 30; i++) topic.publish("0123456789");
    // 10 bytes each: the 11th send leaves 110 > 100 queued.
    assert.equal(slow.events.length, 11);
    assert.equal(slow.closed?.code, 1008);
    assert.match(slow.closed?.reason ?? "", /slow/);
    assert.equal(slow.closeCalls, 1);
    assert.deepEqual(fast.ids, range("e", 0, 29));
    assert.equal(fast.closed, null);
    assert.equal(topic.subscribers, 1);
    assert.equal(hub.counts.websocket, 1);
    assert.equal(hub.stats.slowDisconnects, 1);
  });

  test("createHub() keeps a subscriber whose queue is exactly at the limit", () => {
    const { topic } = topicOf({ maxQueueBytes: 100 });
    const sink = new FakeSink({ accumulate: true });
    topic.subscribe(sink);
    for (let i = 0; i < 10; i++) topic.publish("0123456789");
    assert.equal(sink.queuedBytes, 100);
    assert.equal(sink.closed, null);
  });

  test("createHub() with slowPolicy skip drops events for a slow subscriber, then sends a gap notice and goes on", () => {
    const { hub, topic } = topicOf({ maxQueueBytes: 100, slowPolicy: "skip" });
    const slow = new FakeSink();
    const fast = new FakeSink();
    topic.subscribe(slow);
    topic.subscribe(fast);
    topic.publish("a");
    slow.queuedBytes = 200;
    topic.publish("b"); // sent, then found slow
    topic.publish("c"); // dropped
    slow.queuedBytes = 60; // still above half the limit
    topic.publish("d"); // dropped
    slow.queuedBytes = 50;
    topic.publish("e");
    assert.deepEqual(slow.log, ["e-0", "e-1", "gap:e-1", "e-4"]);
    assert.match(slow.notices[0].reason, /skipped/);
    assert.equal(slow.closed, null);
    assert.deepEqual(fast.ids, range("e", 0, 4));
    assert.equal(hub.stats.dropped, 2);
    assert.equal(hub.stats.slowDisconnects, 0);
    assert.equal(hub.stats.gaps, 1);
  });

  test("createHub() removes a sink that throws with 1011, without disturbing others", () => {
    const { hub, topic } = topicOf();
    const before = new FakeSink();
    const broken = new FakeSink({ throwOnSend: true });
    const after = new FakeSink();
    topic.subscribe(before);
    topic.subscribe(broken);
    topic.subscribe(after);
    assert.doesNotThrow(() => topic.publish("a"));
    topic.publish("b");
    assert.deepEqual(before.ids, ["e-0", "e-1"]);
    assert.deepEqual(after.ids, ["e-0", "e-1"]);
    assert.equal(broken.closed?.code, 1011);
    assert.equal(broken.closeCalls, 1);
    assert.equal(topic.subscribers, 2);
    assert.equal(hub.stats.sinkErrors, 1);
  });

  test("Topic.subscribe() removes a sink that throws during the replay, without throwing", () => {
    const { topic } = topicOf();
    topic.publish("a");
    const broken = new FakeSink({ throwOnSend: true });
    assert.doesNotThrow(() => topic.subscribe(broken, { replayAll: true }));
    assert.equal(broken.closed?.code, 1011);
    assert.equal(topic.subscribers, 0);
  });

  test("createHub() keeps a sink whose gap notice throws away from the publisher and other subscribers", () => {
    const { hub, topic } = topicOf();
    const broken = new FakeSink({ throwOnNotify: true });
    const other = new FakeSink();
    topic.subscribe(broken, { lastEventId: "old-1" });
    topic.subscribe(other);
    assert.doesNotThrow(() => topic.publish("a"));
    assert.deepEqual(other.ids, ["e-0"]);
    assert.equal(broken.closed?.code, 1011);
    assert.equal(topic.subscribers, 1);
    assert.equal(hub.stats.sinkErrors, 1);
    const second = new FakeSink({ throwOnNotify: true });
    topic.subscribe(second);
    const notice = { lastEventId: "up-1", reason: "upstream gap" };
    assert.doesNotThrow(() => topic.notifyGap(notice));
    assert.deepEqual(other.notices, [notice]);
  });
});

describe("sinks whose close() throws", () => {
  test("createHub() closing a slow sink whose close() throws does not reach the publisher", () => {
    const { hub, topic } = topicOf({ maxQueueBytes: 10 });
    const slow = new FakeSink({ accumulate: true, throwOnClose: true });
    const other = new FakeSink();
    topic.subscribe(slow);
    topic.subscribe(other);
    assert.doesNotThrow(() => {
      for (let i = 0; i < 3; i++) topic.publish("0123456789");
    });
    assert.equal(slow.closed?.code, 1008);
    assert.deepEqual(other.ids, ["e-0", "e-1", "e-2"]);
    assert.equal(hub.stats.slowDisconnects, 1);
  });

  test("Hub.close() closes every other subscriber when one close() throws", () => {
    const hub = createHub();
    const topic = hub.addTopic("events", "e");
    const sinks = [
      new FakeSink(),
      new FakeSink({ throwOnClose: true }),
      new FakeSink(),
    ];
    for (const sink of sinks) topic.subscribe(sink);
    assert.doesNotThrow(() => hub.close(1001, "going away"));
    for (const sink of sinks) assert.equal(sink.closed?.code, 1001);
    assert.deepEqual(hub.counts, { websocket: 0, sse: 0 });
  });
});

describe("subscriber limits and close", () => {
  test("createHub() refuses a subscriber past maxSubscribers with RangeError, across topics", () => {
    const hub = createHub({ maxSubscribers: 2 });
    const a = hub.addTopic("a", "e");
    const b = hub.addTopic("b", "e");
    a.subscribe(new FakeSink());
    const second = b.subscribe(new FakeSink({ transport: "sse" }));
    assert.equal(hub.hasRoom, false);
    assert.throws(() => a.subscribe(new FakeSink()), RangeError);
    assert.throws(() => a.subscribe(new FakeSink()), /maximum of 2/);
    second.cancel();
    assert.equal(hub.hasRoom, true);
    assert.doesNotThrow(() => b.subscribe(new FakeSink()));
  });

  test("Subscription.cancel() stops delivery and counts once", () => {
    const { hub, topic } = topicOf();
    const sink = new FakeSink({ transport: "sse" });
    const subscription = topic.subscribe(sink);
    assert.equal(subscription.sink, sink);
    assert.equal(subscription.topic, topic);
    assert.deepEqual(hub.counts, { websocket: 0, sse: 1 });
    subscription.cancel();
    subscription.cancel();
    topic.publish("x");
    assert.deepEqual(sink.events, []);
    assert.deepEqual(hub.counts, { websocket: 0, sse: 0 });
    assert.equal(sink.closed, null);
  });

  test("Hub.close() closes every subscriber with the given code and refuses new ones", () => {
    const hub = createHub();
    const a = hub.addTopic("a", "e");
    const b = hub.addTopic("b", "e");
    const sinks = [
      new FakeSink(),
      new FakeSink({ transport: "sse" }),
      new FakeSink(),
    ];
    a.subscribe(sinks[0]);
    a.subscribe(sinks[1]);
    b.subscribe(sinks[2]);
    hub.close(1001, "going away");
    for (const sink of sinks) {
      assert.deepEqual(sink.closed, { code: 1001, reason: "going away" });
    }
    assert.deepEqual(hub.counts, { websocket: 0, sse: 0 });
    assert.equal(a.subscribers, 0);
    assert.equal(hub.hasRoom, false);
    assert.throws(() => a.subscribe(new FakeSink()), HubClosedError);
    assert.throws(() => a.subscribe(new FakeSink()), (error: unknown) => {
      assert.ok(error instanceof HubClosedError);
      assert.equal(error.code, "hub_closed");
      assert.equal(error.name, "HubClosedError");
      return true;
    });
  });

  test("createHub() stats count published, delivered, resumes and gaps", () => {
    const { hub, topic } = topicOf({ bufferSize: 2 });
    assert.deepEqual(hub.stats, {
      published: 0,
      delivered: 0,
      dropped: 0,
      slowDisconnects: 0,
      sinkErrors: 0,
      resumes: 0,
      gaps: 0,
      coalesced: 0,
    });
    topic.subscribe(new FakeSink());
    topic.subscribe(new FakeSink());
    topic.publish("a");
    topic.publish("b");
    topic.publish("c");
    assert.equal(hub.stats.published, 3);
    assert.equal(hub.stats.delivered, 6);
    topic.subscribe(new FakeSink(), { lastEventId: "old-0" }); // another epoch
    assert.equal(hub.stats.resumes, 1);
    assert.equal(hub.stats.gaps, 1);
    assert.equal(hub.stats.delivered, 8);
  });
});

/** A sink that joins channels: frames sent to a channel land in `frames` under its name. */
class ChannelSink extends FakeSink {
  static frames = new Map<string, (string | Uint8Array)[]>();
  joined: string | null = null;

  join(channel: string): ChannelSend | undefined {
    this.joined = channel;
    return (frame) => {
      const list = ChannelSink.frames.get(channel) ?? [];
      list.push(frame);
      ChannelSink.frames.set(channel, list);
    };
  }
}

describe("channels (Sink.join)", () => {
  test("Topic sends a caught-up joined sink's events with one channel send per event and format", () => {
    ChannelSink.frames.clear();
    const { hub, topic } = topicOf({}, "p");
    const raw = [new ChannelSink(), new ChannelSink()];
    const sse = new ChannelSink({ format: "sse", transport: "sse" });
    for (const sink of [...raw, sse]) topic.subscribe(sink);
    assert.deepEqual(raw.map((s) => s.joined), ["raw:p", "raw:p"]);
    assert.equal(sse.joined, "sse:p");
    topic.publish("a");
    const b = topic.publish("b");
    assert.deepEqual(ChannelSink.frames.get("raw:p"), ["a", "b"]);
    assert.deepEqual(ChannelSink.frames.get("sse:p")?.at(-1), b.sse);
    assert.deepEqual(raw[0].events, [], "no per-sink send");
    assert.equal(hub.stats.delivered, 6);
  });

  test("Topic stops sending to a channel once its last member left", () => {
    ChannelSink.frames.clear();
    const { hub, topic } = topicOf({}, "q");
    const sink = new ChannelSink();
    const subscription = topic.subscribe(sink);
    topic.publish("a");
    subscription.cancel();
    topic.publish("b");
    assert.deepEqual(ChannelSink.frames.get("raw:q"), ["a"]);
    assert.equal(hub.stats.delivered, 1);
  });

  test("Topic closes a joined sink found over the queue bound in a sweep", () => {
    const { hub, topic } = topicOf({ maxQueueBytes: 100 });
    const slow = new ChannelSink();
    const other = new ChannelSink();
    topic.subscribe(slow);
    topic.subscribe(other);
    slow.queuedBytes = 101;
    // Sweeps run after a quarter of the bound was broadcast.
    for (let i = 0; i < 3; i++) topic.publish("0123456789");
    assert.equal(slow.closed?.code, 1008);
    assert.equal(other.closed, null);
    assert.equal(hub.stats.slowDisconnects, 1);
    assert.equal(topic.subscribers, 1);
  });

  test("Topic keeps sinks out of channels with the skip policy and while a resume is pending", () => {
    const { topic } = topicOf({ slowPolicy: "skip" });
    const skipping = new ChannelSink();
    topic.subscribe(skipping);
    const { topic: other } = topicOf();
    const ahead = new ChannelSink();
    other.subscribe(ahead, { lastEventId: "e-5" });
    assert.equal(skipping.joined, null);
    assert.equal(ahead.joined, null);
    topic.publish("a");
    for (let i = 0; i <= 6; i++) other.publish(`m${i}`);
    assert.deepEqual(skipping.ids, ["e-0"]);
    assert.deepEqual(ahead.ids, ["e-6"]);
  });
});

// Coalescing: long gaps so that a loaded machine cannot end one by itself
// between a test's steps.
const GAP_MS = 300;
const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms));

// The end of the turn that sent something (two timers: under node --test
// the first can fire in the same loop iteration, before its end).
async function endOfTurn(): Promise<void> {
  await sleep(5);
  await sleep(5);
}

/** A topic (with `options`) and a sink that got "a", then "b" `ms` later. */
async function twoEventsApart(options: HubOptions, ms: number) {
  const { topic, hub } = topicOf(options);
  const sink = new FakeSink();
  topic.subscribe(sink);
  topic.publish("a");
  await sleep(ms);
  topic.publish("b");
  return { sink, hub };
}

/** A topic with coalescing whose last busy turn has just ended. */
async function busyTopic(options: HubOptions = {}) {
  const { hub, topic } = topicOf({ coalesceMs: GAP_MS, ...options });
  const sink = new FakeSink();
  topic.subscribe(sink);
  topic.publish("a");
  topic.publish("b");
  // Both went out at once: nothing was published for a while before.
  assert.deepEqual(sink.ids, ["e-0", "e-1"]);
  await endOfTurn();
  return { hub, topic, sink };
}

describe("coalescing under load (coalesceMs)", () => {
  test("Topic holds events published soon after a busy turn, then sends them together in order", async () => {
    const { topic, sink, hub } = await busyTopic();
    const c = topic.publish("c");
    topic.publish("d");
    assert.equal(c.id, "e-2", "a held event has its id at once");
    assert.equal(topic.lastId, "e-3");
    assert.deepEqual(sink.ids, ["e-0", "e-1"], "c and d wait");
    assert.equal(hub.stats.published, 4);
    assert.equal(hub.stats.coalesced, 2);
    await sleep(GAP_MS + 100);
    assert.deepEqual(sink.ids, ["e-0", "e-1", "e-2", "e-3"]);
    assert.equal(hub.stats.delivered, 4);
    // The release was a busy turn too: an event right after it waits again.
    await endOfTurn();
    topic.publish("e");
    assert.equal(sink.ids.length, 4);
    hub.close(1001, "done");
    assert.deepEqual(sink.log.slice(-2), ["e-4", "close:1001"]);
  });

  test("Topic sends held events at once when they reach an eighth of the queue bound (at most 32 KiB)", async () => {
    const { topic, sink, hub } = await busyTopic({ maxQueueBytes: 1024 });
    topic.publish("x".repeat(100));
    assert.equal(sink.ids.length, 2, "100 bytes wait");
    topic.publish("y".repeat(100));
    assert.deepEqual(sink.ids, ["e-0", "e-1", "e-2", "e-3"], "200 go");
    // The flush was a busy turn: what follows in it goes out at once.
    topic.publish("z");
    assert.equal(sink.ids.length, 5);
    hub.close(1001, "done");
    const big = await busyTopic();
    big.topic.publish("x".repeat(32 * 1024 - 1));
    assert.equal(big.sink.ids.length, 2);
    big.topic.publish("y");
    assert.equal(big.sink.ids.length, 4);
    big.hub.close(1001, "done");
  });

  test("Topic sends an event at once after a quiet spell as long as the gap", async () => {
    const { sink, hub } = await twoEventsApart({ coalesceMs: 20 }, 60);
    assert.deepEqual(sink.ids, ["e-0", "e-1"]);
    hub.close(1001, "done");
  });

  test("Topic never holds with coalesceMs 0 (the library default)", async () => {
    const { sink, hub } = await twoEventsApart({}, 5);
    assert.deepEqual(sink.ids, ["e-0", "e-1"]);
    hub.close(1001, "done");
  });

  test("Topic sends held events before a new subscriber's replay, so nobody gets one twice", async () => {
    const { topic, sink, hub } = await busyTopic();
    topic.publish("c");
    const resumed = new FakeSink();
    const fresh = new FakeSink();
    topic.subscribe(resumed, { lastEventId: "e-0" });
    topic.subscribe(fresh);
    assert.deepEqual(sink.ids, ["e-0", "e-1", "e-2"], "flushed by subscribe");
    assert.deepEqual(resumed.ids, ["e-1", "e-2"]);
    topic.publish("d");
    await sleep(GAP_MS + 100);
    assert.deepEqual(sink.ids, ["e-0", "e-1", "e-2", "e-3"]);
    assert.deepEqual(resumed.ids, ["e-1", "e-2", "e-3"]);
    assert.deepEqual(fresh.ids, ["e-3"]);
    hub.close(1001, "done");
  });

  test("Topic sends held events before an upstream gap notice", async () => {
    const { topic, sink, hub } = await busyTopic();
    topic.ingest({ epoch: "u", seq: 7 }, "c");
    topic.notifyGap({ lastEventId: "u-7", reason: "upstream lost" });
    assert.deepEqual(sink.log, ["e-0", "e-1", "u-7", "gap:u-7"]);
    hub.close(1001, "done");
  });

  test("Hub.close() sends held events before closing, and leaves no timer behind", async () => {
    const { topic, sink, hub } = await busyTopic();
    const timers = watchTimers();
    try {
      topic.publish("c");
      assert.equal(timers.pending(), 1, "c is held until a release timer");
      hub.close(1001, "going away");
      assert.deepEqual(sink.log, ["e-0", "e-1", "e-2", "close:1001"]);
      assert.equal(timers.pending(), 0, "the release timer was cleared");
    } finally {
      timers.restore();
    }
  });
});
