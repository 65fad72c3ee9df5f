import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createSseResponse, SSE_HEADERS } from "../../src/http/sse.ts";
import type { WebSocketSink } from "../../src/http/types.ts";
import { createHub, type HubOptions } from "../../src/hub.ts";
import { createSseParser, type SseMessage } from "../../src/sse_parser.ts";
import { StreamReader } from "./_app_helpers.ts";

function topicOf(options: HubOptions = {}) {
  const hub = createHub(options);
  return { hub, topic: hub.addTopic("events", "e") };
}

function messages(text: string): SseMessage[] {
  const out: SseMessage[] = [];
  createSseParser({ onMessage: (m) => out.push(m) }).feed(text);
  return out;
}

describe("createSseResponse()", () => {
  test("createSseResponse() answers 200 with no-cache, no-buffering event-stream headers", async () => {
    const { topic } = topicOf();
    const response = createSseResponse(topic);
    assert.equal(response.status, 200);
    for (const [name, value] of Object.entries(SSE_HEADERS)) {
      assert.equal(response.headers.get(name), value);
    }
    assert.match(
      response.headers.get("content-type") ?? "",
      /^text\/event-stream/,
    );
    assert.match(response.headers.get("cache-control") ?? "", /no-cache/);
    assert.equal(response.headers.get("x-accel-buffering"), "no");
    await response.body?.cancel();
  });

  test("createSseResponse() starts with retry and a comment, then streams events with ids", async () => {
    const { topic } = topicOf();
    const reader = new StreamReader(
      createSseResponse(topic, { retryMs: 2500 }),
    );
    try {
      const start = await reader.until((t) => t.includes("\n\n"));
      assert.ok(start.startsWith("retry: 2500\n: connected\n\n"));
      topic.publish("0: localhost:8080: abcdefghij\n");
      topic.publish("second");
      const text = await reader.until((t) => t.includes("data: second\n\n"));
      assert.deepEqual(messages(text).map((m) => [m.lastEventId, m.data]), [
        ["e-0", "0: localhost:8080: abcdefghij\n"],
        ["e-1", "second"],
      ]);
    } finally {
      await reader.cancel();
    }
  });

  test("createSseResponse() replays after lastEventId and writes gap notices as event: gap", async () => {
    const { topic } = topicOf({ bufferSize: 2 });
    for (let i = 0; i < 4; i++) topic.publish(`m${i}`);
    const reader = new StreamReader(
      createSseResponse(topic, { lastEventId: "e-0" }),
    );
    try {
      const text = await reader.until((t) => t.includes("data: m3\n\n"));
      const got = messages(text);
      assert.equal(got[0].event, "gap");
      assert.deepEqual(JSON.parse(got[0].data).lastEventId, "e-0");
      assert.deepEqual(got.slice(1).map((m) => m.data), ["m2", "m3"]);
    } finally {
      await reader.cancel();
    }
  });

  test("createSseResponse() subscribers share one channel per path: each gets every event once, in order, even one resuming mid-turn", async () => {
    const { hub, topic } = topicOf();
    topic.publish("m0");
    topic.publish("m1");
    const live = new StreamReader(createSseResponse(topic));
    topic.publish("m2");
    // In the same turn: resumes after m1, so m2 comes from the buffer and
    // must not come again from the channel's chunk of this turn.
    const resumed = new StreamReader(
      createSseResponse(topic, { lastEventId: "e-1" }),
    );
    topic.publish("m3");
    const others = Array.from(
      { length: 5 },
      () => new StreamReader(createSseResponse(topic)),
    );
    topic.publish("m4");
    try {
      for (
        const [reader, expected] of [
          [live, ["m2", "m3", "m4"]],
          [resumed, ["m2", "m3", "m4"]],
          ...others.map((r) => [r, ["m4"]] as const),
        ] as const
      ) {
        const text = await reader.until((t) => t.includes("data: m4\n\n"));
        assert.deepEqual(messages(text).map((m) => m.data), expected);
      }
      assert.equal(hub.stats.delivered, 3 + 3 + 5);
    } finally {
      for (const reader of [live, resumed, ...others]) await reader.cancel();
    }
  });

  test("createSseResponse() keeps an upstream gap notice between the events around it", async () => {
    const { topic } = topicOf();
    const readers = [
      new StreamReader(createSseResponse(topic)),
      new StreamReader(createSseResponse(topic)),
    ];
    topic.publish("before");
    topic.notifyGap({ lastEventId: "up-9", reason: "upstream gap" });
    topic.publish("after");
    try {
      for (const reader of readers) {
        const text = await reader.until((t) => t.includes("data: after\n\n"));
        assert.deepEqual(
          messages(text).map((m) => m.event === "message" ? m.data : m.event),
          [
            "before",
            "gap",
            "after",
          ],
        );
      }
    } finally {
      for (const reader of readers) await reader.cancel();
    }
  });

  test("createSseResponse() heartbeat writes a comment", async () => {
    const { topic } = topicOf();
    let sink: WebSocketSink | undefined;
    const reader = new StreamReader(
      createSseResponse(topic, { onOpen: (s) => (sink = s) }),
    );
    try {
      assert.equal(sink?.transport, "sse");
      sink?.heartbeat();
      await reader.until((t) => t.includes(": heartbeat\n\n"));
    } finally {
      await reader.cancel();
    }
  });

  test("createSseResponse() unsubscribes and calls onClose once when the client leaves", async () => {
    const { hub, topic } = topicOf();
    let closes = 0;
    const reader = new StreamReader(
      createSseResponse(topic, { onClose: () => closes++ }),
    );
    assert.equal(hub.counts.sse, 1);
    await reader.until((t) => t.length > 0);
    await reader.cancel();
    assert.equal(hub.counts.sse, 0);
    assert.equal(closes, 1);
    assert.doesNotThrow(() => topic.publish("after"));
  });

  test("createSseResponse() ends the stream when the hub closes it", async () => {
    const { hub, topic } = topicOf();
    let closes = 0;
    const reader = new StreamReader(
      createSseResponse(topic, { onClose: () => closes++ }),
    );
    topic.publish("last");
    hub.close(1001, "going away");
    const text = await reader.end();
    assert.ok(reader.done);
    assert.ok(text.includes("data: last\n\n"));
    assert.equal(closes, 1);
    assert.equal(hub.counts.sse, 0);
  });

  test("createSseResponse() is closed by the hub when its reader falls behind", async () => {
    const { hub, topic } = topicOf({ maxQueueBytes: 200 });
    const other = new StreamReader(createSseResponse(topic));
    const slow = new StreamReader(createSseResponse(topic));
    try {
      // The slow one is never read while 40 events of ~30 bytes are published.
      for (let i = 0; i < 40; i++) {
        topic.publish("0123456789");
        await other.until((t) => t.includes(`id: e-${i}\n`));
      }
      assert.equal(hub.stats.slowDisconnects, 1);
      assert.equal(hub.counts.sse, 1);
      const text = await slow.end();
      assert.ok(slow.done, "the slow stream ended");
      assert.ok(text.includes("id: e-0\n"));
      assert.ok(!text.includes("id: e-39\n"));
    } finally {
      await other.cancel();
    }
  });
});
