import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type AppOptions, createApp } from "../../src/http/app.ts";
import type { UpstreamStatus } from "../../src/http/types.ts";
import { parseConfig } from "../../src/config.ts";
import { createHub, type HubOptions } from "../../src/hub.ts";
import { createSseParser, type SseMessage } from "../../src/sse_parser.ts";
import { FakeSink } from "../_fake_sink.ts";
import { pageContentSecurityPolicy } from "../../src/http/view_page.ts";
import {
  FAKE_UPGRADE_STATUS,
  fakeWebSocket,
  StreamReader,
  UPGRADE_HEADERS,
} from "./_app_helpers.ts";

const SSE = { accept: "text/event-stream" };

function setup(
  options: Partial<Omit<AppOptions, "hub" | "websocket">> = {},
  hubOptions: HubOptions = {},
) {
  const hub = createHub(hubOptions);
  const topic = hub.addTopic("events", "e");
  const websocket = fakeWebSocket();
  const wsevent = createApp({ hub, websocket: websocket.support, ...options });
  // What Hono's app.request() does, through the fetch every app type has.
  const request = async (
    path: string,
    init: RequestInit = {},
  ): Promise<Response> =>
    await wsevent.app.fetch(
      new Request(new URL(path, "http://localhost"), init),
    );
  return { hub, topic, websocket, request, ...wsevent };
}

function messages(text: string): SseMessage[] {
  const out: SseMessage[] = [];
  createSseParser({ onMessage: (m) => out.push(m) }).feed(text);
  return out;
}

async function json(response: Response): Promise<Record<string, unknown>> {
  assert.match(response.headers.get("content-type") ?? "", /application\/json/);
  return await response.json();
}

function streamBody(...chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  return new ReadableStream({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
}

describe("createApp() publish", () => {
  test("createApp() POST publishes the body and answers 202 with the id", async () => {
    const { request, topic } = setup();
    const sink = new FakeSink();
    topic.subscribe(sink);
    const response = await request("/events", {
      method: "POST",
      body: "hello\n",
    });
    assert.equal(response.status, 202);
    assert.deepEqual(await json(response), { id: "e-0" });
    const second = await request("/events", { method: "POST", body: "b" });
    assert.deepEqual(await second.json(), { id: "e-1" });
    assert.deepEqual(sink.events.map((e) => e.data), ["hello\n", "b"]);
  });

  test("createApp() POST of an empty body answers 400 empty_body", async () => {
    const { request, topic } = setup();
    const response = await request("/events", { method: "POST", body: "" });
    assert.equal(response.status, 400);
    assert.equal((await json(response)).code, "empty_body");
    const none = await request("/events", { method: "POST" });
    assert.equal(none.status, 400);
    await none.body?.cancel();
    assert.equal(topic.lastId, null);
  });

  test("createApp() POST over maxBodyBytes answers 413 with Content-Length", async () => {
    const { request, topic } = setup({ maxBodyBytes: 8 });
    const response = await request("/events", {
      method: "POST",
      headers: { "content-length": "9" },
      body: "123456789",
    });
    assert.equal(response.status, 413);
    assert.equal((await json(response)).code, "body_too_large");
    const fits = await request("/events", {
      method: "POST",
      headers: { "content-length": "8" },
      body: "12345678",
    });
    assert.equal(fits.status, 202);
    await fits.body?.cancel();
    assert.equal(topic.buffered, 1);
  });

  test("createApp() POST over maxBodyBytes answers 413 for a chunked stream body", async () => {
    const { request, topic } = setup({ maxBodyBytes: 8 });
    const response = await request("/events", {
      method: "POST",
      body: streamBody(new Uint8Array(5), new Uint8Array(5)),
      duplex: "half",
    } as RequestInit);
    assert.equal(response.status, 413);
    assert.equal((await json(response)).code, "body_too_large");
    assert.equal(topic.buffered, 0);
  });

  test("createApp() POST of text that is not UTF-8 answers 400 invalid_utf8", async () => {
    const { request } = setup();
    const response = await request("/events", {
      method: "POST",
      headers: { "content-type": "text/plain" },
      body: new Uint8Array([0xc3, 0x28]),
    });
    assert.equal(response.status, 400);
    assert.equal((await json(response)).code, "invalid_utf8");
  });

  test("createApp() POST of application/octet-stream publishes a binary event", async () => {
    const { request, topic } = setup();
    const sink = new FakeSink();
    topic.subscribe(sink);
    const response = await request("/events", {
      method: "POST",
      headers: { "content-type": "application/octet-stream" },
      body: new Uint8Array([0, 1, 2, 255]),
    });
    assert.equal(response.status, 202);
    await response.body?.cancel();
    assert.equal(sink.events[0].binary, true);
    assert.deepEqual(sink.events[0].data, new Uint8Array([0, 1, 2, 255]));
  });

  test("createApp() POST to a percent-encoded path reaches the topic", async () => {
    const { request } = setup();
    const response = await request("/ev%65nts", {
      method: "POST",
      body: "x",
    });
    assert.equal(response.status, 202);
    await response.body?.cancel();
  });
});

describe("createApp() routes", () => {
  test("createApp() answers 404 JSON for a path that is not served", async () => {
    const { request } = setup();
    for (const path of ["/nope", "/events/", "/events/x", "/healthz/x"]) {
      for (const method of ["GET", "POST"]) {
        const response = await request(path, {
          method,
          body: method === "POST" ? "x" : undefined,
        });
        assert.equal(response.status, 404, `${method} ${path}`);
        assert.equal((await json(response)).code, "not_found");
      }
    }
  });

  test("createApp() serves a --serve-path given percent-encoded at the URL it names", async () => {
    const command = parseConfig(["--serve-path", "a%20b"]);
    assert.equal(command.kind, "serve");
    if (command.kind !== "serve") return;
    const hub = createHub();
    for (const path of command.config.servePaths) hub.addTopic(path, "e");
    const { app } = createApp({ hub, websocket: fakeWebSocket().support });
    const url = `http://localhost/${command.config.servePaths[0]}`;
    const response = await app.fetch(
      new Request(url, { method: "POST", body: "x" }),
    );
    assert.equal(response.status, 202, `POST ${url}`);
    await response.body?.cancel();
  });

  test("createApp() answers 400, not 500, for a path with malformed percent-encoding", async () => {
    const { request } = setup();
    for (const method of ["GET", "POST"]) {
      const response = await request("/%zz", {
        method,
        body: method === "POST" ? "x" : undefined,
      });
      assert.equal(response.status, 400, method);
      assert.equal((await json(response)).code, "bad_request");
    }
  });

  test("createApp() GET / lists the served paths as JSON", async () => {
    const { request, hub } = setup({ version: "1.2.3" });
    hub.addTopic("more/events", "e");
    const response = await request("/");
    assert.equal(response.status, 200);
    assert.deepEqual(await json(response), {
      paths: ["/events", "/more/events"],
      version: "1.2.3",
    });
  });

  test("createApp() GET of a stream path from a browser page load answers HTML, not a subscription", async () => {
    const { request, hub } = setup();
    const response = await request("/events", {
      headers: { accept: "text/html,application/xhtml+xml,*/*;q=0.8" },
    });
    assert.equal(response.status, 200);
    assert.match(response.headers.get("content-type") ?? "", /^text\/html/);
    assert.match(await response.text(), /<html/i);
    assert.equal(hub.counts.sse, 0);
  });

  test("createApp() serves both HTML pages with a Content-Security-Policy header whose nonce is the one on their inline script and style, new per response", async () => {
    const { request } = setup();
    const html = { accept: "text/html,application/xhtml+xml,*/*;q=0.8" };
    const nonces: string[] = [];
    for (const path of ["/events", "/events", "/"]) {
      const response = await request(path, { headers: html });
      assert.equal(response.status, 200, path);
      assert.match(response.headers.get("content-type") ?? "", /^text\/html/);
      const page = await response.text();
      // Every inline script and style runs only by its nonce (a JSON data
      // block is not run, so it needs none).
      const tags = [...page.matchAll(/<(script|style)\b([^>]*)>/g)].filter(
        (tag) => !tag[2].includes('type="application/json"'),
      );
      assert.ok(tags.length >= 1, `${path} has inline script or style`);
      const nonce = /nonce="([^"]+)"/.exec(tags[0][2])?.[1];
      assert.ok(nonce, `${path}: <${tags[0][1]}> carries a nonce`);
      for (const tag of tags) {
        assert.match(
          tag[2],
          new RegExp(`nonce="${nonce}"`),
          `${path} ${tag[0]}`,
        );
      }
      assert.equal(
        response.headers.get("content-security-policy"),
        pageContentSecurityPolicy(nonce),
        path,
      );
      nonces.push(nonce);
    }
    assert.equal(new Set(nonces).size, nonces.length, "a new nonce each time");
  });

  test("createApp() answers 405 with Allow for other methods", async () => {
    const { request } = setup();
    for (const method of ["PUT", "DELETE", "PATCH"]) {
      const response = await request("/events", { method, body: "x" });
      assert.equal(response.status, 405, method);
      assert.equal(response.headers.get("allow"), "GET, POST");
      assert.equal((await json(response)).code, "method_not_allowed");
    }
  });

  test("createApp() /healthz answers JSON with status, version and subscribers", async () => {
    const { request, topic } = setup({ version: "9.9.9" });
    topic.subscribe(new FakeSink({ transport: "sse" }));
    const response = await request("/healthz");
    assert.equal(response.status, 200);
    assert.deepEqual(await json(response), {
      status: "ok",
      version: "9.9.9",
      subscribers: { websocket: 0, sse: 1 },
    });
  });

  test("createApp() /metrics has the metric names and counts a publish", async () => {
    const { request } = setup();
    const before = await request("/metrics");
    assert.equal(before.status, 200);
    assert.match(
      before.headers.get("content-type") ?? "",
      /^text\/plain; version=0\.0\.4/,
    );
    const text = await before.text();
    for (
      const name of [
        "wsevent_subscribers",
        "wsevent_events_published_total",
        "wsevent_events_delivered_total",
        "wsevent_slow_consumer_disconnects_total",
        "wsevent_gaps_total",
        "wsevent_replay_buffer_events",
        "wsevent_unauthorized_total",
      ]
    ) {
      assert.ok(text.includes(`# TYPE ${name} `), name);
    }
    assert.match(text, /^wsevent_events_published_total 0$/m);
    const post = await request("/events", { method: "POST", body: "x" });
    await post.body?.cancel();
    const after = await (await request("/metrics")).text();
    assert.match(after, /^wsevent_events_published_total 1$/m);
    assert.match(after, /^wsevent_replay_buffer_events\{path="events"\} 1$/m);
  });

  test("createApp() /readyz answers 200 when every upstream is connected and 503 when one is down", async () => {
    const upstreams: UpstreamStatus[] = [
      { url: "ws://a:1/x", path: "events", connected: true, reconnects: 0 },
    ];
    const { request } = setup({ upstreams: () => upstreams });
    const up = await request("/readyz");
    assert.equal(up.status, 200);
    assert.deepEqual(await json(up), { ready: true, upstreams });
    upstreams[0] = { ...upstreams[0], connected: false, reconnects: 1 };
    const down = await request("/readyz");
    assert.equal(down.status, 503);
    assert.equal((await json(down)).ready, false);
  });

  test("createApp() /readyz answers 200 without upstreams", async () => {
    const { request } = setup();
    const response = await request("/readyz");
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });
});

describe("createApp() SSE", () => {
  test("createApp() GET with Accept: text/event-stream streams SSE with the right headers", async () => {
    const { request, topic, hub } = setup();
    const response = await request("/events", { headers: SSE });
    assert.equal(response.status, 200);
    assert.match(
      response.headers.get("content-type") ?? "",
      /^text\/event-stream/,
    );
    assert.match(response.headers.get("cache-control") ?? "", /no-cache/);
    assert.equal(response.headers.get("x-accel-buffering"), "no");
    const reader = new StreamReader(response);
    try {
      const start = await reader.until((t) => t.length > 0);
      assert.ok(start.startsWith("retry:"), JSON.stringify(start));
      assert.equal(hub.counts.sse, 1);
      topic.publish("0: localhost:8080: abcdefghij\n");
      const text = await reader.until((t) => t.includes("id: e-0\n"));
      await reader.until((t) => t.endsWith("\n\n") && t.includes("id: e-0"));
      assert.deepEqual(
        messages(reader.text).map((m) => [m.lastEventId, m.data]),
        [
          ["e-0", "0: localhost:8080: abcdefghij\n"],
        ],
      );
      assert.ok(
        text.includes("id: e-0\ndata: 0: localhost:8080: abcdefghij\n"),
      );
    } finally {
      await reader.cancel();
    }
    assert.equal(hub.counts.sse, 0);
  });

  test("createApp() SSE delivers an event published with POST", async () => {
    const { request } = setup();
    const reader = new StreamReader(
      await request("/events", { headers: SSE }),
    );
    try {
      const post = await request("/events", {
        method: "POST",
        body: "via post",
      });
      const { id } = await post.json();
      const text = await reader.until((t) => t.includes("data: via post\n\n"));
      assert.ok(text.includes(`id: ${id}\n`));
    } finally {
      await reader.cancel();
    }
  });

  test("createApp() SSE resumes after the Last-Event-ID header", async () => {
    const { request, topic } = setup();
    for (let i = 0; i < 5; i++) topic.publish(`m${i}`);
    const reader = new StreamReader(
      await request("/events", {
        headers: { ...SSE, "last-event-id": "e-2" },
      }),
    );
    try {
      topic.publish("m5");
      const text = await reader.until((t) => t.includes("data: m5\n\n"));
      assert.deepEqual(messages(text).map((m) => m.data), ["m3", "m4", "m5"]);
    } finally {
      await reader.cancel();
    }
  });

  test("createApp() SSE resumes after ?lastEventId= and prefers the header", async () => {
    const { request, topic } = setup();
    for (let i = 0; i < 5; i++) topic.publish(`m${i}`);
    const query = new StreamReader(
      await request("/events?lastEventId=e-3", { headers: SSE }),
    );
    const both = new StreamReader(
      await request("/events?lastEventId=e-0", {
        headers: { ...SSE, "last-event-id": "e-3" },
      }),
    );
    try {
      topic.publish("m5");
      for (const reader of [query, both]) {
        const text = await reader.until((t) => t.includes("data: m5\n\n"));
        assert.deepEqual(messages(text).map((m) => m.data), ["m4", "m5"]);
      }
    } finally {
      await query.cancel();
      await both.cancel();
    }
  });

  test("createApp() SSE sends a gap notice for an unknown id", async () => {
    const { request, topic } = setup();
    topic.publish("m0");
    const reader = new StreamReader(
      await request("/events", {
        headers: { ...SSE, "last-event-id": "gone-7" },
      }),
    );
    try {
      const text = await reader.until((t) => t.includes("data: m0\n\n"));
      const [gap, event] = messages(text);
      assert.equal(gap.event, "gap");
      assert.equal(JSON.parse(gap.data).lastEventId, "gone-7");
      assert.equal(event.data, "m0");
    } finally {
      await reader.cancel();
    }
  });

  test("createApp() SSE ?replay=all sends the whole buffer", async () => {
    const { request, topic } = setup();
    topic.publish("a");
    topic.publish("b");
    const reader = new StreamReader(
      await request("/events?replay=all", { headers: SSE }),
    );
    try {
      const text = await reader.until((t) => t.includes("data: b\n\n"));
      assert.deepEqual(messages(text).map((m) => m.data), ["a", "b"]);
    } finally {
      await reader.cancel();
    }
  });

  test("createApp() heartbeat() writes a comment to SSE subscribers", async () => {
    const { request, heartbeat, live } = setup();
    const reader = new StreamReader(
      await request("/events", { headers: SSE }),
    );
    try {
      assert.equal(live.size, 1);
      heartbeat();
      await reader.until((t) => t.includes(": heartbeat\n\n"));
    } finally {
      await reader.cancel();
    }
    assert.equal(live.size, 0);
  });
});

describe("createApp() tokens", () => {
  const TOKENS = { subscribeToken: "sub-secret", publishToken: "pub-secret" };

  test("createApp() refuses to subscribe without or with a wrong token: 401 with WWW-Authenticate", async () => {
    const { request, hub } = setup(TOKENS);
    for (
      const [path, headers] of [
        ["/events", SSE],
        ["/events", { ...SSE, authorization: "Bearer wrong" }],
        ["/events?token=wrong", SSE],
        ["/events?token=pub-secret", SSE],
        ["/events", { ...SSE, authorization: "Basic c3ViLXNlY3JldA==" }],
      ] as const
    ) {
      const response = await request(path, { headers });
      assert.equal(response.status, 401, `${path} ${JSON.stringify(headers)}`);
      assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer/);
      assert.equal((await json(response)).code, "unauthorized");
    }
    assert.equal(hub.counts.sse, 0);
  });

  test("createApp() lets a subscriber in with the right token in the header or ?token=", async () => {
    const { request } = setup(TOKENS);
    for (
      const [path, headers] of [
        ["/events", { ...SSE, authorization: "Bearer sub-secret" }],
        ["/events?token=sub-secret", SSE],
      ] as const
    ) {
      const response = await request(path, { headers });
      assert.equal(response.status, 200, path);
      await response.body?.cancel();
    }
  });

  test("createApp() refuses to publish without, with a wrong, or with a query token", async () => {
    const { request, topic } = setup(TOKENS);
    for (
      const [path, headers] of [
        ["/events", {}],
        ["/events", { authorization: "Bearer wrong" }],
        ["/events", { authorization: "Bearer sub-secret" }],
        ["/events?token=pub-secret", {}],
      ] as const
    ) {
      const response = await request(path, {
        method: "POST",
        headers,
        body: "x",
      });
      assert.equal(response.status, 401, `${path} ${JSON.stringify(headers)}`);
      assert.match(response.headers.get("www-authenticate") ?? "", /^Bearer/);
      await response.body?.cancel();
    }
    assert.equal(topic.lastId, null);
  });

  test("createApp() publishes with the right token in the header", async () => {
    const { request, topic } = setup(TOKENS);
    const response = await request("/events", {
      method: "POST",
      headers: { authorization: "Bearer pub-secret" },
      body: "x",
    });
    assert.equal(response.status, 202);
    await response.body?.cancel();
    assert.equal(topic.lastId, "e-0");
  });

  test("createApp() needs no token when none is configured", async () => {
    const { request } = setup();
    const post = await request("/events", { method: "POST", body: "x" });
    assert.equal(post.status, 202);
    await post.body?.cancel();
    const get = await request("/events", { headers: SSE });
    assert.equal(get.status, 200);
    await get.body?.cancel();
  });

  test("createApp() counts refused requests in /metrics", async () => {
    const { request } = setup(TOKENS);
    const refused = await request("/events", { headers: SSE });
    await refused.body?.cancel();
    const text = await (await request("/metrics")).text();
    assert.match(text, /^wsevent_unauthorized_total 1$/m);
  });
});

describe("createApp() origins and limits", () => {
  const ORIGINS = { allowOrigins: ["https://app.example.com"] };

  test("createApp() lets an allowed origin subscribe", async () => {
    const { request } = setup(ORIGINS);
    const response = await request("/events", {
      headers: { ...SSE, origin: "https://app.example.com" },
    });
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });

  test("createApp() refuses another origin with 403", async () => {
    const { request, hub } = setup(ORIGINS);
    const response = await request("/events", {
      headers: { ...SSE, origin: "https://evil.test" },
    });
    assert.equal(response.status, 403);
    assert.equal((await json(response)).code, "forbidden_origin");
    assert.equal(hub.counts.sse, 0);
  });

  test("createApp() lets a request without Origin through", async () => {
    const { request } = setup(ORIGINS);
    const response = await request("/events", { headers: SSE });
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });

  test("createApp() refuses a same-host origin that is not listed (DNS rebinding)", async () => {
    const { request } = setup(ORIGINS);
    const response = await request("http://stream.local:8080/events", {
      headers: {
        ...SSE,
        origin: "http://stream.local:8080",
        host: "stream.local:8080",
      },
    });
    assert.equal(response.status, 403);
    await response.body?.cancel();
  });

  test("createApp() refuses a WebSocket from another origin before upgrading", async () => {
    const { request, websocket } = setup(ORIGINS);
    const response = await request("/events", {
      headers: { ...UPGRADE_HEADERS, origin: "https://evil.test" },
    });
    assert.equal(response.status, 403);
    await response.body?.cancel();
    assert.equal(websocket.calls.length, 0);
  });

  test("createApp() answers 503 at the subscriber limit", async () => {
    const { request, websocket } = setup({}, { maxSubscribers: 1 });
    const first = await request("/events", { headers: SSE });
    assert.equal(first.status, 200);
    try {
      const second = await request("/events", { headers: SSE });
      assert.equal(second.status, 503);
      assert.equal((await json(second)).code, "subscriber_limit");
      const upgrade = await request("/events", {
        headers: UPGRADE_HEADERS,
      });
      assert.equal(upgrade.status, 503);
      await upgrade.body?.cancel();
      assert.equal(websocket.calls.length, 0);
    } finally {
      await first.body?.cancel();
    }
    const third = await request("/events", { headers: SSE });
    assert.equal(third.status, 200, "room again after the first left");
    await third.body?.cancel();
  });
});

describe("createApp() WebSocket", () => {
  test("createApp() refuses an upgrade without a proper Sec-WebSocket-Key with 400, without upgrading", async () => {
    const { request, websocket } = setup();
    const variants: Record<string, string>[] = [
      { upgrade: "websocket", "sec-websocket-version": "13" },
      { ...UPGRADE_HEADERS, "sec-websocket-key": "short" },
      { ...UPGRADE_HEADERS, "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ" },
      { ...UPGRADE_HEADERS, "sec-websocket-version": "8" },
    ];
    for (const headers of variants) {
      const response = await request("/events", { headers });
      assert.equal(response.status, 400, JSON.stringify(headers));
      assert.equal((await json(response)).code, "bad_request");
    }
    assert.equal(websocket.calls.length, 0);
  });

  test("createApp() hands a proper upgrade to the runtime's upgrader with its options", async () => {
    const { request, websocket } = setup();
    const response = await request("/events", {
      headers: { ...UPGRADE_HEADERS, upgrade: "WebSocket" },
    });
    assert.equal(response.status, FAKE_UPGRADE_STATUS);
    assert.equal(websocket.calls.length, 1);
    assert.deepEqual(websocket.calls[0].options, { idleTimeout: 30 });
  });

  test("createApp() WebSocket subscriber gets bare frames and leaves on close", async () => {
    const { request, websocket, topic, hub, live } = setup();
    await request("/events", { headers: UPGRADE_HEADERS });
    const ws = websocket.calls[0].open();
    assert.equal(hub.counts.websocket, 1);
    assert.equal(live.size, 1);
    topic.publish("hello\n");
    topic.publish(new Uint8Array([7]));
    assert.deepEqual(ws.raw.frames, [
      { kind: "text", text: "hello\n" },
      { kind: "binary", bytes: new Uint8Array([7]) },
    ]);
    websocket.calls[0].events.onClose?.(
      // Node 22 has no global CloseEvent: an Event of that type will do.
      new Event("close") as CloseEvent,
      ws as unknown as Parameters<
        NonNullable<typeof websocket.calls[0]["events"]["onClose"]>
      >[1],
    );
    assert.equal(hub.counts.websocket, 0);
    assert.equal(live.size, 0);
  });

  test("createApp() WebSocket ?format=json&lastEventId= resumes with JSON envelopes", async () => {
    const { request, websocket, topic } = setup();
    for (let i = 0; i < 3; i++) topic.publish(`m${i}`);
    await request("/events?format=json&lastEventId=e-0", {
      headers: UPGRADE_HEADERS,
    });
    const ws = websocket.calls[0].open();
    assert.equal(websocket.sinks[0].format, "json");
    assert.deepEqual(
      ws.raw.frames.map((f) => f.kind === "text" ? JSON.parse(f.text) : f),
      [{ id: "e-1", data: "m1" }, { id: "e-2", data: "m2" }],
    );
  });

  test("createApp() WebSocket closes with 1013 when the limit is reached between upgrade and open", async () => {
    const { request, websocket, topic, hub, live } = setup({}, {
      maxSubscribers: 1,
    });
    const response = await request("/events", { headers: UPGRADE_HEADERS });
    assert.equal(response.status, FAKE_UPGRADE_STATUS);
    topic.subscribe(new FakeSink()); // takes the last place meanwhile
    const ws = websocket.calls[0].open();
    assert.equal(ws.closes.length, 1);
    assert.equal(ws.closes[0].code, 1013);
    assert.ok((ws.closes[0].reason ?? "").length <= 123);
    assert.equal(hub.counts.websocket, 1);
    assert.equal(live.size, 0);
  });

  test("createApp() WebSocket closes with 1009 on a frame over maxBodyBytes", async () => {
    const { request, websocket } = setup({ maxBodyBytes: 4 });
    await request("/events", { headers: UPGRADE_HEADERS });
    const call = websocket.calls[0];
    const ws = call.open();
    type WsArg = Parameters<NonNullable<typeof call.events.onMessage>>[1];
    call.events.onMessage?.(
      new MessageEvent("message", { data: "1234" }),
      ws as unknown as WsArg,
    );
    assert.deepEqual(ws.closes, []);
    call.events.onMessage?.(
      new MessageEvent("message", { data: "12345" }),
      ws as unknown as WsArg,
    );
    assert.deepEqual(ws.closes, [{ code: 1009, reason: "frame too large" }]);
  });

  test("createApp() heartbeat() reaches WebSocket json subscribers", async () => {
    const { request, websocket, heartbeat } = setup();
    await request("/events?format=json", { headers: UPGRADE_HEADERS });
    const ws = websocket.calls[0].open();
    heartbeat();
    assert.deepEqual(ws.raw.frames, [
      { kind: "text", text: '{"type":"heartbeat"}' },
    ]);
  });
});

describe("createApp() forwarding publishes (relay)", () => {
  test("createApp() forwards a POST to the upstream over http with the upstream token", async () => {
    const { request, topic } = setup({
      forwardPublishUrl: new URL("wss://up.example:8443/events?format=json"),
      upstreamToken: "up-secret",
    });
    const original = globalThis.fetch;
    const seen: Request[] = [];
    globalThis.fetch = (input: RequestInfo | URL, init?: RequestInit) => {
      seen.push(new Request(input, init));
      return Promise.resolve(Response.json({ id: "up-9" }, { status: 202 }));
    };
    try {
      const response = await request("/events", {
        method: "POST",
        headers: { "content-type": "text/plain" },
        body: "forward me",
      });
      assert.equal(response.status, 202);
      assert.deepEqual(await response.json(), { id: "up-9" });
    } finally {
      globalThis.fetch = original;
    }
    assert.equal(seen.length, 1);
    assert.equal(seen[0].url, "https://up.example:8443/events");
    assert.equal(seen[0].method, "POST");
    assert.equal(seen[0].headers.get("authorization"), "Bearer up-secret");
    assert.equal(seen[0].headers.get("content-type"), "text/plain");
    assert.equal(await seen[0].text(), "forward me");
    assert.equal(topic.lastId, null, "not published locally");
  });

  test("createApp() answers 502 when the upstream cannot be reached", async () => {
    const { request } = setup({
      forwardPublishUrl: new URL("ws://up:1/events"),
    });
    const original = globalThis.fetch;
    globalThis.fetch = () =>
      Promise.reject(new TypeError("connection refused"));
    try {
      const response = await request("/events", {
        method: "POST",
        body: "x",
      });
      assert.equal(response.status, 502);
      const body = await json(response);
      assert.equal(body.code, "upstream_unavailable");
      assert.match(String(body.error), /connection refused/);
    } finally {
      globalThis.fetch = original;
    }
  });
});
