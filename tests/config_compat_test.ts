import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatUsage, parseConfig, parseEnvConfig } from "../src/config.ts";
import { splitEndpoint } from "../src/config_compat.ts";
import {
  assertUsageError as rejects,
  serveConfig as serve,
} from "./_config.ts";

describe("-serve and -consume endpoints (the original's latest flags)", () => {
  test("-serve splits address and path at the first / in every Go spelling", () => {
    for (
      const args of [
        ["-serve", "localhost:9090/proxy-events"],
        ["--serve", "localhost:9090/proxy-events"],
        ["-serve=localhost:9090/proxy-events"],
        ["--serve=localhost:9090/proxy-events"],
      ]
    ) {
      const config = serve(args);
      assert.equal(config.serveAddress.hostname, "localhost", `${args}`);
      assert.equal(config.serveAddress.port, 9090);
      assert.equal(config.serveAddressText, "localhost:9090");
      assert.deepEqual(config.servePaths, ["proxy-events"]);
    }
  });

  test("-serve keeps later slashes in the path and accepts [::1] and :port", () => {
    assert.deepEqual(serve(["-serve", ":8080/a/b"]).servePaths, ["a/b"]);
    const v6 = serve(["-serve", "[::1]:9090/x"]);
    assert.equal(v6.serveAddress.hostname, "::1");
    assert.deepEqual(v6.servePaths, ["x"]);
  });

  test("-serve without a / sets the address only", () => {
    const config = serve(["-serve", "127.0.0.1:7000"]);
    assert.equal(config.serveAddress.port, 7000);
    assert.deepEqual(config.servePaths, ["events"]);
  });

  test("-consume sets the upstream's address and path", () => {
    const config = serve(["-consume", "localhost:8080/events", "-no-produce"]);
    assert.equal(config.consumeUrl?.href, "ws://localhost:8080/events");
    assert.equal(config.produce, false);
  });

  test("the original relay command line with endpoints", () => {
    const config = serve([
      "-consume",
      "localhost:8080/events",
      "-serve",
      "localhost:9090/proxy-events",
      "-no-produce",
    ]);
    assert.equal(config.consumeUrl?.href, "ws://localhost:8080/events");
    assert.equal(config.serveAddress.port, 9090);
    assert.deepEqual(config.servePaths, ["proxy-events"]);
  });

  test("a specific flag wins over its part of an endpoint flag", () => {
    const config = serve([
      "-serve",
      "localhost:9090/proxy-events",
      "-serve-path",
      "other",
    ]);
    assert.equal(config.serveAddress.port, 9090);
    assert.deepEqual(config.servePaths, ["other"]);
    const upstream = serve([
      "-consume-address",
      "127.0.0.1:1",
      "-consume",
      "localhost:8080/events",
    ]);
    assert.equal(upstream.consumeUrl?.href, "ws://127.0.0.1:1/events");
  });

  test("bad endpoints give a clear error naming the flag", () => {
    rejects(["-serve", "localhost/events"], {}, "flag -serve", "host:port");
    rejects(["-serve", "localhost:99999/x"], {}, "flag -serve", "port");
    rejects(["-serve", "localhost:9090/"], {}, "flag -serve", "path after");
    rejects(["-serve", ""], {}, "flag -serve");
    rejects(["-consume", "nohost"], {}, "flag -consume", '"nohost"');
    rejects(["-serve"], {}, "Missing value for flag -serve");
    rejects(["-serve", ":8080/a b"], {}, "flag -serve", "URL path");
    rejects(["-serve", ":8080/healthz"], {}, "reserved");
  });

  test("splitEndpoint() returns the parts and names the source in errors", () => {
    assert.deepEqual(splitEndpoint(":1/a/b", "x"), {
      address: ":1",
      path: "a/b",
    });
    assert.deepEqual(splitEndpoint(":1", "x"), { address: ":1" });
    assert.throws(() => splitEndpoint("a:b/c", "the thing"), /the thing/);
  });
});

describe("the original's environment variables", () => {
  test("SERVE_ADDRESS, SERVE_PATH, CONSUME_ADDRESS, CONSUME_PATH, NO_PRODUCE", () => {
    const config = serve([], {
      SERVE_ADDRESS: "localhost:9090",
      SERVE_PATH: "proxy-events",
      CONSUME_ADDRESS: "localhost:8080",
      CONSUME_PATH: "events",
      NO_PRODUCE: "1",
    });
    assert.equal(config.serveAddress.port, 9090);
    assert.equal(config.serveAddressText, "localhost:9090");
    assert.deepEqual(config.servePaths, ["proxy-events"]);
    assert.equal(config.consumeUrl?.href, "ws://localhost:8080/events");
    assert.equal(config.produce, false);
  });

  test("SERVE_ENDPOINT and CONSUME_ENDPOINT split at the first /", () => {
    const config = serve([], {
      SERVE_ENDPOINT: "localhost:9090/proxy-events",
      CONSUME_ENDPOINT: "localhost:8080/events",
    });
    assert.equal(config.serveAddress.port, 9090);
    assert.deepEqual(config.servePaths, ["proxy-events"]);
    assert.equal(config.consumeUrl?.href, "ws://localhost:8080/events");
  });

  test("NO_PRODUCE: any non-empty value means true, as in the original; empty means unset", () => {
    for (const value of ["1", "true", "yes", "false", "0", "x"]) {
      assert.equal(serve([], { NO_PRODUCE: value }).produce, false, value);
    }
    assert.equal(serve([], { NO_PRODUCE: "" }).produce, true);
    assert.equal(serve([], {}).produce, true);
  });

  test("a flag on the command line wins over the environment", () => {
    const env = {
      SERVE_ENDPOINT: "localhost:1111/from-endpoint",
      SERVE_ADDRESS: "localhost:2222",
      CONSUME_ENDPOINT: "localhost:3333/up",
      NO_PRODUCE: "1",
    };
    const config = serve(
      ["-serve-address", ":4444", "-consume", "localhost:5555/flag"],
      env,
    );
    assert.equal(config.serveAddress.port, 4444);
    assert.deepEqual(config.servePaths, ["from-endpoint"]);
    assert.equal(config.consumeUrl?.href, "ws://localhost:5555/flag");
    assert.equal(serve(["-serve", ":6666/p"], env).serveAddress.port, 6666);
    // An explicit -no-produce=false beats NO_PRODUCE.
    assert.equal(serve(["-no-produce=false"], env).produce, true);
    assert.equal(serve(["-no-produce"], env).produce, false);
  });

  test("SERVE_ADDRESS and SERVE_PATH win over SERVE_ENDPOINT's parts", () => {
    const config = serve([], {
      SERVE_ENDPOINT: "localhost:1111/a",
      SERVE_ADDRESS: "localhost:2222",
    });
    assert.equal(config.serveAddress.port, 2222);
    assert.deepEqual(config.servePaths, ["a"]);
  });

  test("WSEVENT_* wins over the original's names", () => {
    const env = {
      WSEVENT_SERVE_ADDRESS: "localhost:7777",
      SERVE_ADDRESS: "localhost:2222",
      SERVE_ENDPOINT: "localhost:1111/a",
      WSEVENT_NO_PRODUCE: "false",
      NO_PRODUCE: "1",
      WSEVENT_SERVE_PATH: "x,y",
    };
    const config = serve([], env);
    assert.equal(config.serveAddress.port, 7777);
    assert.deepEqual(config.servePaths, ["x", "y"]);
    assert.equal(config.produce, true);
    // And on the edge entry, which reads the environment only.
    const edge = parseEnvConfig(env);
    assert.equal(edge.serveAddress.port, 7777);
    assert.equal(edge.produce, true);
  });

  test("the edge entry reads the original's names too", () => {
    const config = parseEnvConfig({
      SERVE_ENDPOINT: "localhost:9090/proxy-events",
      NO_PRODUCE: "y",
    });
    assert.deepEqual(config.servePaths, ["proxy-events"]);
    assert.equal(config.produce, false);
    assert.equal(config.serveAddressText, "localhost:9090");
  });

  test("bad values name the variable, not a flag the user never typed", () => {
    rejects([], { SERVE_ENDPOINT: "nonsense" }, "SERVE_ENDPOINT", "host:port");
    rejects([], { SERVE_ADDRESS: "host:port" }, "SERVE_ADDRESS", '"host:port"');
    rejects([], { SERVE_PATH: "a b" }, "SERVE_PATH", "URL path");
    rejects([], { CONSUME_ENDPOINT: "x:1/" }, "CONSUME_ENDPOINT", "path");
    rejects([], { CONSUME_ADDRESS: "::" }, "CONSUME_ADDRESS");
    rejects([], { WSEVENT_BUFFER: "lots" }, "WSEVENT_BUFFER", "integer");
    rejects([], { WSEVENT_SERVE_ADDRESS: "x" }, "WSEVENT_SERVE_ADDRESS");
  });

  test("a WSEVENT_* switch other than 1/0/true/false/yes/no/on/off is refused, not read as false", () => {
    for (const value of ["ture", "2", "enabled"]) {
      rejects([], { WSEVENT_NO_PRODUCE: value }, "WSEVENT_NO_PRODUCE", value);
      assert.throws(
        () => parseEnvConfig({ WSEVENT_NO_PRODUCE: value }),
        /Cannot parse environment variable WSEVENT_NO_PRODUCE: expected true or false/,
      );
    }
    for (const [value, produce] of [["ON", false], [" no ", true]] as const) {
      assert.equal(serve([], { WSEVENT_NO_PRODUCE: value }).produce, produce);
      assert.equal(
        parseEnvConfig({ WSEVENT_NO_PRODUCE: value }).produce,
        produce,
      );
    }
  });

  test("an endpoint with a URL scheme says so, not 'expected a port'", () => {
    rejects(
      ["-consume", "ws://localhost:8080/events"],
      {},
      "flag -consume",
      "without a scheme",
      "-consume-url",
    );
    rejects(
      [],
      { CONSUME_ENDPOINT: "wss://h:1/e" },
      "CONSUME_ENDPOINT",
      "scheme",
    );
    rejects(["-serve", "http://:8080/events"], {}, "flag -serve", "scheme");
  });

  test("a bad variable is not read when its flag is given", () => {
    const config = serve(["-serve-address", ":1"], { SERVE_ADDRESS: "bad" });
    assert.equal(config.serveAddress.port, 1);
  });

  test("-h and -version do not read the environment", () => {
    assert.equal(parseConfig(["-h"], { SERVE_ENDPOINT: "bad" }).kind, "help");
    assert.equal(
      parseConfig(["-version"], { SERVE_ENDPOINT: "bad" }).kind,
      "version",
    );
  });

  test("the usage names the endpoint flags and the variables", () => {
    const usage = formatUsage("wsevent");
    for (
      const part of [
        "-serve value",
        "-consume value",
        "SERVE_ENDPOINT",
        "CONSUME_PATH",
        "NO_PRODUCE",
        "WSEVENT_",
      ]
    ) assert.ok(usage.includes(part), part);
  });
});
