import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { parseConfig, parseEnvConfig } from "../../src/config.ts";
import {
  parseEngineUrl,
  parseHistoryTtl,
  redactEngineUrl,
} from "../../src/engine/config.ts";
import { UsageError } from "../../src/errors.ts";

function serve(args: string[], env: Record<string, string> = {}) {
  const command = parseConfig(["--no-produce", ...args], env);
  assert.equal(command.kind, "serve");
  return command.kind === "serve" ? command.config : undefined!;
}

function assertUsage(run: () => unknown, pattern: RegExp): UsageError {
  let caught: unknown;
  try {
    run();
  } catch (error) {
    caught = error;
  }
  assert.ok(caught instanceof UsageError, `a UsageError, got ${caught}`);
  assert.match(caught.message, pattern);
  return caught;
}

describe("engine flags", () => {
  test("parseEngineUrl() reads memory, redis:// and rediss:// URLs with user, password and db", () => {
    assert.equal(parseEngineUrl("memory"), null);
    const url = parseEngineUrl("redis://app:s%40cret@db.example:6380/2")!;
    assert.equal(url.hostname, "db.example");
    assert.equal(url.port, "6380");
    assert.equal(url.pathname, "/2");
    assert.equal(decodeURIComponent(url.password), "s@cret");
    assert.equal(parseEngineUrl("rediss://cache.example")!.protocol, "rediss:");
    assert.equal(parseEngineUrl("redis://[::1]:6379/")!.hostname, "[::1]");
  });

  test("parseEngineUrl() refuses anything else with a usage error that never shows the password", () => {
    for (
      const [text, pattern] of [
        ["http://u:topsecret@h:6379", /expected memory, redis:\/\//],
        ["redis://u:topsecret@:6379", /expected memory|no host/],
        ["redis://u:topsecret@h:6379/db1", /database number/],
        ["redis://u:topsecret@h:6379/0?tls=1", /no query/],
        ["redis://u:topsecret@h:99999", /expected memory/],
        ["memcached", /expected memory/],
        ["", /expected memory/],
      ] as const
    ) {
      const error = assertUsage(() => parseEngineUrl(text), pattern);
      assert.doesNotMatch(error.message, /topsecret/, text);
      assert.match(error.message, /^Cannot parse flag -engine/);
    }
    assert.equal(
      redactEngineUrl("rediss://user:p%3Ass@host:1/0"),
      "rediss://user:***@host:1/0",
    );
    assert.equal(redactEngineUrl("redis://host:1"), "redis://host:1");
  });

  test("parseHistoryTtl() reads seconds or a number with s, m, h or d", () => {
    assert.equal(parseHistoryTtl("0"), 0);
    assert.equal(parseHistoryTtl("90"), 90);
    assert.equal(parseHistoryTtl("90s"), 90);
    assert.equal(parseHistoryTtl("10m"), 600);
    assert.equal(parseHistoryTtl("2h"), 7200);
    assert.equal(parseHistoryTtl("7d"), 604800);
    for (const bad of ["", "-1", "1y", "1.5h", "10 m", "366d"]) {
      assertUsage(() => parseHistoryTtl(bad), /-history-ttl/);
    }
  });

  test("parseConfig() takes the engine from -engine or WSEVENT_ENGINE, memory by default", () => {
    assert.deepEqual(serve([]).engine, { kind: "memory" });
    const flag = serve([
      "--engine",
      "redis://127.0.0.1:6379/1",
      "--engine-prefix",
      "app:",
      "--history-ttl",
      "1h",
    ]).engine;
    assert.equal(flag.kind, "redis");
    if (flag.kind === "redis") {
      assert.equal(flag.url.href, "redis://127.0.0.1:6379/1");
      assert.equal(flag.prefix, "app:");
      assert.equal(flag.historyTtlSeconds, 3600);
    }
    const env = serve([], { WSEVENT_ENGINE: "redis://10.0.0.1:6379" }).engine;
    assert.equal(env.kind === "redis" && env.url.hostname, "10.0.0.1");
    const edge = parseEnvConfig({
      WSEVENT_ENGINE: "rediss://cache:6380",
      WSEVENT_ENGINE_PREFIX: "edge:",
      WSEVENT_HISTORY_TTL: "30m",
    }).engine;
    assert.equal(edge.kind === "redis" && edge.prefix, "edge:");
    assert.equal(edge.kind === "redis" && edge.historyTtlSeconds, 1800);
  });

  test("parseConfig() reads -engine-timeout (milliseconds, 5000 by default) into the Redis engine's configuration", () => {
    const redis = ["--engine", "redis://127.0.0.1:6379"];
    const byDefault = serve(redis).engine;
    assert.equal(
      byDefault.kind === "redis" && byDefault.commandTimeoutMs,
      5000,
    );
    const set = serve([...redis, "--engine-timeout", "750"]).engine;
    assert.equal(set.kind === "redis" && set.commandTimeoutMs, 750);
    const edge = parseEnvConfig({
      WSEVENT_ENGINE: "redis://cache:6379",
      WSEVENT_ENGINE_TIMEOUT: "2000",
    }).engine;
    assert.equal(edge.kind === "redis" && edge.commandTimeoutMs, 2000);
    for (const bad of ["0", "99", "600001", "1s", "1e3", " 5"]) {
      assertUsage(
        () => serve([...redis, "--engine-timeout", bad]),
        /^Cannot parse flag -engine-timeout: expected an integer from 100 to 600000, received "/,
      );
    }
    assertUsage(
      () => serve([...redis, "--engine-timeout"]),
      /^Missing value for flag -engine-timeout/,
    );
    // Checked with the memory engine too, where it does nothing.
    assertUsage(() => serve(["--engine-timeout", "abc"]), /-engine-timeout/);
    assert.deepEqual(serve(["--engine-timeout", "100"]).engine, {
      kind: "memory",
    });
  });

  test("parseConfig() refuses an engine for a relay, a history TTL without Redis and a bad prefix", () => {
    assertUsage(
      () =>
        serve([
          "--engine",
          "redis://h:6379",
          "--consume-url",
          "ws://127.0.0.1:1/events",
        ]),
      /Cannot use -engine with -consume-url/,
    );
    assertUsage(() => serve(["--history-ttl", "10m"]), /memory engine/);
    assertUsage(
      () => serve(["--engine", "redis://h:6379", "--engine-prefix", "a{b}"]),
      /-engine-prefix/,
    );
  });
});
