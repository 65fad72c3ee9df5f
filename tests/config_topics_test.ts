/**
 * parseConfig() for issue 15's flags: patterns beside plain paths,
 * -max-topics, -topic-ttl, a relay of an upstream pattern, -tls-cert and
 * -tls-key together, -jwt-key and -jwt-leeway.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { type Config, parseConfig } from "../src/config.ts";
import { UsageError } from "../src/errors.ts";

function config(args: string[]): Config {
  const command = parseConfig(args);
  assert.equal(command.kind, "serve");
  return (command as { config: Config }).config;
}

function refused(args: string[], message: RegExp): void {
  assert.throws(() => parseConfig(args), (error) => {
    assert.ok(error instanceof UsageError, String(error));
    assert.match(error.message, message);
    return true;
  });
}

describe("parseConfig() topic patterns", () => {
  test("splits patterns from plain paths; defaults 1000 topics and 5 minutes", () => {
    const c = config([
      "--serve-path",
      "events",
      "--serve-path",
      "/rooms/*",
      "--serve-path",
      "*",
    ]);
    assert.deepEqual(c.servePaths, ["events"]);
    assert.deepEqual(c.servePatterns, ["rooms/*", "*"]);
    assert.equal(c.maxTopics, 1000);
    assert.equal(c.topicTtlMs, 300_000);
  });

  test("reads -max-topics and -topic-ttl in seconds, minutes or hours", () => {
    const c = config(["--max-topics", "5", "--topic-ttl", "90s"]);
    assert.equal(c.maxTopics, 5);
    assert.equal(c.topicTtlMs, 90_000);
    assert.equal(config(["--topic-ttl", "2h"]).topicTtlMs, 7_200_000);
    assert.equal(config(["--topic-ttl", "0"]).topicTtlMs, 0);
  });

  test("refuses a misplaced *, a bad TTL or limit", () => {
    refused(
      ["--serve-path", "rooms/*/chat"],
      /"\*" may only be the last segment/,
    );
    refused(["--serve-path", "rooms*"], /"\*" may only be the last segment/);
    refused(["--topic-ttl", "5 minutes"], /Cannot parse flag -topic-ttl/);
    refused(["--topic-ttl", "9999h"], /at most 168h/);
    refused(
      ["--max-topics", "-1"],
      /Missing value for flag -max-topics|Cannot parse flag -max-topics/,
    );
    refused(["--max-topics", "many"], /Cannot parse flag -max-topics/);
  });

  test("a relay of an upstream pattern needs a served pattern, and the reverse", () => {
    const c = config([
      "--serve-path",
      "mirror/*",
      "--consume-url",
      "ws://up:8080/rooms/*",
    ]);
    assert.equal(c.consumeUrl?.pathname, "/rooms/*");
    refused(
      ["--serve-path", "events", "--consume-url", "ws://up:8080/rooms/*"],
      /serve a pattern too/,
    );
    refused(
      ["--serve-path", "mirror/*", "--consume-url", "ws://up:8080/events"],
      /give a plain -serve-path/,
    );
  });
});

describe("parseConfig() TLS and JWT flags", () => {
  test("-tls-cert and -tls-key go together", () => {
    const c = config(["--tls-cert", "c.pem", "--tls-key", "k.pem"]);
    assert.equal(c.tlsCert, "c.pem");
    assert.equal(c.tlsKey, "k.pem");
    assert.equal(config([]).tlsCert, null);
    refused(["--tls-cert", "c.pem"], /Missing value for flag -tls-key/);
    refused(["--tls-key", "k.pem"], /Missing value for flag -tls-cert/);
  });

  test("-jwt-key from the flag or WSEVENT_JWT_KEY; -jwt-leeway in seconds", () => {
    assert.equal(config(["--jwt-key", "@/k.pem"]).jwtKey, "@/k.pem");
    const command = parseConfig([], { WSEVENT_JWT_KEY: "from-env" });
    assert.equal(command.kind === "serve" && command.config.jwtKey, "from-env");
    assert.equal(config([]).jwtLeewaySeconds, 5);
    assert.equal(config(["--jwt-leeway", "0"]).jwtLeewaySeconds, 0);
    refused(["--jwt-leeway", "1h"], /Cannot parse flag -jwt-leeway/);
  });
});
