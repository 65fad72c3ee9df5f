import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { redactSecretsIn, redactText, redactUrl } from "../src/redact.ts";

describe("redactUrl()", () => {
  test("redactUrl() hides the user, the password and a token parameter", () => {
    assert.equal(
      redactUrl("ws://alice:secretpw@127.0.0.1:18081/events?token=SUBTOK"),
      "ws://***:***@127.0.0.1:18081/events?token=***",
    );
  });

  test("redactUrl() hides a user without a password (a token as the user)", () => {
    assert.equal(
      redactUrl(new URL("https://TOKEN@up.example/events")),
      "https://***@up.example/events",
    );
  });

  test("redactUrl() hides every secret-like parameter, in any case, and keeps the others", () => {
    const shown = redactUrl(
      "http://h/e?format=json&Token=a1&access_token=a2&api_key=a3&key=a4&password=a5&secret=a6&sig=a7&lastEventId=e-1",
    );
    for (const secret of ["a1", "a2", "a3", "a4", "a5", "a6", "a7"]) {
      assert.equal(shown.includes(secret), false, `${secret} in ${shown}`);
    }
    assert.match(shown, /format=json/);
    assert.match(shown, /lastEventId=e-1/);
  });

  test("redactUrl() hides jwt, access-token, id_token, %74oken, X-Api-Key and the fragment (#token=...)", () => {
    const shown = redactUrl(
      "ws://h/e?jwt=b1&access-token=b2&id_token=b3&%74oken=b4&X-Api-Key=b5&session_id=b6&client_secret=b7&format=json#access_token=b8",
    );
    for (const secret of ["b1", "b2", "b3", "b4", "b5", "b6", "b7", "b8"]) {
      assert.equal(shown.includes(secret), false, `${secret} in ${shown}`);
    }
    assert.match(shown, /format=json/);
  });

  test("redactUrl() leaves a URL without credentials unchanged", () => {
    const url = "wss://up.example:8443/events?format=json&lastEventId=x-2";
    assert.equal(redactUrl(url), url);
  });

  test("redactUrl() shows text that is not a URL as <invalid URL>", () => {
    assert.equal(redactUrl("not a url secretpw"), "<invalid URL>");
  });
});

describe("redactSecretsIn()", () => {
  test("redactSecretsIn() hides a URL's secrets inside an error message, also percent-decoded", () => {
    const url = new URL("ws://alice:p%40ss@h:1/e?token=SUBTOK");
    const text = redactSecretsIn(
      "failed for ws://alice:p%40ss@h:1/e?token=SUBTOK (user alice, p@ss)",
      url,
    );
    assert.equal(text.includes("alice"), false, text);
    assert.equal(text.includes("p%40ss"), false, text);
    assert.equal(text.includes("p@ss"), false, text);
    assert.equal(text.includes("SUBTOK"), false, text);
  });

  test("redactSecretsIn() hides a jwt parameter and the fragment", () => {
    const url = new URL("ws://h:1/e?jwt=JWTSEC#FRAGSEC");
    const text = redactSecretsIn("failed: ws://h:1/e?jwt=JWTSEC#FRAGSEC", url);
    assert.equal(text.includes("JWTSEC"), false, text);
    assert.equal(text.includes("FRAGSEC"), false, text);
  });

  test("redactSecretsIn() leaves text without secrets as it is", () => {
    const url = new URL("ws://h:1/e");
    assert.equal(
      redactSecretsIn("connection refused", url),
      "connection refused",
    );
  });
});

describe("redactText()", () => {
  test("redactText() hides a user, secret parameters and a fragment in text that may not parse, keeping the rest", () => {
    assert.equal(
      redactText("ws://alice:sec ret@h:99999/e?format=json&jwt=J&%74oken=T#F"),
      "ws://***@h:99999/e?format=json&jwt=***&%74oken=***#***",
    );
    assert.equal(redactText("alice:pw@h:1/events"), "***@h:1/events");
    assert.equal(redactText("localhost:8080/events"), "localhost:8080/events");
  });
});
