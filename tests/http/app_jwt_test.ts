/**
 * createApp() with a JWT authorizer, through app.fetch (no ports): 401 and
 * 403 answered before any upgrade, the static tokens still working, the
 * cookie, and the end of a subscription at its token's expiry (WebSocket
 * close 1008, SSE `event: expired`).
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { createApp } from "../../src/http/app.ts";
import { createJwtAuthorizer } from "../../src/http/jwt.ts";
import { createHub } from "../../src/hub.ts";
import {
  FAKE_UPGRADE_STATUS,
  fakeWebSocket,
  StreamReader,
  UPGRADE_HEADERS,
} from "./_app_helpers.ts";
import { makeKey, nowSeconds } from "./_jwt_keys.ts";

const STATIC = "static-subscribe-token";

async function setup(allowOrigins: string[] = []) {
  const key = await makeKey("EC");
  const hub = createHub();
  hub.addTopic("events", "e1");
  hub.addTopic("rooms/1", "e1");
  const websocket = fakeWebSocket();
  const jwt = await createJwtAuthorizer(key.material, { leewaySeconds: 0 });
  const { app } = createApp({
    hub,
    websocket: websocket.support,
    jwt,
    subscribeToken: STATIC,
    allowOrigins,
  });
  const token = (rights: Record<string, unknown>, exp?: number) =>
    key.sign({ wsevent: rights, ...(exp === undefined ? {} : { exp }) });
  return { app, hub, websocket, token };
}

function request(
  path: string,
  headers: Record<string, string> = {},
  init: RequestInit = {},
): Request {
  return new Request(`http://localhost${path}`, { headers, ...init });
}

describe("createApp() with a JWT key", () => {
  test("refuses a WebSocket upgrade with 401 or 403 before upgrading", async () => {
    const { app, websocket, token } = await setup();
    const good = await token({ subscribe: ["events"] });
    const cases: [Record<string, string>, string, number, string][] = [
      [{}, "/events", 401, "unauthorized"],
      [{ authorization: "Bearer nope" }, "/events", 401, "unauthorized"],
      [{ authorization: `Bearer ${good}` }, "/rooms/1", 403, "forbidden"],
      [{}, `/rooms/1?token=${good}`, 403, "forbidden"],
    ];
    for (const [headers, path, status, code] of cases) {
      const response = await app.fetch(
        request(path, { ...UPGRADE_HEADERS, ...headers }),
      );
      assert.equal(
        response.status,
        status,
        `${path} ${JSON.stringify(headers)}`,
      );
      assert.equal(
        (await response.json()).code,
        code === "forbidden" ? "forbidden_topic" : code,
      );
    }
    assert.equal(websocket.calls.length, 0);
    const ok = await app.fetch(
      request("/events", {
        ...UPGRADE_HEADERS,
        authorization: `Bearer ${good}`,
      }),
    );
    assert.equal(ok.status, FAKE_UPGRADE_STATUS);
    assert.equal(websocket.calls.length, 1);
  });

  test("keeps the static subscribe token working beside JWTs", async () => {
    const { app } = await setup();
    const response = await app.fetch(
      request(`/rooms/1?token=${STATIC}`, { accept: "text/event-stream" }),
    );
    assert.equal(response.status, 200);
    await response.body?.cancel();
  });

  test("publishes with a JWT that allows the topic, 403 for another", async () => {
    const { app, hub, token } = await setup();
    const good = await token({ publish: ["rooms/*"] });
    const post = (path: string, headers: Record<string, string>) =>
      app.fetch(request(path, headers, { method: "POST", body: "hi" }));
    assert.equal(
      (await post("/rooms/1", { authorization: `Bearer ${good}` })).status,
      202,
    );
    assert.equal(hub.topic("rooms/1")!.buffered, 1);
    assert.equal(
      (await post("/events", { authorization: `Bearer ${good}` })).status,
      403,
    );
    assert.equal((await post("/rooms/1", {})).status, 401);
    // A publish takes no ?token= (URLs end up in logs).
    assert.equal((await post(`/rooms/1?token=${good}`, {})).status, 401);
    assert.equal(hub.topic("events")!.buffered, 0);
  });

  test("takes the wsevent_token cookie; a publish only from its own origin", async () => {
    const { app, token } = await setup();
    const good = await token({ subscribe: ["events"], publish: ["events"] });
    const sse = await app.fetch(request("/events", {
      accept: "text/event-stream",
      cookie: `wsevent_token=${good}`,
    }));
    assert.equal(sse.status, 200);
    await sse.body?.cancel();
    const post = (origin: string | undefined) =>
      app.fetch(
        request("/events", {
          cookie: `theme=dark; wsevent_token=${good}`,
          host: "localhost",
          ...(origin ? { origin } : {}),
        }, { method: "POST", body: "x" }),
      );
    assert.equal((await post(undefined)).status, 202);
    // No implicit same origin, as for -allow-origin.
    assert.equal((await post("http://localhost")).status, 401);
    assert.equal((await post("http://evil.example")).status, 401);
  });

  test("takes the cookie for a WebSocket only without an Origin or from an allowed one", async () => {
    const upgrade = (app: Awaited<ReturnType<typeof setup>>["app"]) =>
    (
      cookie: string,
      origin?: string,
    ) =>
      app.fetch(request("/events", {
        ...UPGRADE_HEADERS,
        cookie,
        ...(origin ? { origin } : {}),
      }));
    const open = await setup();
    const good = `wsevent_token=${await open.token({ subscribe: ["events"] })}`;
    // A cross-site page opening a WebSocket sends the victim's cookie, and
    // no CORS check guards what it reads.
    assert.equal(
      (await upgrade(open.app)(good, "http://evil.example")).status,
      401,
    );
    assert.equal((await upgrade(open.app)(good)).status, FAKE_UPGRADE_STATUS);
    const listed = await setup(["http://app.example"]);
    const cookie = `wsevent_token=${await listed.token({
      subscribe: ["events"],
    })}`;
    assert.equal(
      (await upgrade(listed.app)(cookie, "http://app.example")).status,
      FAKE_UPGRADE_STATUS,
    );
    assert.equal(
      (await upgrade(listed.app)(cookie, "http://evil.example")).status,
      403,
    );
  });

  test("takes the cookie for a publish from an allowed origin", async () => {
    const { app, token } = await setup(["http://app.example"]);
    const good = await token({ publish: ["events"] });
    const response = await app.fetch(
      request("/events", {
        cookie: `wsevent_token=${good}`,
        origin: "http://app.example",
      }, { method: "POST", body: "x" }),
    );
    assert.equal(response.status, 202);
  });

  test("ends an SSE subscription with event: expired at the token's expiry", async () => {
    const { app, token } = await setup();
    const exp = nowSeconds() + 1;
    const good = await token({ subscribe: ["events"] }, exp);
    const response = await app.fetch(request("/events", {
      accept: "text/event-stream",
      authorization: `Bearer ${good}`,
    }));
    assert.equal(response.status, 200);
    const reader = new StreamReader(response);
    const text = await reader.end();
    assert.match(
      text,
      /event: expired\ndata: \{"reason":"token expired"\}\n\n$/,
    );
    assert.ok(Date.now() >= exp * 1000, "ended before the expiry");
  });

  test("closes a WebSocket subscriber with 1008 at the token's expiry", async () => {
    const { app, websocket, token } = await setup();
    const exp = nowSeconds() + 1;
    const good = await token({ subscribe: ["events"] }, exp);
    await app.fetch(request("/events", {
      ...UPGRADE_HEADERS,
      authorization: `Bearer ${good}`,
    }));
    const ws = websocket.calls[0].open();
    const deadline = Date.now() + 5000;
    while (!ws.raw.frames.some((f) => f.kind === "close")) {
      assert.ok(Date.now() < deadline, "no close within 5 s");
      await new Promise((r) => setTimeout(r, 20));
    }
    assert.ok(Date.now() >= exp * 1000, "closed before the expiry");
    assert.deepEqual(ws.raw.frames.at(-1), {
      kind: "close",
      code: 1008,
      reason: "token expired",
    });
  });
});
