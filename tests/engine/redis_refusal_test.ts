/**
 * The Redis engine when Redis refuses what its URL asks for: a wrong
 * password or user, no password where one is required, a database beyond
 * `databases`, an ACL user without the keys it needs. Against a real
 * redis-server of its own (ACL users and `requirepass` set by the test).
 */

import assert from "node:assert/strict";
import { after, before, describe, test } from "node:test";
import { createRedisEngine } from "../../src/engine/redis.ts";
import { type Engine, EngineUnavailableError } from "../../src/engine/types.ts";
import { createHub, type Topic } from "../../src/hub.ts";
import { waitFor } from "../integration/_helpers.ts";
import { type RedisServer, startRedis } from "../integration/_redis.ts";

interface Watched {
  engine: Engine;
  topic: Topic;
  errors: string[];
  warnings: string[];
}

let redis: RedisServer;
const engines: Engine[] = [];
let paths = 0;

function watched(url: string): Watched {
  const errors: string[] = [];
  const warnings: string[] = [];
  const engine = createRedisEngine({
    url: new URL(url),
    log: {
      debug() {},
      info() {},
      warn: (message: string) => void warnings.push(message),
      error: (message: string) => void errors.push(message),
    },
  });
  engines.push(engine);
  const topic = createHub().addTopic(`r${paths++}`, "unused");
  engine.open(topic);
  return { engine, topic, errors, warnings };
}

async function connectionsReceived(): Promise<number> {
  const info = await redis.cli("INFO", "stats");
  return Number(/total_connections_received:(\d+)/.exec(info)?.[1]);
}

/** What the engine needs, as the README's ACL line says. */
const NEEDED = "~wsevent:* &wsevent:* +@read +@write +@scripting +@pubsub " +
  "+@connection";

describe("createRedisEngine() refused by Redis", { timeout: 60_000 }, () => {
  before(async () => {
    redis = await startRedis();
    await redis.cli(
      "ACL",
      "SETUSER",
      "app",
      "on",
      ">right",
      ...NEEDED.split(" "),
    );
    await redis.cli(
      "ACL",
      "SETUSER",
      "narrow",
      "on",
      ">narrowpw",
      "~other:*",
      "&*",
      "+@all",
    );
  });
  after(async () => {
    for (const engine of engines) await engine.close();
    await redis.stop();
  });

  test("createRedisEngine() names a wrong password, a database beyond `databases` and an ACL without the keys in one error line each (URL redacted, what to change), stays unready with the problem in its status, tries again every few seconds rather than at once, and connects once Redis is fixed", async () => {
    const before = await connectionsReceived();
    const started = Date.now();
    const port = redis.port;
    const wrong = watched(`redis://app:wr0ngpw@127.0.0.1:${port}`);
    const db = watched(`redis://127.0.0.1:${port}/99`);
    const narrow = watched(`redis://narrow:narrowpw@127.0.0.1:${port}`);
    const all = [wrong, db, narrow];
    await waitFor(
      () => all.every((w) => w.errors.length > 0),
      15_000,
      "an error line from each",
    );
    assert.match(
      wrong.errors[0],
      new RegExp(
        `^engine: Redis refuses redis://\\*\\*\\*:\\*\\*\\*@127\\.0\\.0\\.1:${port}: WRONGPASS .*check the user and password in -engine`,
      ),
    );
    assert.match(
      db.errors[0],
      new RegExp(
        `^engine: Redis refuses redis://127\\.0\\.0\\.1:${port}/99: ERR DB index is out of range .*below Redis's \`databases\``,
      ),
    );
    assert.match(
      narrow.errors[0],
      /refuses redis:\/\/\*\*\*:\*\*\*@127\.0\.0\.1:\d+: NOPERM .*needs the keys and channels ~wsevent:\* &wsevent:\*/,
    );
    for (const w of all) {
      assert.ok(!w.errors.join().includes("wr0ngpw"), "password hidden");
      assert.ok(!w.errors.join().includes("narrowpw"), "password hidden");
      assert.equal(w.engine.status!.connected, false);
      assert.match(w.engine.status!.problem ?? "", /^Redis refuses redis:/);
      await assert.rejects(
        Promise.resolve(w.engine.append(w.topic, "x")),
        EngineUnavailableError,
      );
    }
    // Not spinning: a few seconds on, each of the 4 refused connections
    // (2 per engine) tried again about every 2.5-5 s, not with the
    // backoff for a Redis that is down (50 ms, 100 ms, ... 2 s), and each
    // engine logged its error once.
    await new Promise((r) => setTimeout(r, 4000));
    const elapsed = Date.now() - started;
    const opened = (await connectionsReceived()) - before;
    const bound = 4 * (2 + elapsed / 2500) + 2;
    assert.ok(opened <= bound, `${opened} connections in ${elapsed} ms`);
    for (const w of all) assert.equal(w.errors.length, 1, w.errors.join("\n"));
    assert.deepEqual(wrong.warnings, [], "an error, not a warning");

    // Fixed on Redis's side: the password that the URL has, the keys the
    // engine needs (exactly the README's ACL line).
    await redis.cli("ACL", "SETUSER", "app", ">wr0ngpw");
    await redis.cli(
      "ACL",
      "SETUSER",
      "narrow",
      "resetkeys",
      "resetchannels",
      "nocommands",
      ...NEEDED.split(" "),
    );
    for (const w of [wrong, narrow]) {
      await waitFor(() => w.engine.status!.connected, 15_000, "the fix");
      assert.equal(w.engine.status!.problem, undefined);
      assert.match(await w.engine.append(w.topic, "ok"), /^[0-9a-z]+-0$/);
    }
  });

  test("createRedisEngine() without the password Redis requires names NOAUTH and says to give one", async () => {
    await redis.cli("CONFIG", "SET", "requirepass", "s3cret");
    try {
      const none = watched(`redis://127.0.0.1:${redis.port}`);
      await waitFor(() => none.errors.length > 0, 15_000, "an error line");
      assert.match(
        none.errors[0],
        /refuses redis:\/\/127\.0\.0\.1:\d+: NOAUTH .*give the user and password Redis expects/,
      );
      assert.equal(none.engine.status!.connected, false);
    } finally {
      await redis.cli(
        "-a",
        "s3cret",
        "--no-auth-warning",
        "CONFIG",
        "SET",
        "requirepass",
        "",
      );
    }
  });
});
