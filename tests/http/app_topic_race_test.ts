/**
 * createApp() with topics on demand, through app.fetch (no ports): a topic
 * dropped as idle while a request to it is on its way (a WebSocket between
 * its 101 and its open, a publish whose body is still arriving) must not
 * leave that subscriber or that event on a topic no longer served; and no
 * live view page for a name no topic can have.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createApp } from "../../src/http/app.ts";
import { createMemoryEngine } from "../../src/engine/memory.ts";
import { createHub } from "../../src/hub.ts";
import { createTopicPatterns } from "../../src/topics.ts";
import {
  FAKE_UPGRADE_STATUS,
  fakeWebSocket,
  UPGRADE_HEADERS,
} from "./_app_helpers.ts";

const TTL_MS = 1000;

function setup() {
  let clock = 1_000_000;
  const hub = createHub();
  const websocket = fakeWebSocket();
  const topics = createTopicPatterns({
    patterns: ["rooms/*"],
    hub,
    engine: createMemoryEngine(),
    ttlMs: TTL_MS,
    now: () => clock,
  });
  const { app } = createApp({ hub, websocket: websocket.support, topics });
  const post = (body: BodyInit) =>
    app.fetch(
      new Request("http://localhost/rooms/1", {
        method: "POST",
        body,
        // A stream body needs half duplex on Node and Deno.
        ...(body instanceof ReadableStream ? { duplex: "half" } : {}),
      } as RequestInit),
    );
  return {
    app,
    hub,
    topics,
    websocket,
    post,
    advance: (ms: number) => void (clock += ms),
  };
}

describe("createApp() topics on demand, dropped while a request waits", () => {
  test("a WebSocket between its upgrade and its open keeps its topic", async () => {
    const { app, hub, topics, websocket, post, advance } = setup();
    assert.equal((await post("first")).status, 202);
    topics.sweep(); // Notes the publish; idle from here.
    advance(TTL_MS);
    const upgrade = await app.fetch(
      new Request("http://localhost/rooms/1", { headers: UPGRADE_HEADERS }),
    );
    assert.equal(upgrade.status, FAKE_UPGRADE_STATUS);
    // The sweep runs before the handshake completes: the topic has no
    // subscriber yet, but one is arriving.
    topics.sweep();
    const ws = websocket.calls[0].open();
    assert.equal((await post("second")).status, 202);
    const texts = ws.raw.frames.flatMap((f) =>
      f.kind === "text" ? [f.text] : []
    );
    assert.deepEqual(texts, ["second"]);
    assert.equal(hub.topic("rooms/1")?.subscribers, 1);
  });

  test("a publish whose body arrives after a sweep lands on the served topic", async () => {
    const { hub, topics, post, advance } = setup();
    assert.equal((await post("first")).status, 202);
    topics.sweep(); // Notes the publish; idle from here.
    advance(TTL_MS);
    let push!: ReadableStreamDefaultController<Uint8Array>;
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => void (push = controller),
    });
    const answer = post(body);
    // The body is being read; meanwhile the idle topic is dropped.
    await new Promise((resolve) => setTimeout(resolve, 20));
    topics.sweep();
    assert.equal(hub.topic("rooms/1"), undefined);
    push.enqueue(new TextEncoder().encode("late"));
    push.close();
    assert.equal((await answer).status, 202);
    // Accepted, so served: a subscriber replaying the topic finds it.
    assert.equal(hub.topic("rooms/1")?.buffered, 1);
  });

  test("no live view page for a name no topic can have: 400", async () => {
    const { app } = setup();
    const page = (path: string) =>
      app.fetch(
        new Request(`http://localhost${path}`, {
          headers: { accept: "text/html" },
        }),
      );
    const good = await page("/rooms/42");
    assert.equal(good.status, 200);
    await good.body?.cancel();
    for (
      const bad of [
        "/rooms/%3Cb%3Ehi%3C%2Fb%3E",
        "/rooms/a%2F..%2Fb",
        `/rooms/${"a".repeat(300)}`,
      ]
    ) {
      const response = await page(bad);
      assert.equal(response.status, 400, bad);
      assert.equal((await response.json()).code, "bad_topic");
    }
  });
});
