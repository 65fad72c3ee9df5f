/**
 * JWT authorization per topic: a token carries the topics it may subscribe
 * to and publish to as patterns in its `wsevent` claim,
 * `{"wsevent": {"subscribe": ["rooms/*"], "publish": ["rooms/42"]}}`.
 * Signatures are checked by Hono's JWT utilities (`hono/jwt`, on WebCrypto)
 * with the algorithm fixed by the configured key, never taken from the
 * token alone: `none` and algorithm confusion (an HS256 token against an
 * RSA public key) are refused.
 *
 * @module
 */

import { decode, verify } from "hono/jwt";
import { matchesPattern } from "../pattern.ts";

/** What a token is asked to allow. */
export type JwtAction = "subscribe" | "publish";

/** The algorithms a key may verify. */
type Algorithm = "HS256" | "HS384" | "HS512" | "RS256" | "ES256" | "EdDSA";

/** What a valid token grants for one request. */
export interface JwtGrant {
  /** When the token expires (ms since the epoch, leeway included), or null. */
  expiresAtMs: number | null;
}

/**
 * A token was refused: 401 (missing, bad, expired) or 403 (not for this
 * topic).
 *
 * @example Usage
 * ```ts
 * import { JwtError } from "./jwt.ts";
 * const error = new JwtError(403, "Cannot publish: not for this topic");
 * console.log(error.status, error.code); // 403 "forbidden"
 * ```
 */
export class JwtError extends Error {
  /** The HTTP status to answer with. */
  readonly status: 401 | 403;
  /** Stable code for clients. */
  readonly code: "unauthorized" | "forbidden";
  /**
   * Creates the error.
   *
   * @param status 401 or 403.
   * @param message What is wrong, for the client.
   */
  constructor(status: 401 | 403, message: string) {
    super(message);
    this.name = "JwtError";
    this.status = status;
    this.code = status === 401 ? "unauthorized" : "forbidden";
  }
}

/** Options of {@link createJwtAuthorizer}. */
export interface JwtAuthorizerOptions {
  /** Seconds of clock skew allowed on `exp` and `nbf`. @default {5} */
  leewaySeconds?: number;
  /** The clock, in ms since the epoch (tests). @default {Date.now} */
  now?: () => number;
}

/** Checks tokens against one configured key. */
export interface JwtAuthorizer {
  /** What kind of key is configured, for the start-up log. */
  readonly description: string;
  /**
   * Verifies a token and its right to `action` on the topic at `path`.
   *
   * @param token The compact JWT.
   * @param action Subscribe or publish.
   * @param path The topic's path, without a leading slash.
   * @returns When the grant ends.
   * @throws {JwtError} 401 for a bad, expired or not yet valid token, 403
   * for a valid one whose claim does not cover the topic.
   */
  authorize(
    token: string,
    action: JwtAction,
    path: string,
  ): Promise<JwtGrant>;
}

/** A verification key with the one algorithm it accepts. */
interface VerifyKey {
  alg: Algorithm;
  key: CryptoKey;
  kid?: string;
}

const HMAC_HASHES = { HS256: "SHA-256", HS384: "SHA-384", HS512: "SHA-512" };
const SPKI_KINDS: [Algorithm, RsaHashedImportParams | EcKeyImportParams][] = [
  ["RS256", { name: "RSASSA-PKCS1-v1_5", hash: "SHA-256" }],
  ["ES256", { name: "ECDSA", namedCurve: "P-256" }],
  ["EdDSA", { name: "Ed25519" } as EcKeyImportParams],
];
/** RFC 7518 §3.2: an HMAC key at least as long as the hash output. */
const MIN_SECRET_BYTES = 32;
const MAX_TOKEN_CHARS = 16 * 1024;

/**
 * Creates an authorizer from key material: an HMAC secret (at least 32
 * bytes; HS256, HS384, HS512), a PEM public key (SPKI: RSA for RS256, EC
 * P-256 for ES256, Ed25519 for EdDSA), or a JWK / JWKS in JSON with such
 * public keys (picked by the token's `kid`).
 *
 * @example Usage
 * ```ts
 * import { createJwtAuthorizer } from "./jwt.ts";
 * import { sign } from "hono/jwt";
 * const secret = "a secret of at least thirty-two bytes!";
 * const authorizer = await createJwtAuthorizer(secret);
 * const token = await sign({ wsevent: { subscribe: ["rooms/*"] } }, secret);
 * const grant = await authorizer.authorize(token, "subscribe", "rooms/42");
 * console.log(grant.expiresAtMs); // null
 * ```
 *
 * @param material The secret, PEM text or JSON text.
 * @param options Leeway and clock.
 * @returns The authorizer.
 * @throws {TypeError} When the key cannot be used, saying why.
 */
export async function createJwtAuthorizer(
  material: string,
  options: JwtAuthorizerOptions = {},
): Promise<JwtAuthorizer> {
  const keys = await importKeys(material);
  const leewayMs = (options.leewaySeconds ?? 5) * 1000;
  const now = options.now ?? Date.now;
  const algs = [...new Set(keys.map((k) => k.alg))].join(", ");
  return {
    description: `JWT with ${algs}`,
    async authorize(token, action, path) {
      const payload = await verifyToken(token, keys, action);
      const expiresAtMs = checkTimes(payload, now(), leewayMs, action);
      if (!claimAllows(payload, action, path)) {
        throw new JwtError(
          403,
          `Cannot ${action}: the token does not allow ${action} to "/${path}"`,
        );
      }
      return { expiresAtMs };
    },
  };
}

async function importKeys(material: string): Promise<VerifyKey[]> {
  const text = material.trim();
  if (text.startsWith("-----BEGIN")) return [await importPem(text)];
  if (text.startsWith("{")) return await importJwks(text);
  if (new TextEncoder().encode(material).byteLength < MIN_SECRET_BYTES) {
    throw new TypeError(
      `Cannot use the JWT key: an HMAC secret needs at least ${MIN_SECRET_BYTES} bytes (RFC 7518), or give a PEM public key or a JWKS`,
    );
  }
  const raw = new TextEncoder().encode(material);
  return await Promise.all(
    (Object.keys(HMAC_HASHES) as (keyof typeof HMAC_HASHES)[]).map(
      async (alg) => ({
        alg,
        key: await crypto.subtle.importKey(
          "raw",
          raw,
          { name: "HMAC", hash: HMAC_HASHES[alg] },
          false,
          ["verify"],
        ),
      }),
    ),
  );
}

async function importPem(text: string): Promise<VerifyKey> {
  const match = /^-----BEGIN ([A-Z0-9 ]+)-----([\s\S]*?)-----END \1-----/
    .exec(text);
  if (match === null || match[1] !== "PUBLIC KEY") {
    const kind = match?.[1] ?? "unreadable PEM";
    throw new TypeError(
      `Cannot use the JWT key: expected a PEM "PUBLIC KEY" (SPKI), received "${kind}"${
        kind.includes("PRIVATE")
          ? " (give the public key: openssl pkey -in key.pem -pubout)"
          : kind === "RSA PUBLIC KEY"
          ? " (convert it: openssl rsa -RSAPublicKey_in -in key.pem -pubout)"
          : ""
      }`,
    );
  }
  let der: Uint8Array<ArrayBuffer>;
  try {
    der = Uint8Array.from(
      atob(match[2].replace(/\s+/g, "")),
      (c) => c.charCodeAt(0),
    );
  } catch {
    throw new TypeError("Cannot use the JWT key: the PEM is not base64");
  }
  for (const [alg, params] of SPKI_KINDS) {
    try {
      const key = await crypto.subtle.importKey("spki", der, params, false, [
        "verify",
      ]);
      return { alg, key };
    } catch {
      // Not this kind of key: try the next.
    }
  }
  throw new TypeError(
    "Cannot use the JWT key: the public key is not RSA, EC P-256 or Ed25519",
  );
}

function jwkAlgorithm(jwk: JsonWebKey & { kid?: string }): Algorithm {
  if ("d" in jwk) {
    throw new TypeError(
      `Cannot use the JWT key: JWK "${
        jwk.kid ?? "?"
      }" holds a private key; give only the public parts`,
    );
  }
  const named: Record<string, Algorithm> = {
    RSA: "RS256",
    "EC:P-256": "ES256",
    "OKP:Ed25519": "EdDSA",
  };
  const alg = named[jwk.crv ? `${jwk.kty}:${jwk.crv}` : String(jwk.kty)];
  // RFC 9864 names the Ed25519 algorithm "Ed25519" (Node exports it so).
  const given = jwk.alg === "Ed25519" ? "EdDSA" : jwk.alg;
  if (alg === undefined || (given !== undefined && given !== alg)) {
    throw new TypeError(
      `Cannot use the JWT key: JWK "${jwk.kid ?? "?"}" is ${jwk.kty} ${
        jwk.crv ?? ""
      } ${
        jwk.alg ?? ""
      }; expected RSA (RS256), EC P-256 (ES256) or OKP Ed25519 (EdDSA)`,
    );
  }
  return alg;
}

async function importJwks(text: string): Promise<VerifyKey[]> {
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new TypeError("Cannot use the JWT key: the JWKS is not valid JSON");
  }
  const list = (parsed as { keys?: unknown }).keys ?? [parsed];
  if (!Array.isArray(list) || list.length === 0) {
    throw new TypeError("Cannot use the JWT key: the JWKS has no keys");
  }
  return await Promise.all(
    list.map(async (jwk: JsonWebKey & { kid?: string }, index) => {
      if (typeof jwk !== "object" || jwk === null || Array.isArray(jwk)) {
        throw new TypeError(
          `Cannot use the JWT key: the JWKS's key ${
            index + 1
          } is not a JSON object`,
        );
      }
      const alg = jwkAlgorithm(jwk);
      const params = SPKI_KINDS.find(([a]) => a === alg)![1];
      try {
        const key = await crypto.subtle.importKey(
          "jwk",
          { ...jwk, alg: undefined, key_ops: undefined, use: undefined },
          params,
          false,
          ["verify"],
        );
        return { alg, key, kid: jwk.kid };
      } catch (error) {
        throw new TypeError(
          `Cannot use the JWT key: JWK "${
            jwk.kid ?? "?"
          }" cannot be imported: ${(error as Error).message}`,
        );
      }
    }),
  );
}

/** The key for a token: by `kid` among several, else the one of its alg. */
function keyFor(
  header: { alg?: unknown; kid?: unknown },
  keys: VerifyKey[],
  action: JwtAction,
): VerifyKey {
  const candidates = keys.length > 1 && keys.some((k) => k.kid !== undefined)
    ? keys.filter((k) => k.kid === header.kid)
    : keys;
  const key = candidates.find((k) => k.alg === header.alg) ?? candidates[0];
  if (key === undefined) {
    throw new JwtError(
      401,
      `Cannot ${action}: no key with the token's kid "${String(header.kid)}"`,
    );
  }
  return key;
}

const REASONS: Record<string, string> = {
  JwtAlgorithmMismatch: "the token's algorithm is not the key's",
  JwtHeaderInvalid: "the token's header is not accepted (algorithm or type)",
  JwtTokenInvalid: "the token is not a JWT",
  JwtTokenSignatureMismatched: "the token's signature does not match",
};

async function verifyToken(
  token: string,
  keys: VerifyKey[],
  action: JwtAction,
): Promise<Record<string, unknown>> {
  if (token.length > MAX_TOKEN_CHARS) {
    throw new JwtError(401, `Cannot ${action}: the token is too long`);
  }
  let header: unknown;
  try {
    header = decode(token).header;
  } catch {
    header = null;
  }
  if (typeof header !== "object" || header === null) {
    throw new JwtError(401, `Cannot ${action}: the token is not a JWT`);
  }
  const key = keyFor(header, keys, action);
  try {
    // Times are checked below, with a leeway.
    return await verify(token, key.key, {
      alg: key.alg,
      exp: false,
      nbf: false,
      iat: false,
    });
  } catch (error) {
    const name = error instanceof Error ? error.name : "";
    const reason = REASONS[name] ?? "the token cannot be verified";
    throw new JwtError(401, `Cannot ${action}: ${reason}`);
  }
}

/** Checks `exp` and `nbf` (seconds) with the leeway; returns the end in ms. */
function checkTimes(
  payload: Record<string, unknown>,
  nowMs: number,
  leewayMs: number,
  action: JwtAction,
): number | null {
  const { exp, nbf } = payload;
  for (const [name, value] of [["exp", exp], ["nbf", nbf]] as const) {
    if (value !== undefined && !Number.isFinite(value)) {
      throw new JwtError(
        401,
        `Cannot ${action}: the token's "${name}" is not a number`,
      );
    }
  }
  if (typeof nbf === "number" && nbf * 1000 > nowMs + leewayMs) {
    throw new JwtError(401, `Cannot ${action}: the token is not valid yet`);
  }
  if (typeof exp !== "number") return null;
  const end = exp * 1000 + leewayMs;
  if (end <= nowMs) {
    throw new JwtError(401, `Cannot ${action}: the token has expired`);
  }
  return end;
}

function claimAllows(
  payload: Record<string, unknown>,
  action: JwtAction,
  path: string,
): boolean {
  const claim = payload.wsevent;
  if (typeof claim !== "object" || claim === null) return false;
  const patterns = (claim as Record<string, unknown>)[action];
  if (!Array.isArray(patterns)) return false;
  return patterns.some((pattern) =>
    typeof pattern === "string" &&
    matchesPattern(pattern.replace(/^\/+/, ""), path)
  );
}

/** The cookie a browser may carry its token in. */
export const TOKEN_COOKIE = "wsevent_token";

/**
 * Reads a token from the `wsevent_token` cookie.
 *
 * @param request The request.
 * @returns The token, or null.
 */
export function cookieToken(request: Request): string | null {
  const header = request.headers.get("cookie");
  if (header === null) return null;
  for (const part of header.split(";")) {
    const eq = part.indexOf("=");
    if (eq < 0 || part.slice(0, eq).trim() !== TOKEN_COOKIE) continue;
    const value = part.slice(eq + 1).trim();
    try {
      return decodeURIComponent(value) || null;
    } catch {
      return null;
    }
  }
  return null;
}

/**
 * The key material of `--jwt-key`: the value itself, or with `@FILE` the
 * file's text (PEM, JWKS or a secret) without its final line break, which
 * `echo secret > FILE` and editors add and no signer puts in a secret.
 *
 * @param value The flag's value.
 * @param readTextFile Reads a file (the runtime's way).
 * @returns The key material.
 * @throws {TypeError} When the file cannot be read, naming it.
 */
export async function jwtKeyMaterial(
  value: string,
  readTextFile: (path: string) => Promise<string>,
): Promise<string> {
  if (!value.startsWith("@")) return value;
  const path = value.slice(1);
  try {
    return (await readTextFile(path)).replace(/\r?\n$/, "");
  } catch (error) {
    throw new TypeError(
      `Cannot read the JWT key file "${path}": ${
        error instanceof Error ? error.message : String(error)
      }`,
    );
  }
}
