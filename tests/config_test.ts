import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  type Config,
  formatUsage,
  normalizeFlags,
  parseConfig,
  parseEnvConfig,
} from "../src/config.ts";
import { UsageError } from "../src/errors.ts";
import { assertUsageError, serveConfig } from "./_config.ts";

const serve = serveConfig;

/** Asserts a UsageError (name and code too) whose message contains every part. */
function rejects(args: readonly string[], ...parts: string[]): void {
  const error = assertUsageError(args, {}, ...parts);
  assert.equal(error.name, "UsageError");
  assert.equal(error.code, "usage");
}

/** The four spellings Go's flag package accepts for a flag with a value. */
function spellings(name: string, value: string): string[][] {
  return [
    [`-${name}`, value],
    [`--${name}`, value],
    [`-${name}=${value}`],
    [`--${name}=${value}`],
  ];
}

describe("parseConfig() defaults", () => {
  test("parseConfig() defaults match the Go original", () => {
    const config = serve([]);
    assert.deepEqual(config.serveAddress, {
      hostname: "localhost",
      host: "localhost",
      port: 8080,
    });
    assert.equal(config.serveAddressText, "localhost:8080");
    assert.deepEqual(config.servePaths, ["events"]);
    assert.equal(config.consumeUrl, null);
    assert.equal(config.produce, true);
    assert.equal(config.intervalMs, 100);
    assert.equal(config.bufferSize, 1000);
  });

  test("parseConfig() defaults of the new flags", () => {
    const config = serve([]);
    assert.equal(config.bufferBytes, 1048576);
    assert.equal(config.maxBodyBytes, 1048576);
    assert.equal(config.maxSubscribers, 10000);
    assert.equal(config.maxQueueBytes, 4194304);
    assert.equal(config.slowPolicy, "close");
    assert.equal(config.heartbeatMs, 15000);
    assert.equal(config.coalesceMs, 1);
    assert.equal(config.publishToken, null);
    assert.equal(config.subscribeToken, null);
    assert.equal(config.upstreamToken, null);
    assert.deepEqual(config.allowOrigins, []);
    assert.equal(config.forwardPublish, false);
    assert.equal(config.logLevel, "info");
    assert.equal(config.logJson, false);
  });

  test("parseConfig() reads the default consume-path as consume", () => {
    const config = serve(["-consume-address", "localhost:8080"]);
    assert.equal(config.consumeUrl?.href, "ws://localhost:8080/consume");
  });
});

describe("parseConfig() flags with values, in the four Go spellings", () => {
  const cases: [string, string, (c: Config) => unknown, unknown][] = [
    ["serve-address", "127.0.0.1:9090", (c) => c.serveAddress, {
      hostname: "127.0.0.1",
      host: "127.0.0.1",
      port: 9090,
    }],
    ["serve-path", "proxy-events", (c) => c.servePaths, ["proxy-events"]],
    [
      "consume-address",
      "localhost:8080",
      (c) => c.consumeUrl?.href,
      "ws://localhost:8080/consume",
    ],
    [
      "consume-url",
      "wss://example.com/events",
      (c) => c.consumeUrl?.href,
      "wss://example.com/events",
    ],
    ["interval", "250", (c) => c.intervalMs, 250],
    ["buffer", "50", (c) => c.bufferSize, 50],
    ["buffer-bytes", "4096", (c) => c.bufferBytes, 4096],
    ["max-body", "2048", (c) => c.maxBodyBytes, 2048],
    ["max-subscribers", "7", (c) => c.maxSubscribers, 7],
    ["max-queue", "65536", (c) => c.maxQueueBytes, 65536],
    ["slow-policy", "skip", (c) => c.slowPolicy, "skip"],
    ["heartbeat", "500", (c) => c.heartbeatMs, 500],
    ["coalesce", "0", (c) => c.coalesceMs, 0],
    ["coalesce", "20", (c) => c.coalesceMs, 20],
    ["publish-token", "pub", (c) => c.publishToken, "pub"],
    ["subscribe-token", "sub", (c) => c.subscribeToken, "sub"],
    ["upstream-token", "up", (c) => c.upstreamToken, "up"],
    ["allow-origin", "https://example.com", (c) => c.allowOrigins, [
      "https://example.com",
    ]],
  ];
  for (const [name, value, read, expected] of cases) {
    test(`parseConfig() reads -${name} in every Go spelling`, () => {
      for (const args of spellings(name, value)) {
        assert.deepEqual(read(serve(args)), expected, args.join(" "));
      }
    });
  }

  test("parseConfig() reads -consume-path with -consume-address", () => {
    for (const args of spellings("consume-path", "events")) {
      const config = serve(["--consume-address", "localhost:8080", ...args]);
      assert.equal(config.consumeUrl?.href, "ws://localhost:8080/events");
    }
  });

  test("parseConfig() keeps the serve address as typed for demo messages", () => {
    assert.equal(serve(["-serve-address", ":8080"]).serveAddressText, ":8080");
  });
});

describe("parseConfig() boolean flags", () => {
  const cases: [string, (c: Config) => unknown, unknown, unknown][] = [
    ["no-produce", (c) => c.produce, false, true],
    ["forward-publish", (c) => c.forwardPublish, true, false],
    ["verbose", (c) => c.logLevel, "verbose", "info"],
    ["quiet", (c) => c.logLevel, "quiet", "info"],
    ["log-json", (c) => c.logJson, true, false],
  ];
  for (const [name, read, on, off] of cases) {
    test(`parseConfig() reads -${name}, --${name}, =true and =false`, () => {
      assert.deepEqual(read(serve([`-${name}`])), on);
      assert.deepEqual(read(serve([`--${name}`])), on);
      assert.deepEqual(read(serve([`-${name}=true`])), on);
      assert.deepEqual(read(serve([`--${name}=true`])), on);
      assert.deepEqual(read(serve([`-${name}=false`])), off);
      assert.deepEqual(read(serve([`--${name}=false`])), off);
    });
  }

  test("parseConfig() lets -quiet win over -verbose", () => {
    assert.equal(serve(["-verbose", "-quiet"]).logLevel, "quiet");
  });

  test("parseConfig() rejects a boolean flag with a value other than true or false", () => {
    rejects(["-no-produce=yes"], "no-produce", '"yes"');
  });

  test("parseConfig() treats the word after a boolean flag as a positional, like Go", () => {
    rejects(["-no-produce", "false"], '"false"');
  });

  test("parseConfig() reads the original relay command line", () => {
    const config = serve([
      "--consume-address",
      "localhost:8080",
      "--consume-path",
      "events",
      "--serve-address",
      "localhost:9090",
      "--serve-path",
      "proxy-events",
      "--no-produce",
    ]);
    assert.equal(config.consumeUrl?.href, "ws://localhost:8080/events");
    assert.equal(config.serveAddress.port, 9090);
    assert.deepEqual(config.servePaths, ["proxy-events"]);
    assert.equal(config.produce, false);
  });
});

describe("parseConfig() addresses", () => {
  test("parseConfig() reads :8080 as every IPv4 interface", () => {
    assert.deepEqual(serve(["-serve-address", ":8080"]).serveAddress, {
      hostname: "0.0.0.0",
      host: "0.0.0.0",
      port: 8080,
    });
  });

  test("parseConfig() reads [::1]:8080 as IPv6 with brackets in host only", () => {
    assert.deepEqual(serve(["-serve-address", "[::1]:8080"]).serveAddress, {
      hostname: "::1",
      host: "[::1]",
      port: 8080,
    });
  });

  test("parseConfig() accepts port 0 (pick a free port)", () => {
    assert.equal(serve(["-serve-address", "127.0.0.1:0"]).serveAddress.port, 0);
  });

  test("parseConfig() brackets an IPv6 consume address in the URL", () => {
    const config = serve(["-consume-address", "[::1]:8080"]);
    assert.equal(config.consumeUrl?.href, "ws://[::1]:8080/consume");
  });

  test("parseConfig() reads --consume-url with ws, wss, http and https", () => {
    for (
      const url of [
        "ws://localhost:8080/events",
        "wss://example.com/events",
        "http://localhost:8080/events",
        "https://example.com/a/b?format=json",
      ]
    ) {
      assert.equal(serve(["--consume-url", url]).consumeUrl?.href, url);
    }
  });

  test("parseConfig() prefers --consume-url over --consume-address", () => {
    const config = serve([
      "--consume-address",
      "localhost:1",
      "--consume-url",
      "http://example.com/s",
    ]);
    assert.equal(config.consumeUrl?.href, "http://example.com/s");
  });
});

describe("parseConfig() paths", () => {
  test("parseConfig() collects a repeated --serve-path in order, replacing the default", () => {
    const config = serve([
      "--serve-path",
      "a",
      "-serve-path=b/c",
      "--serve-path",
      "d",
    ]);
    assert.deepEqual(config.servePaths, ["a", "b/c", "d"]);
  });

  test("parseConfig() strips a leading slash and drops duplicate paths", () => {
    const config = serve(["--serve-path", "/a", "--serve-path", "a"]);
    assert.deepEqual(config.servePaths, ["a"]);
  });

  test("parseConfig() refuses the reserved paths", () => {
    for (const path of ["healthz", "/readyz", "metrics"]) {
      rejects(["--serve-path", path], path.replace("/", ""), "reserved");
    }
  });

  test("parseConfig() refuses a path that is not a URL path", () => {
    rejects(["--serve-path", "a b"], "serve-path", '"a b"');
    rejects(["--serve-path", "a/"], "serve-path", '"a/"');
    rejects(["--serve-path", "/"], "serve-path", '"/"');
  });
});

describe("parseConfig() tokens and origins", () => {
  test("parseConfig() reads tokens from the environment", () => {
    const config = serve([], {
      WSEVENT_PUBLISH_TOKEN: "p",
      WSEVENT_SUBSCRIBE_TOKEN: "s",
      WSEVENT_UPSTREAM_TOKEN: "u",
    });
    assert.equal(config.publishToken, "p");
    assert.equal(config.subscribeToken, "s");
    assert.equal(config.upstreamToken, "u");
  });

  test("parseConfig() prefers a token flag over the environment", () => {
    const config = serve(["--publish-token", "flag"], {
      WSEVENT_PUBLISH_TOKEN: "env",
    });
    assert.equal(config.publishToken, "flag");
  });

  test("parseConfig() treats an empty token as none", () => {
    const config = serve([], { WSEVENT_PUBLISH_TOKEN: "" });
    assert.equal(config.publishToken, null);
  });

  test("parseConfig() normalizes repeated --allow-origin to origins", () => {
    const config = serve([
      "--allow-origin",
      "https://example.com/",
      "--allow-origin=http://localhost:3000/page",
    ]);
    assert.deepEqual(config.allowOrigins, [
      "https://example.com",
      "http://localhost:3000",
    ]);
  });

  test("parseConfig() refuses an origin that is not a URL", () => {
    rejects(["--allow-origin", "example.com"], "allow-origin", "example.com");
  });
});

describe("parseConfig() help and version", () => {
  test("parseConfig() answers help to -h, --h, -help and --help", () => {
    for (const flag of ["-h", "--h", "-help", "--help"]) {
      assert.deepEqual(parseConfig([flag]), { kind: "help" }, flag);
    }
  });

  test("parseConfig() answers help even with other flags", () => {
    assert.deepEqual(parseConfig(["-serve-address", ":1", "-h"]), {
      kind: "help",
    });
  });

  test("parseConfig() answers version to -version and --version", () => {
    assert.deepEqual(parseConfig(["--version"]), { kind: "version" });
    assert.deepEqual(parseConfig(["-version"]), { kind: "version" });
  });

  test("formatUsage() lists every flag once with its default", () => {
    const usage = formatUsage("wsevent");
    assert.ok(usage.startsWith("Usage: wsevent [flags]\n"));
    assert.ok(usage.includes("-h, -help"));
    for (
      const flag of [
        "serve-address",
        "serve-path",
        "consume-address",
        "consume-path",
        "consume-url",
        "no-produce",
        "interval",
        "buffer",
        "buffer-bytes",
        "max-body",
        "max-subscribers",
        "max-queue",
        "slow-policy",
        "heartbeat",
        "publish-token",
        "subscribe-token",
        "upstream-token",
        "allow-origin",
        "forward-publish",
        "verbose",
        "quiet",
        "log-json",
        "version",
      ]
    ) {
      assert.match(usage, new RegExp(`\\n  -${flag}[ \\n]`), flag);
    }
    assert.ok(usage.includes('(default "localhost:8080")'));
    assert.ok(usage.includes('(default "events")'));
    assert.ok(usage.includes('(default "consume")'));
    assert.ok(usage.includes("WSEVENT_PUBLISH_TOKEN"));
  });
});

describe("parseConfig() errors", () => {
  test("parseConfig() refuses an unknown flag, naming it", () => {
    rejects(["--nope"], "--nope");
    rejects(["-nope=1"], "-nope=1");
    rejects(["-serve-adress", ":1"], "-serve-adress");
  });

  test("parseConfig() refuses a flag missing its value at the end", () => {
    rejects(["-serve-address"], "Missing value", "serve-address");
    rejects(["--interval"], "Missing value", "interval");
  });

  test("parseConfig() refuses a flag whose value is another flag", () => {
    rejects(
      ["-serve-address", "-no-produce"],
      "Missing value",
      "serve-address",
    );
    rejects(["--serve-path", "--verbose"], "Missing value", "serve-path");
  });

  test("parseConfig() refuses a bad port, naming the flag and value", () => {
    for (
      const address of [
        ":abc",
        ":70000",
        ":-1",
        "localhost:65536",
        "localhost:",
      ]
    ) {
      rejects(["-serve-address", address], "serve-address", `"${address}"`);
    }
    rejects(["-serve-address=-1"], "serve-address", '"-1"');
    rejects(
      ["--consume-address", "localhost:99999"],
      "consume-address",
      "99999",
    );
  });

  test("parseConfig() refuses a bad host", () => {
    for (
      const address of [
        "bad_host!:80",
        "localhost",
        "[zz]:80",
        "[127.0.0.1]:80",
        "::1:8080",
        "-x:80",
      ]
    ) {
      rejects([`-serve-address=${address}`], "serve-address", `"${address}"`);
    }
  });

  test("parseConfig() refuses a bad interval, naming the value", () => {
    for (const value of ["abc", "0", "1.5", "", "1e3", "86400001"]) {
      rejects([`--interval=${value}`], "interval", `"${value}"`);
    }
  });

  test("parseConfig() refuses bad numbers for the limits", () => {
    rejects(["--buffer", "x"], "buffer", '"x"');
    rejects(["--buffer-bytes", "-5"], "buffer-bytes");
    rejects(["--max-body", "0"], "max-body", '"0"');
    rejects(["--max-subscribers", "0"], "max-subscribers", '"0"');
    rejects(["--max-queue", "1023"], "max-queue", '"1023"');
    rejects(["--heartbeat", "99"], "heartbeat", '"99"');
    rejects(["--coalesce", "1001"], "coalesce", '"1001"');
    rejects(["--coalesce", "0.5"], "coalesce", '"0.5"');
    rejects(["--coalesce", "-1"], "coalesce");
  });

  test("parseConfig() refuses an unknown slow policy", () => {
    rejects(["--slow-policy", "drop"], "slow-policy", '"drop"');
  });

  test("parseConfig() refuses a consume URL with another scheme", () => {
    rejects(
      ["--consume-url", "ftp://example.com/x"],
      "consume-url",
      "ftp://example.com/x",
    );
    rejects(["--consume-url", "not a url"], "consume-url", "not a url");
  });

  test("parseConfig() refuses a positional argument, naming it", () => {
    rejects(["extra"], '"extra"');
    rejects(["-no-produce", "extra"], '"extra"');
    rejects(["--", "-serve-address"], '"-serve-address"');
  });
});

describe("normalizeFlags()", () => {
  test("normalizeFlags() rewrites Go spellings to --name=value", () => {
    const flags = {
      a: { type: "string" },
      b: { type: "boolean" },
    } as const;
    assert.deepEqual(
      normalizeFlags(
        ["-a", "1", "--a=2", "-b", "--b=false", "rest", "-a"],
        flags,
      ),
      ["--a=1", "--a=2", "--b", "rest", "-a"],
    );
  });

  test("normalizeFlags() keeps a lone dash as a value", () => {
    assert.deepEqual(
      normalizeFlags(["-a", "-"], { a: { type: "string" } }),
      ["--a=-"],
    );
  });
});

describe("parseEnvConfig()", () => {
  test("parseEnvConfig() gives the defaults for an empty environment, labelled edge", () => {
    const config = parseEnvConfig({});
    const defaults = serve([]);
    assert.deepEqual({ ...config, serveAddressText: "" }, {
      ...defaults,
      serveAddressText: "",
    });
    assert.equal(config.serveAddressText, "edge");
  });

  test("parseEnvConfig() reads WSEVENT_<FLAG> variables", () => {
    const config = parseEnvConfig({
      WSEVENT_SERVE_ADDRESS: ":9090",
      WSEVENT_BUFFER: "50",
      WSEVENT_CONSUME_URL: "wss://origin.example/events",
      WSEVENT_SLOW_POLICY: "skip",
      WSEVENT_PUBLISH_TOKEN: "p",
      WSEVENT_MAX_BODY: "",
    });
    assert.equal(config.serveAddress.port, 9090);
    assert.equal(config.serveAddressText, ":9090");
    assert.equal(config.bufferSize, 50);
    assert.equal(config.consumeUrl?.href, "wss://origin.example/events");
    assert.equal(config.slowPolicy, "skip");
    assert.equal(config.publishToken, "p");
    assert.equal(config.maxBodyBytes, 1048576);
  });

  test("parseEnvConfig() splits list variables on commas", () => {
    const config = parseEnvConfig({
      WSEVENT_SERVE_PATH: "events, orders",
      WSEVENT_ALLOW_ORIGIN: "https://a.example,https://b.example",
    });
    assert.deepEqual(config.servePaths, ["events", "orders"]);
    assert.deepEqual(config.allowOrigins, [
      "https://a.example",
      "https://b.example",
    ]);
  });

  test("parseEnvConfig() reads booleans as 1, true, yes or on", () => {
    for (const value of ["1", "true", "TRUE", "yes", "on"]) {
      assert.equal(
        parseEnvConfig({ WSEVENT_NO_PRODUCE: value }).produce,
        false,
      );
    }
    for (const value of ["0", "false", "no", "off"]) {
      assert.equal(parseEnvConfig({ WSEVENT_NO_PRODUCE: value }).produce, true);
    }
  });

  test("parseEnvConfig() ignores help and version variables", () => {
    const config = parseEnvConfig({ WSEVENT_HELP: "1", WSEVENT_VERSION: "1" });
    assert.deepEqual(config.servePaths, ["events"]);
  });

  test("parseEnvConfig() throws UsageError naming the flag of a bad value", () => {
    assert.throws(
      () => parseEnvConfig({ WSEVENT_INTERVAL: "soon" }),
      (error: unknown) =>
        error instanceof UsageError && /interval/.test(error.message) &&
        error.message.includes('"soon"'),
    );
    assert.throws(
      () => parseEnvConfig({ WSEVENT_SERVE_PATH: "metrics" }),
      UsageError,
    );
  });
});
