/**
 * JWT authorization against a real process (issue 15): an RSA public key
 * read from a file (`--jwt-key @FILE`), 401/403 before the upgrade on
 * WebSocket, SSE and publish, the static token beside it, and a
 * subscription ended at its token's expiry that resumes with a fresh token
 * with nothing lost or repeated. The full matrix of keys and bad tokens is
 * in tests/http/jwt_test.ts.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import { connectSse, type Service, startService, waitFor } from "./_helpers.ts";
import { rawConnect } from "./_raw_ws.ts";
import {
  type KeyKind,
  makeKey,
  noneToken,
  nowSeconds,
} from "../http/_jwt_keys.ts";

const STATIC = "static-publish-token";

describe("wsevent --jwt-key (RSA public key file)", () => {
  let service: Service;
  let key: KeyKind;
  let dir: string;

  before(async () => {
    key = await makeKey("RSA");
    dir = mkdtempSync(join(tmpdir(), "wsevent-jwt-"));
    writeFileSync(join(dir, "jwt.pem"), key.material);
    service = await startService([
      "--serve-address",
      "127.0.0.1:0",
      "--serve-path",
      "events",
      "--serve-path",
      "rooms/1",
      "--no-produce",
      "--jwt-key",
      `@${join(dir, "jwt.pem")}`,
      "--jwt-leeway",
      "0",
      "--publish-token",
      STATIC,
    ]);
  });

  after(async () => {
    await service?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  const token = (rights: Record<string, unknown>, extra = {}) =>
    key.sign({ wsevent: rights, exp: nowSeconds() + 600, ...extra });

  const post = (path: string, auth: string | null, body = "x") =>
    fetch(`${service.http}/${path}`, {
      method: "POST",
      body,
      headers: auth === null ? {} : { Authorization: `Bearer ${auth}` },
    });

  test("WebSocket: 101 for an allowed topic; 401 and 403 before the upgrade", async () => {
    const good = await token({ subscribe: ["events"] });
    const cases: [string, string | null, number][] = [
      ["events", good, 101],
      ["rooms/1", good, 403],
      ["events", null, 401],
      ["events", noneToken({ wsevent: { subscribe: ["*"] } }), 401],
      [
        "events",
        await token({ subscribe: ["*"] }, { exp: nowSeconds() - 60 }),
        401,
      ],
      [
        "events",
        await token({ subscribe: ["*"] }, { nbf: nowSeconds() + 60 }),
        401,
      ],
    ];
    for (const [path, auth, status] of cases) {
      const ws = await rawConnect(
        `${service.url.replace(/\/events$/, "")}/${path}`,
        {
          headers: auth === null ? {} : { Authorization: `Bearer ${auth}` },
        },
      );
      assert.equal(ws.status, status, `${path}: ${ws.body}`);
      if (status !== 101) assert.match(ws.body, /Cannot subscribe/);
      ws.destroy();
    }
  });

  test("SSE: 200 for an allowed topic, 401 for a tampered token, 403 for another topic", async () => {
    const good = await token({ subscribe: ["rooms/*"] });
    const sse = (path: string, auth: string) =>
      fetch(`${service.http}/${path}?token=${auth}`, {
        headers: { Accept: "text/event-stream" },
      });
    const ok = await sse("rooms/1", good);
    assert.equal(ok.status, 200);
    await ok.body?.cancel();
    const forbidden = await sse("events", good);
    assert.equal(forbidden.status, 403);
    assert.equal((await forbidden.json()).code, "forbidden_topic");
    const tampered = await sse("rooms/1", good.slice(0, -3) + "AAA");
    assert.equal(tampered.status, 401);
    await tampered.body?.cancel();
  });

  test("publish: 202 with a JWT or the static token, 403 and 401 otherwise", async () => {
    const good = await token({ publish: ["events"] });
    assert.equal((await post("events", good)).status, 202);
    assert.equal((await post("events", STATIC)).status, 202);
    const forbidden = await post("rooms/1", good);
    assert.equal(forbidden.status, 403);
    await forbidden.body?.cancel();
    const missing = await post("rooms/1", null);
    assert.equal(missing.status, 401);
    assert.equal(
      missing.headers.get("www-authenticate"),
      'Bearer realm="wsevent"',
    );
  });

  test("a subscription ends at its token's expiry and resumes with a fresh one, nothing lost", async () => {
    const published: string[] = [];
    let publishing = true;
    const publisher = (async () => {
      for (let i = 0; publishing; i++) {
        const response = await post("rooms/1", STATIC, `m${i}`);
        published.push(((await response.json()) as { id: string }).id);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const exp = nowSeconds() + 2;
      const first = connectSse(`${service.http}/rooms/1`, {
        Authorization: `Bearer ${await token({ subscribe: ["rooms/1"] }, {
          exp,
        })}`,
      });
      await first.done;
      assert.ok(Date.now() >= exp * 1000 - 50, "ended before its expiry");
      const expired = first.messages.at(-1);
      assert.equal(expired?.event, "expired", first.raw().slice(-200));
      const seen = first.messages.filter((m) => m.event === "message");
      assert.ok(seen.length > 5, `only ${seen.length} events before expiry`);
      // The WebSocket way: a close with 1008 and a reason.
      const ws = await rawConnect(
        `${service.url.replace(/\/events$/, "")}/rooms/1?format=json`,
        {
          headers: {
            Authorization: `Bearer ${await token({ subscribe: ["rooms/*"] }, {
              exp: nowSeconds() + 1,
            })}`,
          },
        },
      );
      assert.equal(ws.status, 101);
      await waitFor(() => ws.closeFrame !== null, 5000, "the close frame");
      assert.deepEqual(ws.closeFrame, { code: 1008, reason: "token expired" });
      ws.destroy();
      // Resume with a fresh token from the last id seen.
      const lastId = seen.at(-1)!.id;
      const second = connectSse(`${service.http}/rooms/1`, {
        Authorization: `Bearer ${await token({ subscribe: ["rooms/1"] })}`,
        "Last-Event-ID": lastId,
      });
      const target = published.length + 3;
      await waitFor(
        () =>
          second.messages.filter((m) => m.event === "message").length +
              seen.length >= target,
        10_000,
        "the resumed stream to catch up",
      );
      second.close();
      const ids = [
        ...seen,
        ...second.messages.filter((m) => m.event === "message"),
      ]
        .map((m) => m.id);
      assert.ok(!second.messages.some((m) => m.event === "gap"));
      const start = published.indexOf(ids[0]);
      assert.ok(start >= 0);
      assert.deepEqual(ids, published.slice(start, start + ids.length));
    } finally {
      publishing = false;
      await publisher;
    }
  });
});
