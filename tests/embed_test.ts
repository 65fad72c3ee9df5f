import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Hono } from "hono";
import { createStreams } from "../src/embed.ts";

/** Reads an SSE response until `done` says enough, or 5 s pass. */
async function readSse(
  response: Response,
  done: (text: string) => boolean,
): Promise<string> {
  const reader = response.body!.pipeThrough(new TextDecoderStream())
    .getReader();
  let text = "";
  const deadline = Date.now() + 5000;
  while (!done(text) && Date.now() < deadline) {
    const { value, done: ended } = await reader.read();
    if (ended) break;
    text += value;
  }
  await reader.cancel();
  return text;
}

const SSE = { headers: { Accept: "text/event-stream" } };

describe("createStreams()", () => {
  test("createStreams() mounts in a Hono app; a publish from server code reaches an SSE subscriber there", async () => {
    const streams = createStreams({ paths: ["orders"] });
    const app = streams.mount(new Hono(), "/live");
    try {
      const response = await app.request("/live/orders", SSE);
      assert.equal(response.status, 200);
      assert.match(response.headers.get("content-type") ?? "", /event-stream/);
      const { id } = streams.publish("orders", "order 1");
      const text = await readSse(response, (t) => t.includes("order 1"));
      assert.match(text, new RegExp(`id: ${id}\ndata: order 1\n`));
    } finally {
      await streams.close();
    }
  });

  test("createStreams() serves only under its mount: elsewhere 404, also for a path that merely starts alike", async () => {
    const streams = createStreams({ paths: ["orders"] });
    const app = streams.mount(new Hono(), "/live");
    app.get("/orders", (c) => c.text("the app's own"));
    try {
      assert.equal(
        await (await app.request("/orders")).text(),
        "the app's own",
      );
      assert.equal((await app.request("/livex/orders", SSE)).status, 404);
      const inside = await app.request("/live/nope", SSE);
      assert.equal(inside.status, 404);
      assert.equal((await inside.json()).code, "not_found");
    } finally {
      await streams.close();
    }
  });

  test("createStreams() mounted twice: both mounts share the streams; POST answers 202 with the id", async () => {
    const streams = createStreams();
    const app = new Hono();
    streams.mount(app, "/a");
    streams.mount(app, "/b/c");
    try {
      const response = await app.request("/b/c/events", SSE);
      const posted = await app.request("/a/events", {
        method: "POST",
        body: "hello",
      });
      assert.equal(posted.status, 202);
      const { id } = await posted.json() as { id: string };
      const text = await readSse(response, (t) => t.includes("hello"));
      assert.match(text, new RegExp(`id: ${id}\ndata: hello\n`));
      assert.equal(streams.hub.stats.published, 1);
    } finally {
      await streams.close();
    }
  });

  test("createStreams() alone through fetch; close() ends subscribers", async () => {
    const streams = createStreams({ paths: ["/x"] });
    const response = await streams.fetch(
      new Request("http://localhost/x", SSE),
    );
    assert.equal(response.status, 200);
    assert.equal(streams.hub.counts.sse, 1);
    await streams.close();
    // The stream ends: reading finishes instead of waiting for events.
    const text = await readSse(response, () => false);
    assert.match(text, /connected/);
    assert.equal(streams.hub.counts.sse, 0);
  });

  test("createStreams() without upgradeWebSocket answers a WebSocket upgrade 501 with a reason", async () => {
    const streams = createStreams();
    try {
      const response = await streams.fetch(
        new Request("http://localhost/events", {
          headers: {
            Upgrade: "websocket",
            Connection: "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
          },
        }),
      );
      assert.equal(response.status, 501);
      const body = await response.json();
      assert.equal(body.code, "websocket_unavailable");
      assert.match(body.error, /upgradeWebSocket/);
    } finally {
      await streams.close();
    }
  });

  test("createStreams() passes the upgrade to the given upgrader with an idleTimeout from heartbeatMs", async () => {
    const calls: unknown[] = [];
    const streams = createStreams({
      heartbeatMs: 20_000,
      upgradeWebSocket: (_c: unknown, _events: unknown, options: unknown) => {
        calls.push(options);
        return new Response(null, { status: 299 });
      },
    });
    try {
      const response = await streams.mount(new Hono(), "/live").request(
        "/live/events",
        {
          headers: {
            Upgrade: "websocket",
            Connection: "Upgrade",
            "Sec-WebSocket-Key": "dGhlIHNhbXBsZSBub25jZQ==",
            "Sec-WebSocket-Version": "13",
          },
        },
      );
      assert.equal(response.status, 299);
      assert.deepEqual(calls, [{ idleTimeout: 20 }]);
    } finally {
      await streams.close();
    }
  });

  test("createStreams() exempts SSE from Bun's idle timeout through the server it is given, and nothing else", async () => {
    const streams = createStreams();
    const timeouts: [string, number][] = [];
    const server = {
      timeout: (request: Request, seconds: number) =>
        timeouts.push([request.method, seconds]),
    };
    try {
      const sse = await streams.fetch(
        new Request("http://localhost/events", SSE),
        server,
      );
      await sse.body?.cancel();
      await streams.fetch(
        new Request("http://localhost/events", { method: "POST", body: "x" }),
        server,
      );
      assert.deepEqual(timeouts, [["GET", 0]]);
    } finally {
      await streams.close();
    }
  });

  test("after close(), publish() throws and the mounted routes answer 503 closed: nothing is accepted that no one could receive", async () => {
    const streams = createStreams({ paths: ["orders"] });
    const app = streams.mount(new Hono(), "/live");
    await streams.close();
    assert.throws(
      () => streams.publish("orders", "late"),
      /Cannot publish to "orders": the streams are closed/,
    );
    const post = await app.request("/live/orders", {
      method: "POST",
      body: "late",
    });
    assert.equal(post.status, 503);
    assert.equal((await post.json()).code, "closed");
    const sse = await app.request("/live/orders", SSE);
    assert.equal(sse.status, 503);
    assert.match((await sse.json()).error, /the streams are closed/);
  });

  test("createStreams() rejects a bad path and publish() one it does not serve", async () => {
    assert.throws(
      () => createStreams({ paths: ["a b"] }),
      (error: unknown) =>
        error instanceof TypeError &&
        /Cannot serve a stream at "a b"/.test(error.message),
    );
    assert.throws(() => createStreams({ paths: ["a/"] }), TypeError);
    // A pattern would be served as one literal topic named "rooms/*".
    for (const pattern of ["rooms/*", "*"]) {
      assert.throws(
        () => createStreams({ paths: [pattern] }),
        (error: unknown) =>
          error instanceof TypeError &&
          error.message.includes("serves plain paths, not patterns"),
      );
    }
    const streams = createStreams({ paths: ["orders", "users"] });
    try {
      assert.throws(
        () => streams.publish("nope", "x"),
        (error: unknown) =>
          error instanceof RangeError &&
          error.message ===
            'Cannot publish to "nope": no stream there; streams: orders, users',
      );
      assert.match(streams.publish("/users", "x").id, /-0$/);
    } finally {
      await streams.close();
    }
  });
});
