import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseSubscribeArgs, type SubscribeCommand } from "../src/subscribe.ts";
import { UsageError } from "../src/errors.ts";

function command(
  args: readonly string[],
  env: Record<string, string | undefined> = {},
): SubscribeCommand {
  const result = parseSubscribeArgs(args, env);
  assert.notEqual(result, "help");
  if (result === "help") throw new Error("unreachable");
  return result;
}

function rejects(args: readonly string[], ...parts: string[]): void {
  assert.throws(() => parseSubscribeArgs(args), (error: unknown) => {
    assert.ok(error instanceof UsageError, `UsageError for ${args}`);
    for (const part of parts) {
      assert.ok(error.message.includes(part), `${error.message} / ${part}`);
    }
    return true;
  });
}

describe("parseSubscribeArgs()", () => {
  test("parseSubscribeArgs() reads a bare URL with defaults", () => {
    assert.deepEqual(command(["ws://localhost:9999/the-end"]), {
      url: new URL("ws://localhost:9999/the-end"),
      json: false,
      count: null,
      lastEventId: null,
      token: null,
      quiet: false,
    });
  });

  test("parseSubscribeArgs() reads flags after the URL, as users type them", () => {
    const c = command([
      "http://localhost:8080/events",
      "--json",
      "--count",
      "3",
      "-last-event-id",
      "e-4",
      "--token=t",
      "-quiet",
    ]);
    assert.equal(c.url.href, "http://localhost:8080/events");
    assert.equal(c.json, true);
    assert.equal(c.count, 3);
    assert.equal(c.lastEventId, "e-4");
    assert.equal(c.token, "t");
    assert.equal(c.quiet, true);
  });

  test("parseSubscribeArgs() reads flags before the URL in every Go spelling", () => {
    for (
      const flags of [
        ["-count", "2"],
        ["--count", "2"],
        ["-count=2"],
        ["--count=2"],
      ]
    ) {
      assert.equal(command([...flags, "ws://h:1/p"]).count, 2, flags.join(" "));
      assert.equal(command(["ws://h:1/p", ...flags]).count, 2, flags.join(" "));
    }
  });

  test("parseSubscribeArgs() adds ws:// to a URL without a scheme", () => {
    assert.equal(
      command(["localhost:8080/events"]).url.href,
      "ws://localhost:8080/events",
    );
  });

  test("parseSubscribeArgs() accepts ws, wss, http and https", () => {
    for (const scheme of ["ws", "wss", "http", "https"]) {
      assert.equal(
        command([`${scheme}://example.com/s`]).url.protocol,
        `${scheme}:`,
      );
    }
  });

  test("parseSubscribeArgs() takes the token from WSEVENT_SUBSCRIBE_TOKEN unless given", () => {
    const env = { WSEVENT_SUBSCRIBE_TOKEN: "env" };
    assert.equal(command(["ws://h:1/p"], env).token, "env");
    assert.equal(command(["ws://h:1/p", "--token", "flag"], env).token, "flag");
  });

  test("parseSubscribeArgs() answers help to -h and --help", () => {
    for (const flag of ["-h", "--h", "-help", "--help"]) {
      assert.equal(parseSubscribeArgs([flag]), "help");
      assert.equal(parseSubscribeArgs(["ws://h:1/p", flag]), "help");
    }
  });

  test("parseSubscribeArgs() refuses a missing URL", () => {
    rejects([], "Missing", "URL");
    rejects(["--json"], "Missing", "URL");
  });

  test("parseSubscribeArgs() refuses a second positional, naming it", () => {
    rejects(["ws://h:1/a", "ws://h:1/b"], '"ws://h:1/b"');
  });

  test("parseSubscribeArgs() refuses a count that is not a positive integer", () => {
    for (const value of ["0", "abc", "1.5", ""]) {
      rejects(["ws://h:1/p", `--count=${value}`], "count", `"${value}"`);
    }
  });

  test("parseSubscribeArgs() refuses a flag missing its value", () => {
    rejects(["ws://h:1/p", "--count"], "Missing value", "count");
    rejects(["ws://h:1/p", "--token", "--json"], "Missing value", "token");
  });

  test("parseSubscribeArgs() refuses an unknown flag and a bad scheme", () => {
    rejects(["ws://h:1/p", "--nope"], "--nope");
    rejects(["ftp://h/p"], "subscribe URL", "ftp://h/p");
  });
});
