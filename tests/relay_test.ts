/**
 * startRelay() (src/relay.ts) on an SSE upstream answered by a fake fetch,
 * so no port is opened: upstream ids are kept, an upstream without ids
 * makes the relay their origin, gap notices pass on, and the first request
 * asks for the whole buffer unless the topic already has an id to resume.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { startRelay } from "../src/relay.ts";
import { createHub, type Topic } from "../src/hub.ts";
import { FakeSink } from "./_fake_sink.ts";

/** Runs a relay of `topic` whose upstream answers `stream` and then stays open; resolves once `until()` holds. */
async function relay(
  topic: Topic,
  stream: string,
  until: () => boolean,
): Promise<{ url: string; lastEventId: string | null }> {
  const original = globalThis.fetch;
  const requests: { url: string; lastEventId: string | null }[] = [];
  globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
    requests.push({
      url: String(input instanceof Request ? input.url : input),
      lastEventId: new Headers(init?.headers).get("last-event-id"),
    });
    return Promise.resolve(
      new Response(
        new ReadableStream<Uint8Array>({
          start(controller) {
            controller.enqueue(new TextEncoder().encode(stream));
          },
        }),
        { headers: { "content-type": "text/event-stream" } },
      ),
    );
  }) as typeof fetch;
  const upstream = startRelay(topic, {
    url: new URL("http://127.0.0.1:9/events"),
  });
  try {
    const deadline = Date.now() + 5000;
    while (!until()) {
      if (Date.now() > deadline) throw new Error("Timed out relaying");
      await new Promise((resolve) => setTimeout(resolve, 5));
    }
  } finally {
    upstream.close();
    globalThis.fetch = original;
  }
  assert.equal(requests.length, 1);
  return requests[0];
}

function topicWithSink(): { topic: Topic; sink: FakeSink } {
  const topic = createHub().addTopic("events", "relay0");
  const sink = new FakeSink();
  topic.subscribe(sink);
  return { topic, sink };
}

describe("startRelay()", () => {
  test("startRelay() keeps the upstream's ids and asks a fresh topic's upstream for its whole buffer", async () => {
    const { topic, sink } = topicWithSink();
    const request = await relay(
      topic,
      "retry: 1000\n\nid: up-5\ndata: five\n\nid: up-6\ndata: six\n\n",
      () => sink.events.length >= 2,
    );
    assert.deepEqual(sink.ids, ["up-5", "up-6"]);
    assert.deepEqual(sink.events.map((e) => e.data), ["five", "six"]);
    assert.equal(topic.lastId, "up-6");
    assert.match(request.url, /[?&]replay=all/);
    assert.equal(request.lastEventId, null);
  });

  test("startRelay() gives events without ids its own ids, as their origin", async () => {
    const { topic, sink } = topicWithSink();
    await relay(
      topic,
      "data: first\n\ndata: second\n\n",
      () => sink.events.length >= 2,
    );
    assert.deepEqual(sink.ids, ["relay0-0", "relay0-1"]);
    assert.deepEqual(sink.events.map((e) => e.data), ["first", "second"]);
  });

  test("startRelay() passes the upstream's gap notices on, between the events around them", async () => {
    const { topic, sink } = topicWithSink();
    await relay(
      topic,
      "id: up-1\ndata: a\n\n" +
        'event: gap\ndata: {"lastEventId":"up-1","reason":"events after that id are no longer buffered"}\n\n' +
        "id: up-9\ndata: b\n\n",
      () => sink.events.length >= 2,
    );
    assert.deepEqual(sink.log, ["up-1", "gap:up-1", "up-9"]);
    assert.equal(
      sink.notices[0].reason,
      "events after that id are no longer buffered",
    );
  });

  test("startRelay() passes on an upstream gap notice's id only up to 128 characters and cuts its reason at 256 (with ...)", async () => {
    const { topic, sink } = topicWithSink();
    const notice = (id: string, reason: string) =>
      `event: gap\ndata: ${JSON.stringify({ lastEventId: id, reason })}\n\n`;
    await relay(
      topic,
      notice("i".repeat(129), "r".repeat(257)) +
        notice("k".repeat(128), "s".repeat(256)),
      () => sink.notices.length >= 2,
    );
    assert.deepEqual(sink.notices, [
      { lastEventId: null, reason: `${"r".repeat(256)}...` },
      { lastEventId: "k".repeat(128), reason: "s".repeat(256) },
    ]);
  });

  test("startRelay() of a topic that already has an upstream id resumes after it instead of asking for the whole buffer", async () => {
    const { topic, sink } = topicWithSink();
    topic.ingest({ epoch: "up", seq: 41 }, "kept from before");
    const request = await relay(
      topic,
      "id: up-42\ndata: next\n\n",
      () => sink.events.length >= 2,
    );
    assert.equal(request.lastEventId, "up-41");
    assert.match(request.url, /[?&]lastEventId=up-41/);
    assert.doesNotMatch(request.url, /replay=all/);
    assert.deepEqual(sink.ids, ["up-41", "up-42"]);
  });
});
