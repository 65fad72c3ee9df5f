/**
 * Topics on demand against real processes (issue 15): two topics below one
 * pattern are isolated, resume works per topic, bad names get 400, the
 * topic limit answers 503 and frees up after the TTL, the metrics do not
 * grow with the number of topics, a relay serves a pattern by consuming the
 * matching topics of its upstream on demand, and a JWT is checked before a
 * topic is created.
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { sign } from "hono/jwt";
import {
  connectSse,
  connectWs,
  publish,
  type Service,
  startService,
  waitFor,
} from "./_helpers.ts";
import { metric } from "./_raw_ws.ts";
import { startRedis } from "./_redis.ts";

const BASE = ["--serve-address", "127.0.0.1:0", "--no-produce"];

async function post(base: string, path: string, body = "x") {
  const response = await fetch(`${base}/${path}`, { method: "POST", body });
  return { status: response.status, json: await response.json() };
}

async function metricLines(base: string): Promise<string[]> {
  const text = await (await fetch(`${base}/metrics`)).text();
  return text.split("\n").filter((line) => line && !line.startsWith("#"));
}

describe("wsevent --serve-path 'rooms/*'", () => {
  let origin: Service;

  before(async () => {
    origin = await startService([
      ...BASE,
      "--serve-path",
      "events",
      "--serve-path",
      "rooms/*",
      "--topic-ttl",
      "60",
    ]);
  });

  after(async () => {
    await origin?.stop();
  });

  test("prints the pattern's URL and lists topics on GET /", async () => {
    await waitFor(() => origin.stdout().includes("/rooms/*"), 5000, "URL");
    assert.match(
      origin.stdout(),
      /Serving on: ws:\/\/127\.0\.0\.1:\d+\/rooms\/\*/,
    );
    await publish(origin.http, "rooms/listed", "x");
    const index = await (await fetch(`${origin.http}/`)).json();
    assert.deepEqual(index.patterns, ["/rooms/*"]);
    assert.ok(index.paths.includes("/rooms/listed"), JSON.stringify(index));
    const page = await (await fetch(`${origin.http}/`, {
      headers: { Accept: "text/html" },
    })).text();
    assert.match(page, /rooms\/listed/);
    // The live view of a topic not created yet, without creating it.
    const view = await fetch(`${origin.http}/rooms/not-yet`, {
      headers: { Accept: "text/html" },
    });
    assert.equal(view.status, 200);
    assert.match(await view.text(), /rooms\/not-yet/);
    const after = await (await fetch(`${origin.http}/`)).json();
    assert.ok(!after.paths.includes("/rooms/not-yet"));
  });

  test("two topics below one pattern are isolated, each with its own ids", async () => {
    const sse = connectSse(`${origin.http}/rooms/iso-1`);
    const ws = connectWs(
      `${origin.url.replace(/events$/, "rooms/iso-2")}?format=json`,
    );
    await sse.headers;
    await ws.opened;
    const a = await publish(origin.http, "rooms/iso-1", "for one");
    const b = await publish(origin.http, "rooms/iso-2", "for two");
    assert.match(a, /-0$/);
    assert.match(b, /-0$/);
    assert.notEqual(a, b, "each topic has its own epoch");
    await waitFor(
      () => sse.messages.length >= 1 && ws.messages.length >= 1,
      5000,
      "one event on each",
    );
    await publish(origin.http, "rooms/iso-1", "again for one");
    await waitFor(() => sse.messages.length >= 2, 5000, "the second event");
    assert.deepEqual(sse.messages.map((m) => m.data), [
      "for one",
      "again for one",
    ]);
    assert.deepEqual(ws.messages.map((m) => JSON.parse(m)), [
      { id: b, data: "for two" },
    ]);
    sse.close();
    ws.close();
  });

  test("resume works per topic", async () => {
    const ids: string[] = [];
    for (const text of ["r0", "r1", "r2"]) {
      ids.push(await publish(origin.http, "rooms/resume", text));
    }
    await publish(origin.http, "rooms/other", "not this one");
    const sse = connectSse(`${origin.http}/rooms/resume`, {
      "Last-Event-ID": ids[0],
    });
    await waitFor(() => sse.messages.length >= 2, 5000, "the replay");
    sse.close();
    assert.deepEqual(
      sse.messages.map((m) => [m.id, m.data]),
      [[ids[1], "r1"], [ids[2], "r2"]],
    );
  });

  test("bad topic names get 400 with a clear error, and no topic", async () => {
    const before = await metric(origin.http, "wsevent_topics_created_total");
    for (
      const path of [
        "rooms//a",
        "rooms/a%20b",
        "rooms/%3Cscript%3E",
        `rooms/${"n".repeat(201)}`,
      ]
    ) {
      const { status, json } = await post(origin.http, path);
      assert.equal(status, 400, path);
      assert.equal(json.code, "bad_topic");
      assert.match(json.error, /^Cannot use topic /);
      const get = await fetch(`${origin.http}/${path}`, {
        headers: { Accept: "text/event-stream" },
      });
      assert.equal(get.status, 400, `GET ${path}`);
      await get.body?.cancel();
    }
    assert.equal(
      await metric(origin.http, "wsevent_topics_created_total"),
      before,
    );
  });

  test("metrics keep the same series however many topics exist", async () => {
    await publish(origin.http, "rooms/m0", "x");
    const lines = await metricLines(origin.http);
    for (let i = 1; i <= 20; i++) {
      await publish(origin.http, `rooms/m${i}`, "x");
    }
    const after = await metricLines(origin.http);
    assert.deepEqual(
      after.map((l) => l.split(" ")[0]),
      lines.map((l) => l.split(" ")[0]),
    );
    const topics = await metric(
      origin.http,
      "wsevent_pattern_topics",
      '{pattern="rooms/*"}',
    );
    assert.ok(topics >= 21, `pattern topics ${topics}`);
    assert.ok(!after.some((l) => l.includes('path="rooms/')));
  });

  test("a relay serves a pattern by consuming its upstream's topics on demand", async () => {
    const relay = await startService([
      ...BASE,
      "--serve-path",
      "mirror/*",
      "--consume-url",
      `ws://127.0.0.1:${origin.port}/rooms/*`,
      "--topic-ttl",
      "1",
      "--forward-publish",
    ]);
    try {
      const relayWs = (path: string) =>
        connectWs(`ws://127.0.0.1:${relay.port}/${path}?format=json`);
      const one = relayWs("mirror/r1");
      const two = relayWs("mirror/r2");
      await one.opened;
      await two.opened;
      const upstreamSubscribers = () =>
        metric(
          origin.http,
          "wsevent_pattern_subscribers",
          '{pattern="rooms/*"}',
        );
      await waitFor(
        () => /connected to .*rooms\/r2/.test(relay.stderr()),
        10_000,
        "upstream r2",
      );
      await waitFor(
        () => /connected to .*rooms\/r1/.test(relay.stderr()),
        10_000,
        "upstream r1",
      );
      const start = await upstreamSubscribers();
      assert.ok(start >= 2, `upstream subscribers ${start}`);
      const id = await publish(origin.http, "rooms/r1", "relayed one");
      await publish(origin.http, "rooms/r2", "relayed two");
      await waitFor(
        () => one.messages.length >= 1 && two.messages.length >= 1,
        5000,
        "the relayed events",
      );
      assert.deepEqual(JSON.parse(one.messages[0]), {
        id,
        data: "relayed one",
      });
      assert.equal(JSON.parse(two.messages[0]).data, "relayed two");
      // -forward-publish: a POST to mirror/r2 goes to rooms/r2 upstream,
      // whose id comes back down.
      const forwarded = await publish(relay.http, "mirror/r2", "forwarded");
      await waitFor(
        () => two.messages.length >= 2,
        5000,
        "the forwarded event",
      );
      assert.deepEqual(JSON.parse(two.messages[1]), {
        id: forwarded,
        data: "forwarded",
      });
      // Unwatched, the relay's topics go after the TTL, and so do its
      // upstream subscriptions.
      one.close();
      two.close();
      let now = start;
      const deadline = Date.now() + 10_000;
      while ((now = await upstreamSubscribers()) > start - 2) {
        assert.ok(Date.now() < deadline, `upstream subscribers still ${now}`);
        await new Promise((r) => setTimeout(r, 100));
      }
      assert.ok(
        await metric(relay.http, "wsevent_topics_dropped_total") >= 2,
      );
    } finally {
      await relay.stop();
    }
  });
});

describe("wsevent --max-topics and --topic-ttl", () => {
  test("past the limit a new topic gets 503, existing ones work, and the place frees after the TTL", async () => {
    const service = await startService([
      ...BASE,
      "--serve-path",
      "rooms/*",
      "--max-topics",
      "2",
      "--topic-ttl",
      "1",
    ]);
    try {
      assert.equal((await post(service.http, "rooms/a")).status, 202);
      assert.equal((await post(service.http, "rooms/b")).status, 202);
      const refused = await fetch(`${service.http}/rooms/c`, {
        method: "POST",
        body: "x",
      });
      assert.equal(refused.status, 503);
      assert.equal(refused.headers.get("retry-after"), "5");
      const json = await refused.json();
      assert.equal(json.code, "topic_limit");
      assert.match(json.error, /maximum of 2 topics/);
      assert.equal((await post(service.http, "rooms/a")).status, 202);
      const ws = connectWs(`ws://127.0.0.1:${service.port}/rooms/a`);
      await ws.opened;
      ws.close();
      const deadline = Date.now() + 10_000;
      let status = 503;
      while (status !== 202) {
        assert.ok(Date.now() < deadline, "the limit never freed up");
        await new Promise((r) => setTimeout(r, 200));
        status = (await post(service.http, "rooms/c")).status;
      }
      assert.ok(
        await metric(service.http, "wsevent_topic_limit_refusals_total") >= 1,
      );
      // A dropped topic used again is a new topic, not a stale one.
      const dropped = await metric(
        service.http,
        "wsevent_topics_dropped_total",
      );
      assert.ok(dropped >= 1);
      const listed = async () =>
        (await (await fetch(`${service.http}/`)).json()).paths as string[];
      const until = Date.now() + 10_000;
      while ((await listed()).includes("/rooms/a")) {
        assert.ok(Date.now() < until, "rooms/a was never dropped");
        await new Promise((r) => setTimeout(r, 200));
      }
      const createdBefore = await metric(
        service.http,
        "wsevent_topics_created_total",
      );
      assert.equal((await post(service.http, "rooms/a")).status, 202);
      assert.equal(
        await metric(service.http, "wsevent_topics_created_total"),
        createdBefore + 1,
      );
      assert.ok((await listed()).includes("/rooms/a"));
    } finally {
      await service.stop();
    }
  });
});

describe("wsevent patterns with --jwt-key", () => {
  const SECRET = "a-secret-of-at-least-thirty-two-bytes";
  let service: Service;
  before(async () => {
    service = await startService([
      ...BASE,
      "--serve-path",
      "rooms/*",
      "--jwt-key",
      SECRET,
    ]);
  });
  after(async () => await service?.stop());

  test("checks the token before creating a topic", async () => {
    assert.equal((await post(service.http, "rooms/nope")).status, 401);
    const token = await sign({ wsevent: { publish: ["rooms/mine"] } }, SECRET);
    const forbidden = await fetch(`${service.http}/rooms/theirs`, {
      method: "POST",
      body: "x",
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(forbidden.status, 403);
    await forbidden.body?.cancel();
    assert.equal(await metric(service.http, "wsevent_topics_created_total"), 0);
    const ok = await fetch(`${service.http}/rooms/mine`, {
      method: "POST",
      body: "x",
      headers: { Authorization: `Bearer ${token}` },
    });
    assert.equal(ok.status, 202);
    await ok.body?.cancel();
    assert.equal(await metric(service.http, "wsevent_topics_created_total"), 1);
  });
});

describe("wsevent patterns on the Redis engine (real redis-server)", () => {
  test("a topic created on demand on two instances shares one log", async () => {
    const redis = await startRedis();
    const args = [
      ...BASE,
      "--serve-path",
      "rooms/*",
      "--engine",
      redis.url,
    ];
    const one = await startService(args);
    const two = await startService(args);
    try {
      for (const service of [one, two]) {
        const deadline = Date.now() + 10_000;
        while ((await fetch(`${service.http}/readyz`)).status !== 200) {
          assert.ok(Date.now() < deadline, "the engine never connected");
          await new Promise((r) => setTimeout(r, 100));
        }
      }
      const sse = connectSse(`${two.http}/rooms/shared`);
      await sse.headers;
      // The Redis engine subscribes to a new topic's channel and anchors
      // its reader asynchronously: probe until the live path delivers.
      const probes: string[] = [];
      const deadline = Date.now() + 10_000;
      while (sse.messages.length === 0) {
        assert.ok(Date.now() < deadline, "no live event on the new topic");
        probes.push(await publish(one.http, "rooms/shared", "probe"));
        await new Promise((r) => setTimeout(r, 50));
      }
      await waitFor(
        () => sse.messages.at(-1)?.id === probes.at(-1),
        5000,
        "the last probe",
      );
      const seen = sse.messages.length;
      const first = await publish(one.http, "rooms/shared", "from one");
      const second = await publish(two.http, "rooms/shared", "from two");
      await publish(one.http, "rooms/elsewhere", "not here");
      await waitFor(() => sse.messages.length >= seen + 2, 5000, "both events");
      sse.close();
      assert.deepEqual(
        sse.messages.slice(seen).map((m) => [m.id, m.data]),
        [[first, "from one"], [second, "from two"]],
      );
      // A resume on the other instance reads the same log.
      const resumed = connectSse(`${one.http}/rooms/shared`, {
        "Last-Event-ID": first,
      });
      await waitFor(() => resumed.messages.length >= 1, 5000, "the resume");
      resumed.close();
      assert.deepEqual(resumed.messages.map((m) => m.id), [second]);
    } finally {
      await one.stop();
      await two.stop();
      await redis.stop();
    }
  });
});
