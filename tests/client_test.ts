import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { publish, PublishError, subscribe } from "../src/client.ts";

describe("client module, without a server", () => {
  test("subscribe() refuses a URL of another scheme or an invalid one with a TypeError", () => {
    assert.throws(
      () => subscribe("ftp://127.0.0.1/events"),
      (error: unknown) =>
        error instanceof TypeError &&
        error.message ===
          'Cannot subscribe: expected a ws://, wss://, http:// or https:// URL, received "ftp://127.0.0.1/events"',
    );
    assert.throws(
      () => subscribe("http://[::1"),
      /Cannot subscribe: invalid URL "http:\/\/\[::1"/,
    );
  });

  test("subscribe() refuses a maxQueue or heartbeatMs out of range with a RangeError", () => {
    for (const maxQueue of [0, -1, 1.5, NaN]) {
      assert.throws(
        () => subscribe("ws://127.0.0.1:9/e", { maxQueue }),
        (error: unknown) =>
          error instanceof RangeError &&
          error.message ===
            `Cannot subscribe: maxQueue must be a positive integer, received ${maxQueue}`,
      );
    }
    for (const heartbeatMs of [0, -5, NaN, Infinity]) {
      assert.throws(
        () => subscribe("ws://127.0.0.1:9/e", { heartbeatMs }),
        /Cannot subscribe: heartbeatMs must be a positive number of milliseconds/,
      );
    }
  });

  test("publish() rejects a bad URL with a TypeError", async () => {
    await assert.rejects(
      publish("mailto:someone", "x"),
      /Cannot publish: expected a ws:\/\/, wss:\/\/, http:\/\/ or https:\/\/ URL/,
    );
  });

  test("subscribe() with an aborted signal ends at once and never connects", async () => {
    const states: string[] = [];
    const events = subscribe("ws://127.0.0.1:9/events", {
      signal: AbortSignal.abort(),
      onState: (state) => states.push(state),
    });
    const result = await events.next();
    assert.equal(result.done, true);
    assert.deepEqual(states, []);
    assert.equal(events.lastEventId, null);
  });

  test("subscribe() is lazy: nothing connects before iteration, and close() ends a pending next()", async () => {
    const states: string[] = [];
    const events = subscribe("ws://127.0.0.1:9/events", {
      lastEventId: "abc-1",
      onState: (state) => states.push(state),
    });
    assert.deepEqual(states, []);
    const pending = events.next();
    assert.deepEqual(states, ["connecting"]);
    events.close();
    assert.deepEqual(await pending, { value: undefined, done: true });
    assert.equal(events.lastEventId, "abc-1");
  });

  test("close() ends every pending next(), also two loops over one subscription (none hangs)", async () => {
    const events = subscribe("ws://127.0.0.1:9/events");
    const first = events.next();
    const second = events.next();
    events.close();
    let timer: ReturnType<typeof setTimeout> | undefined;
    const timeout = new Promise<string>((resolve) => {
      timer = setTimeout(() => resolve("hung"), 5_000);
    });
    try {
      assert.deepEqual(await Promise.race([first, timeout]), {
        value: undefined,
        done: true,
      });
      assert.deepEqual(await Promise.race([second, timeout]), {
        value: undefined,
        done: true,
      });
    } finally {
      clearTimeout(timer);
    }
  });

  test("an onState that throws ends the subscription with its error; nothing escapes (no unhandled rejection or uncaught error)", async () => {
    // Thrown from the first call (inside the first next()) and from a later
    // one (after the refused connection), with two loops waiting.
    for (const when of ["connecting", "closed"]) {
      const states: string[] = [];
      const events = subscribe("ws://127.0.0.1:9/events", {
        onState(state) {
          states.push(state);
          if (state === when) throw new Error(`boom on ${when}`);
        },
      });
      const first = events.next();
      const second = events.next();
      await assert.rejects(first, new RegExp(`boom on ${when}`));
      assert.deepEqual(await second, { value: undefined, done: true });
      assert.deepEqual(await events.next(), { value: undefined, done: true });
      // Stopped: no further connection attempt is reported.
      const seen = states.length;
      await new Promise((resolve) => setTimeout(resolve, 600));
      assert.ok(states.length <= seen + 1, states.join(","));
      assert.ok(!states.slice(seen).includes("connecting"), states.join(","));
    }
  });

  test("PublishError carries status, code and the server's message", () => {
    const error = new PublishError(413, "payload_too_large", "body too large");
    assert.equal(error.name, "PublishError");
    assert.equal(error.status, 413);
    assert.equal(error.code, "payload_too_large");
    assert.equal(
      error.message,
      "Cannot publish: the server answered 413 payload_too_large: body too large",
    );
    assert.equal(
      new PublishError(502, "", "Bad Gateway").message,
      "Cannot publish: the server answered 502: Bad Gateway",
    );
  });
});

describe("client module, against a recording HTTP server", () => {
  test("publish() to a URL with user:password sends them as Basic credentials, as subscribe() does (fetch refuses such a URL)", async () => {
    const seen: { url?: string; authorization?: string }[] = [];
    const server = createServer((request, response) => {
      seen.push({
        url: request.url,
        authorization: request.headers.authorization,
      });
      request.resume();
      request.on("end", () => {
        response.writeHead(202, { "Content-Type": "application/json" });
        response.end(JSON.stringify({ id: `e-${seen.length}` }));
      });
    });
    await new Promise<void>((resolve) =>
      server.listen(0, "127.0.0.1", resolve)
    );
    const { port } = server.address() as AddressInfo;
    try {
      const url = `http://us%C3%A9r:p%40ss@127.0.0.1:${port}/events`;
      assert.deepEqual(await publish(url, "one"), { id: "e-1" });
      // A token wins over the URL's credentials.
      assert.deepEqual(await publish(url, "two", { token: "t0k" }), {
        id: "e-2",
      });
      assert.deepEqual(seen, [
        {
          url: "/events",
          authorization: `Basic ${
            Buffer.from("usér:p@ss", "utf8").toString("base64")
          }`,
        },
        { url: "/events", authorization: "Bearer t0k" },
      ]);
    } finally {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("client module, against a server that is not wsevent", () => {
  test("publish() to a server answering an endless body ends with a PublishError, not a hang or growing memory", async () => {
    let stopped = false;
    const server = createServer((request, response) => {
      request.resume();
      response.writeHead(200, { "Content-Type": "text/html" });
      const chunk = "<p>not wsevent</p>".repeat(1000);
      const write = (): void => {
        // Writes until the client goes away (or the test ends).
        while (!stopped && !response.destroyed && response.write(chunk));
        if (!stopped && !response.destroyed) response.once("drain", write);
      };
      write();
    });
    await new Promise<void>((resolve) =>
      server.listen(0, "127.0.0.1", resolve)
    );
    const { port } = server.address() as AddressInfo;
    let timer: ReturnType<typeof setTimeout> | undefined;
    try {
      const result = await Promise.race([
        publish(`http://127.0.0.1:${port}/events`, "x").then(
          () => "resolved",
          (error: Error) => error,
        ),
        new Promise<string>((resolve) => {
          timer = setTimeout(() => resolve("hung"), 10_000);
        }),
      ]);
      assert.ok(result instanceof PublishError, String(result));
      assert.equal(result.status, 200);
      assert.match(result.message, /no event id in the answer/);
    } finally {
      clearTimeout(timer);
      stopped = true;
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});

describe("client module, against a small SSE server", () => {
  test("two pending next() calls are served in call order, also after a gap notice", async () => {
    const server = createServer((_request, response) => {
      response.writeHead(200, { "Content-Type": "text/event-stream" });
      response.write(
        'event: gap\ndata: {"lastEventId":"e-0","reason":"test"}\n\n' +
          "id: e-1\ndata: one\n\nid: e-2\ndata: two\n\n",
      );
    });
    await new Promise<void>((resolve) =>
      server.listen(0, "127.0.0.1", resolve)
    );
    const { port } = server.address() as AddressInfo;
    const gaps: string[] = [];
    const events = subscribe(`http://127.0.0.1:${port}/events`, {
      onGap: (gap) => gaps.push(gap.reason),
    });
    try {
      const first = events.next();
      const second = events.next();
      assert.deepEqual((await first).value, { id: "e-1", data: "one" });
      assert.deepEqual((await second).value, { id: "e-2", data: "two" });
      assert.deepEqual(gaps, ["test"]);
    } finally {
      events.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });

  test("maxQueue: 1 with a consumer waiting on next() keeps one connection (an event handed straight to the consumer never fills the queue)", async () => {
    let connections = 0;
    const timers = new Set<ReturnType<typeof setTimeout>>();
    const server = createServer((request, response) => {
      connections++;
      const last = request.headers["last-event-id"];
      let n = typeof last === "string" ? Number(last.slice(2)) : 0;
      response.writeHead(200, { "Content-Type": "text/event-stream" });
      response.write(":\n\n");
      const send = (): void => {
        if (n >= 4 || response.destroyed) return;
        n++;
        response.write(`id: e-${n}\ndata: ${n}\n\n`);
        const timer = setTimeout(send, 100);
        timers.add(timer);
      };
      send();
    });
    await new Promise<void>((resolve) =>
      server.listen(0, "127.0.0.1", resolve)
    );
    const { port } = server.address() as AddressInfo;
    const events = subscribe(`http://127.0.0.1:${port}/events`, {
      maxQueue: 1,
    });
    try {
      const got: string[] = [];
      while (got.length < 4) {
        const result = await events.next();
        if (result.done) break;
        got.push(`${result.value.id}=${result.value.data}`);
      }
      assert.deepEqual(got, ["e-1=1", "e-2=2", "e-3=3", "e-4=4"]);
      assert.equal(connections, 1, `${connections} connections`);
    } finally {
      events.close();
      for (const timer of timers) clearTimeout(timer);
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
