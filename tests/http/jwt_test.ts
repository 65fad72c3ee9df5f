/**
 * The JWT authorizer (src/http/jwt.ts): the matrix of key kinds (HMAC,
 * RSA, EC, EdDSA) x allowed / forbidden topic x expired, not yet valid,
 * tampered and wrong-algorithm tokens (`none` included), for subscribe and
 * publish; key material that cannot be used; the cookie.
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import { sign } from "hono/jwt";
import {
  cookieToken,
  createJwtAuthorizer,
  JwtError,
  jwtKeyMaterial,
} from "../../src/http/jwt.ts";
import { matchesPattern } from "../../src/pattern.ts";
import {
  b64url,
  confusedToken,
  type KeyKind,
  makeKey,
  noneToken,
  nowSeconds,
  pkcs8Pem,
  tamperPayload,
  tamperSignature,
} from "./_jwt_keys.ts";

const RIGHTS = {
  wsevent: { subscribe: ["rooms/*", "/news"], publish: ["rooms/42"] },
};

async function refused(
  promise: Promise<unknown>,
  status: 401 | 403,
  message: RegExp,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof JwtError, String(error));
    assert.equal(error.status, status, error.message);
    assert.match(error.message, message);
    return true;
  });
}

const KINDS = ["HMAC", "RSA", "EC", "EdDSA"] as const;
const keys = new Map<string, Promise<KeyKind>>(
  KINDS.map((name) => [name, makeKey(name)]),
);

for (const name of KINDS) {
  describe(`createJwtAuthorizer() with an ${name} key`, () => {
    test("allows the topics of the claim, for subscribe and publish", async () => {
      const key = await keys.get(name)!;
      const authorizer = await createJwtAuthorizer(key.material);
      const exp = nowSeconds() + 600;
      const token = await key.sign({ ...RIGHTS, exp });
      const sub = await authorizer.authorize(token, "subscribe", "rooms/7");
      assert.equal(sub.expiresAtMs, (exp + 5) * 1000);
      await authorizer.authorize(token, "subscribe", "news");
      await authorizer.authorize(token, "publish", "rooms/42");
      assert.match(authorizer.description, new RegExp(key.alg));
    });

    test("answers 403 for a topic the claim does not cover", async () => {
      const key = await keys.get(name)!;
      const authorizer = await createJwtAuthorizer(key.material);
      const token = await key.sign(RIGHTS);
      await refused(
        authorizer.authorize(token, "subscribe", "rooms"),
        403,
        /does not allow subscribe to "\/rooms"/,
      );
      await refused(
        authorizer.authorize(token, "publish", "rooms/7"),
        403,
        /publish/,
      );
      await refused(
        authorizer.authorize(token, "subscribe", "newsletter"),
        403,
        /subscribe/,
      );
      const none = await key.sign({ sub: "no claim" });
      await refused(
        authorizer.authorize(none, "subscribe", "rooms/1"),
        403,
        /not allow/,
      );
    });

    test("answers 401 for an expired token, within the leeway not", async () => {
      const key = await keys.get(name)!;
      const authorizer = await createJwtAuthorizer(key.material, {
        leewaySeconds: 5,
      });
      const old = await key.sign({ ...RIGHTS, exp: nowSeconds() - 30 });
      await refused(
        authorizer.authorize(old, "subscribe", "rooms/1"),
        401,
        /expired/,
      );
      await refused(
        authorizer.authorize(old, "publish", "rooms/42"),
        401,
        /expired/,
      );
      const skewed = await key.sign({ ...RIGHTS, exp: nowSeconds() - 2 });
      await authorizer.authorize(skewed, "subscribe", "rooms/1");
    });

    test("answers 401 for a token not valid yet, within the leeway not", async () => {
      const key = await keys.get(name)!;
      const authorizer = await createJwtAuthorizer(key.material);
      const later = await key.sign({ ...RIGHTS, nbf: nowSeconds() + 60 });
      await refused(
        authorizer.authorize(later, "subscribe", "rooms/1"),
        401,
        /not valid yet/,
      );
      const soon = await key.sign({ ...RIGHTS, nbf: nowSeconds() + 2 });
      await authorizer.authorize(soon, "publish", "rooms/42");
      const bad = await key.sign({ ...RIGHTS, exp: "tomorrow" });
      await refused(
        authorizer.authorize(bad, "subscribe", "rooms/1"),
        401,
        /"exp" is not a number/,
      );
    });

    test("answers 401 for a tampered payload or signature", async () => {
      const key = await keys.get(name)!;
      const authorizer = await createJwtAuthorizer(key.material);
      const token = await key.sign({ wsevent: { subscribe: ["news"] } });
      await refused(
        authorizer.authorize(tamperPayload(token), "subscribe", "secret"),
        401,
        /signature does not match/,
      );
      await refused(
        authorizer.authorize(tamperSignature(token), "subscribe", "news"),
        401,
        /signature|cannot be verified/,
      );
    });

    test("answers 401 for alg none, another algorithm, or another key", async () => {
      const key = await keys.get(name)!;
      const authorizer = await createJwtAuthorizer(key.material);
      await refused(
        authorizer.authorize(noneToken(RIGHTS), "subscribe", "rooms/1"),
        401,
        /header is not accepted/,
      );
      // The forger's trick: HS256 with the public key's text as secret.
      const confused = await confusedToken(key.material, RIGHTS);
      if (name !== "HMAC") {
        await refused(
          authorizer.authorize(confused, "subscribe", "rooms/1"),
          401,
          /algorithm is not the key's/,
        );
      }
      for (const other of KINDS.filter((k) => k !== name)) {
        const token = await (await keys.get(other)!).sign(RIGHTS);
        await refused(
          authorizer.authorize(token, "publish", "rooms/42"),
          401,
          /algorithm is not the key's|signature does not match/,
        );
      }
      const stranger = await makeKey(name);
      await refused(
        authorizer.authorize(
          await stranger.sign(RIGHTS),
          "subscribe",
          "rooms/1",
        ),
        401,
        /signature does not match/,
      );
      await refused(
        authorizer.authorize("not.a.jwt", "subscribe", "rooms/1"),
        401,
        /not a JWT/,
      );
      await refused(
        authorizer.authorize("garbage", "subscribe", "rooms/1"),
        401,
        /not a JWT/,
      );
      const nullHeader = `${b64url("null")}.${b64url("{}")}.x`;
      await refused(
        authorizer.authorize(nullHeader, "subscribe", "rooms/1"),
        401,
        /not a JWT/,
      );
    });
  });
}

describe("createJwtAuthorizer() with a JWKS", () => {
  test("picks the key by kid and refuses an unknown kid", async () => {
    const rsa = await keys.get("RSA")!;
    const ed = await keys.get("EdDSA")!;
    const jwks = JSON.stringify({
      keys: [{ ...rsa.jwk, kid: "r1" }, { ...ed.jwk, kid: "e1" }],
    });
    const authorizer = await createJwtAuthorizer(jwks);
    await authorizer.authorize(
      await rsa.sign(RIGHTS, "r1"),
      "subscribe",
      "rooms/1",
    );
    await authorizer.authorize(
      await ed.sign(RIGHTS, "e1"),
      "publish",
      "rooms/42",
    );
    await refused(
      authorizer.authorize(await ed.sign(RIGHTS, "r1"), "subscribe", "rooms/1"),
      401,
      /algorithm is not the key's/,
    );
    await refused(
      authorizer.authorize(await ed.sign(RIGHTS, "x9"), "subscribe", "rooms/1"),
      401,
      /no key with the token's kid "x9"/,
    );
    await refused(
      authorizer.authorize(
        await confusedToken(jwks, RIGHTS),
        "subscribe",
        "rooms/1",
      ),
      401,
      /no key|algorithm/,
    );
  });

  test("takes a single JWK without kid", async () => {
    const ec = await keys.get("EC")!;
    const authorizer = await createJwtAuthorizer(JSON.stringify(ec.jwk));
    await authorizer.authorize(await ec.sign(RIGHTS), "subscribe", "rooms/1");
  });
});

describe("createJwtAuthorizer() refuses key material it cannot use", () => {
  const cases: [string, () => Promise<string>, RegExp][] = [
    ["a short secret", () => Promise.resolve("short"), /at least 32 bytes/],
    [
      "a private key PEM",
      async () => {
        const pair = await crypto.subtle.generateKey(
          { name: "ECDSA", namedCurve: "P-256" },
          true,
          ["sign"],
        ) as CryptoKeyPair;
        return await pkcs8Pem(pair.privateKey);
      },
      /"PRIVATE KEY".*-pubout/,
    ],
    [
      "a PKCS#1 RSA public key",
      () =>
        Promise.resolve(
          "-----BEGIN RSA PUBLIC KEY-----\nAAAA\n-----END RSA PUBLIC KEY-----",
        ),
      /RSAPublicKey_in/,
    ],
    [
      "a P-384 key",
      async () => {
        const pair = await crypto.subtle.generateKey(
          { name: "ECDSA", namedCurve: "P-384" },
          true,
          ["sign"],
        ) as CryptoKeyPair;
        const { spkiPem } = await import("./_jwt_keys.ts");
        return await spkiPem(pair.publicKey);
      },
      /not RSA, EC P-256 or Ed25519/,
    ],
    ["broken JSON", () => Promise.resolve("{nope"), /not valid JSON/],
    ["an empty JWKS", () => Promise.resolve('{"keys":[]}'), /no keys/],
    [
      "a JWKS whose keys are not objects",
      () => Promise.resolve('{"keys":[null, 1]}'),
      /Cannot use the JWT key: the JWKS's key 1 is not a JSON object/,
    ],
    [
      "a symmetric JWK",
      () =>
        Promise.resolve('{"keys":[{"kty":"oct","k":"c2VjcmV0","kid":"s"}]}'),
      /JWK "s" is oct/,
    ],
    [
      "a private JWK",
      async () => {
        const pair = await crypto.subtle.generateKey(
          { name: "Ed25519" },
          true,
          ["sign", "verify"],
        ) as CryptoKeyPair;
        const jwk = await crypto.subtle.exportKey("jwk", pair.privateKey);
        return JSON.stringify({ keys: [{ ...jwk, kid: "p" }] });
      },
      /holds a private key/,
    ],
  ];
  for (const [name, material, message] of cases) {
    test(name, async () => {
      await assert.rejects(createJwtAuthorizer(await material()), (error) => {
        assert.ok(error instanceof TypeError);
        assert.match(error.message, message);
        return true;
      });
    });
  }
});

describe("jwtKeyMaterial()", () => {
  test("reads @FILE and names a file it cannot read", async () => {
    const files: Record<string, string> = { "/k.pem": "PEM TEXT" };
    const read = (path: string) =>
      files[path] !== undefined
        ? Promise.resolve(files[path])
        : Promise.reject(new Error("No such file"));
    assert.equal(await jwtKeyMaterial("@/k.pem", read), "PEM TEXT");
    assert.equal(await jwtKeyMaterial("inline-secret", read), "inline-secret");
    await assert.rejects(
      jwtKeyMaterial("@/missing.pem", read),
      /Cannot read the JWT key file "\/missing.pem": No such file/,
    );
  });

  test("drops the file's final line break: an HMAC secret written by echo still verifies", async () => {
    const secret = "an hmac secret of at least thirty-two bytes";
    const read = () => Promise.resolve(`${secret}\n`);
    const material = await jwtKeyMaterial("@/secret.txt", read);
    assert.equal(material, secret);
    const authorizer = await createJwtAuthorizer(material);
    const token = await sign({ wsevent: { subscribe: ["events"] } }, secret);
    await authorizer.authorize(token, "subscribe", "events");
    // Only one line break: a PEM keeps its text, CRLF counts as one.
    assert.equal(
      await jwtKeyMaterial("@/k", () => Promise.resolve("a\r\n\n")),
      "a\r\n",
    );
  });
});

describe("cookieToken()", () => {
  test("reads wsevent_token among other cookies", () => {
    const request = (cookie: string) =>
      new Request("http://x/", { headers: { cookie } });
    assert.equal(cookieToken(request("a=1; wsevent_token=t%2Bk; b=2")), "t+k");
    assert.equal(cookieToken(request("wsevent_tokenx=1")), null);
    assert.equal(cookieToken(request("wsevent_token=%E0")), null);
    assert.equal(cookieToken(new Request("http://x/")), null);
  });
});

describe("matchesPattern()", () => {
  test("plain, prefix/* and *", () => {
    assert.ok(matchesPattern("rooms/*", "rooms/1"));
    assert.ok(matchesPattern("rooms/*", "rooms/1/a"));
    assert.ok(!matchesPattern("rooms/*", "rooms"));
    assert.ok(!matchesPattern("rooms/*", "roomsx/1"));
    assert.ok(matchesPattern("*", "anything/at/all"));
    assert.ok(matchesPattern("news", "news"));
    assert.ok(!matchesPattern("news", "news/1"));
  });
});
