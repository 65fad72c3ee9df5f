import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { parseAddress, parseUpstreamUrl } from "../src/address.ts";
import { UsageError } from "../src/errors.ts";

function usageError(...parts: string[]): (error: unknown) => boolean {
  return (error) => {
    assert.ok(error instanceof UsageError);
    for (const part of parts) {
      assert.ok(error.message.includes(part), `${error.message} / ${part}`);
    }
    return true;
  };
}

describe("parseAddress()", () => {
  test("parseAddress() reads host:port", () => {
    assert.deepEqual(parseAddress("localhost:8080"), {
      hostname: "localhost",
      host: "localhost",
      port: 8080,
    });
    assert.deepEqual(parseAddress("10.0.0.1:1"), {
      hostname: "10.0.0.1",
      host: "10.0.0.1",
      port: 1,
    });
    assert.equal(parseAddress("a-b.example.com:65535").port, 65535);
  });

  test("parseAddress() reads :port as 0.0.0.0", () => {
    assert.deepEqual(parseAddress(":8080"), {
      hostname: "0.0.0.0",
      host: "0.0.0.0",
      port: 8080,
    });
  });

  test("parseAddress() reads [ipv6]:port with brackets only in host", () => {
    assert.deepEqual(parseAddress("[::1]:8080"), {
      hostname: "::1",
      host: "[::1]",
      port: 8080,
    });
    assert.deepEqual(parseAddress("[::]:0"), {
      hostname: "::",
      host: "[::]",
      port: 0,
    });
    assert.equal(parseAddress("[fe80::1%eth0]:80").hostname, "fe80::1%eth0");
  });

  test("parseAddress() names the flag and the value in errors", () => {
    assert.throws(
      () => parseAddress("nope", "consume-address"),
      usageError("-consume-address", '"nope"'),
    );
    assert.throws(
      () => parseAddress(":65536"),
      usageError("-serve-address", '":65536"', "port"),
    );
    assert.throws(
      () => parseAddress(":123456"),
      usageError('":123456"', "port"),
    );
    assert.throws(() => parseAddress("[]:80"), usageError("IPv6"));
    assert.throws(() => parseAddress("[::1]"), usageError('"[::1]"'));
    assert.throws(() => parseAddress("a..b:80"), usageError("host"));
    assert.throws(() => parseAddress("a:b:80"), usageError('"a:b:80"'));
    assert.throws(() => parseAddress(""), usageError('""'));
  });
});

describe("parseUpstreamUrl()", () => {
  test("parseUpstreamUrl() accepts ws, wss, http and https", () => {
    for (const scheme of ["ws", "wss", "http", "https"]) {
      const url = parseUpstreamUrl(`${scheme}://example.com:1/p?x=1`);
      assert.equal(url.protocol, `${scheme}:`);
      assert.equal(url.pathname, "/p");
    }
  });

  test("parseUpstreamUrl() refuses other schemes and non-URLs, naming the flag", () => {
    assert.throws(
      () => parseUpstreamUrl("ftp://example.com/"),
      usageError("-consume-url", '"ftp://example.com/"'),
    );
    assert.throws(
      () => parseUpstreamUrl("localhost:8080/events", "subscribe URL"),
      usageError("subscribe URL"),
    );
    assert.throws(
      () => parseUpstreamUrl("::", "x"),
      usageError("-x", '"::"'),
    );
  });

  test("parseUpstreamUrl() and parseAddress() quote a bad value with its credentials hidden", () => {
    const bad = [
      () => parseUpstreamUrl("ftp://alice:secretpw@h:1/e?token=TOKSEC#FRAGSEC"),
      () => parseUpstreamUrl("ws://alice:secretpw@h:99999/e?jwt=TOKSEC"),
      () => parseUpstreamUrl("ws://alice:sec retpw@[h/e?x=1&%74oken=TOKSEC"),
      () => parseAddress("alice:secretpw@h:1", "consume-address"),
    ];
    for (const parse of bad) {
      assert.throws(parse, (error: Error) => {
        assert.match(error.message, /Cannot parse flag/);
        assert.match(error.message, /\*\*\*/);
        for (
          const secret of ["alice", "secretpw", "sec ret", "TOKSEC", "FRAGSEC"]
        ) {
          assert.equal(error.message.includes(secret), false, error.message);
        }
        return true;
      });
    }
  });
});
