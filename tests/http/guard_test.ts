import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  originAllowed,
  requestToken,
  timingSafeEqual,
} from "../../src/http/guard.ts";

function request(
  headers: Record<string, string>,
  url = "http://localhost/events",
): Request {
  return new Request(url, { headers });
}

describe("timingSafeEqual()", () => {
  test("timingSafeEqual() is true only for equal strings", () => {
    assert.equal(timingSafeEqual("secret", "secret"), true);
    assert.equal(timingSafeEqual("secreT", "secret"), false);
    assert.equal(timingSafeEqual("secre", "secret"), false);
    assert.equal(timingSafeEqual("secrets", "secret"), false);
    assert.equal(timingSafeEqual("", "secret"), false);
    assert.equal(timingSafeEqual("secret", ""), false);
    assert.equal(timingSafeEqual("", ""), true);
    assert.equal(timingSafeEqual("é", "é"), true);
    assert.equal(timingSafeEqual("é", "e"), false);
  });

  test("timingSafeEqual() is false for a prefix repeated to the token's length", () => {
    assert.equal(timingSafeEqual("ab", "abab"), false);
    assert.equal(timingSafeEqual("a", "aaaa"), false);
  });
});

describe("requestToken()", () => {
  test("requestToken() reads a Bearer token, in any case of the scheme", () => {
    assert.equal(
      requestToken(request({ authorization: "Bearer abc" }), false),
      "abc",
    );
    assert.equal(
      requestToken(request({ authorization: "bearer  abc " }), false),
      "abc",
    );
  });

  test("requestToken() reads ?token= only where allowed", () => {
    const r = request({}, "http://localhost/events?token=q");
    assert.equal(requestToken(r, true), "q");
    assert.equal(requestToken(r, false), null);
  });

  test("requestToken() prefers the header and answers null for another scheme", () => {
    const r = request(
      { authorization: "Basic dXNlcjpwdw==" },
      "http://localhost/events?token=q",
    );
    assert.equal(requestToken(r, true), null);
    assert.equal(requestToken(request({}), true), null);
  });
});

describe("originAllowed()", () => {
  const allowed = ["https://app.example.com"];

  test("originAllowed() lets every origin in when the list is empty", () => {
    assert.equal(
      originAllowed(request({ origin: "https://evil.test" }), []),
      true,
    );
  });

  test("originAllowed() lets requests without Origin in (curl, services)", () => {
    assert.equal(originAllowed(request({}), allowed), true);
  });

  test("originAllowed() lets a listed origin in and keeps others out", () => {
    assert.equal(
      originAllowed(request({ origin: "https://app.example.com" }), allowed),
      true,
    );
    assert.equal(
      originAllowed(request({ origin: "https://evil.test" }), allowed),
      false,
    );
    assert.equal(
      originAllowed(request({ origin: "http://app.example.com" }), allowed),
      false,
    );
    assert.equal(originAllowed(request({ origin: "null" }), allowed), false);
  });

  test("originAllowed() keeps a same-host origin out unless listed (DNS rebinding)", () => {
    assert.equal(
      originAllowed(
        request({
          origin: "http://stream.local:8080",
          host: "stream.local:8080",
        }),
        allowed,
      ),
      false,
    );
    assert.equal(
      originAllowed(
        request({
          origin: "http://stream.local:9999",
          host: "stream.local:8080",
        }),
        allowed,
      ),
      false,
    );
  });
});
