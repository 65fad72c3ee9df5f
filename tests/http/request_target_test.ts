import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  hostHeaderValid,
  parseRequestUrl,
} from "../../src/http/request_target.ts";

function withHost(host: string | null): Request {
  const request = new Request("http://localhost/events");
  // Request forbids setting Host on some runtimes: read through a stand-in.
  return {
    headers: new Headers(host === null ? {} : { host }),
    url: request.url,
  } as unknown as Request;
}

describe("hostHeaderValid()", () => {
  test("hostHeaderValid() accepts names, IPv4, IPv6 literals and ports, and a missing Host", () => {
    for (
      const host of [
        "localhost",
        "example.com:8080",
        "127.0.0.1:65535",
        "[::1]:8080",
        "[::1]",
        "a_b.example",
      ]
    ) {
      assert.equal(hostHeaderValid(withHost(host)), true, host);
    }
    assert.equal(hostHeaderValid(withHost(null)), true);
  });

  test("hostHeaderValid() refuses a Host with a path, query, fragment, user, space, percent or a bad port", () => {
    for (
      const host of [
        "[",
        "a b",
        "x:99999",
        "a/b",
        "%zz",
        "x#",
        "127.0.0.1/events?token=t#",
        "user@host",
        "host:",
        "",
        "h:8080:1",
      ]
    ) {
      assert.equal(hostHeaderValid(withHost(host)), false, host);
    }
  });
});

describe("parseRequestUrl()", () => {
  test("parseRequestUrl() returns null for a URL that cannot be parsed", () => {
    assert.equal(parseRequestUrl("http://[/events"), null);
    assert.equal(parseRequestUrl("http://h/e?x=1")?.pathname, "/e");
  });
});
