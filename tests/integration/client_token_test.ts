/**
 * The client module and short-lived tokens (JWT, `--jwt-key`): a string
 * token ends the iteration with TokenExpiredError when the server ends the
 * subscription at its expiry; a token function is called again and the
 * subscription resumes with nothing lost. Both transports.
 *
 * @module
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  type ClientEvent,
  publish,
  subscribe,
  TokenExpiredError,
} from "../../src/client.ts";
import { makeKey, nowSeconds } from "../http/_jwt_keys.ts";
import { join } from "node:path";
import {
  type Child,
  ROOT,
  runtimeCommand,
  startChild,
  startService,
  waitFor,
} from "./_helpers.ts";

describe("client module with expiring tokens", { timeout: 120_000 }, () => {
  test("a string token ends with TokenExpiredError after the events before it; a token function resumes with nothing lost (WebSocket and SSE)", async () => {
    const key = await makeKey("HMAC");
    const service = await startService([
      "--serve-address",
      "127.0.0.1:0",
      "--no-produce",
      "--jwt-key",
      key.material,
      "--jwt-leeway",
      "0",
    ]);
    const publisherToken = await key.sign({
      wsevent: { publish: ["events"] },
      exp: nowSeconds() + 600,
    });
    // Expires at the next whole second but one: 1 to 2 s from now.
    const shortToken = () =>
      key.sign({ wsevent: { subscribe: ["events"] }, exp: nowSeconds() + 2 });
    const published: string[] = [];
    let publishing = true;
    const publisher = (async () => {
      while (publishing) {
        const { id } = await publish(`${service.http}/events`, "x", {
          token: publisherToken,
        });
        published.push(id);
        await new Promise((r) => setTimeout(r, 20));
      }
    })();
    try {
      const urls = { ws: service.url, sse: `${service.http}/events` };
      const runs = Object.entries(urls).map(async ([kind, url]) => {
        // A string token: the iteration throws once the server ends it.
        const got: ClientEvent[] = [];
        let thrown: unknown;
        try {
          for await (
            const event of subscribe(url, {
              token: await shortToken(),
              // Bounds the test should the expiry go unnoticed.
              signal: AbortSignal.timeout(20_000),
            })
          ) {
            got.push(event);
          }
        } catch (error) {
          thrown = error;
        }
        assert.ok(thrown instanceof TokenExpiredError, `${kind}: ${thrown}`);
        assert.ok(got.length > 5, `${kind}: ${got.length} events before`);
        assert.equal(thrown.lastEventId, got.at(-1)!.id);

        // A function: called for each connection, so the expiry is a
        // reconnect that resumes after the last id.
        let calls = 0;
        const events = subscribe(url, {
          lastEventId: thrown.lastEventId!,
          token: () => {
            calls++;
            return shortToken();
          },
        });
        const resumed: ClientEvent[] = [];
        const loop = (async () => {
          for await (const event of events) resumed.push(event);
        })();
        try {
          await waitFor(
            () =>
              calls >= 2 && resumed.length > 0 &&
              published.length > 0 &&
              published.indexOf(resumed.at(-1)!.id!) >
                published.indexOf(got.at(-1)!.id!) + 60,
            20_000,
            `${kind}: events after a second token`,
          );
        } finally {
          // Also on failure: an open subscription reconnects for ever and
          // would keep the test file running.
          events.close();
          await loop;
        }
        const all = [...got, ...resumed].map((e) => e.id!);
        const start = published.indexOf(all[0]);
        assert.deepEqual(
          all,
          published.slice(start, start + all.length),
          `${kind}: every event once, in order, across both expiries`,
        );
      });
      // Both runs end (each closes its subscription) before the service
      // stops, also when one fails.
      const results = await Promise.allSettled(runs);
      for (const result of results) {
        if (result.status === "rejected") throw result.reason;
      }
    } finally {
      publishing = false;
      await publisher.catch(() => {});
      await service.stop();
    }
  });

  test("cli.ts subscribe with a token that expires: exit 1, and the error names the id to resume from", async () => {
    const key = await makeKey("HMAC");
    const service = await startService([
      "--serve-address",
      "127.0.0.1:0",
      "--interval",
      "20",
      "--jwt-key",
      key.material,
      "--jwt-leeway",
      "0",
    ]);
    let started: Child | undefined;
    try {
      const token = await key.sign({
        wsevent: { subscribe: ["events"] },
        exp: nowSeconds() + 2,
      });
      const [command, base] = runtimeCommand(join(ROOT, "cli.ts"));
      const child = started = startChild(command, [
        ...base,
        "subscribe",
        `${service.http}/events`,
        "--json",
        "--token",
        token,
      ]);
      let exited = false;
      child.exited.then(() => (exited = true));
      await waitFor(() => exited, 20_000, "subscribe to exit at expiry");
      const { code } = await child.exited;
      assert.equal(code, 1, child.stderr());
      const lastId = (JSON.parse(child.stdout().trim().split("\n").at(-1)!) as {
        id: string;
      }).id;
      assert.match(
        child.stderr(),
        new RegExp(
          `error: Cannot subscribe: the token expired; resume with --last-event-id ${lastId} and a fresh token`,
        ),
      );
    } finally {
      // A child that never exited (the expiry went unnoticed) is killed.
      await started?.stop("SIGKILL");
      await service.stop();
    }
  });
});
