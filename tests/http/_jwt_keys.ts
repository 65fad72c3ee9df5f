/**
 * Keys and tokens for the JWT tests: key pairs made with WebCrypto, public
 * keys as PEM (SPKI) or JWK, tokens signed with Hono's `sign`, and the bad
 * tokens a forger would try.
 */

import { sign } from "hono/jwt";

/** One kind of key the authorizer accepts. */
export interface KeyKind {
  name: "HMAC" | "RSA" | "EC" | "EdDSA";
  alg: "HS256" | "RS256" | "ES256" | "EdDSA";
  /** What `--jwt-key` is given: the secret or the public key's PEM. */
  material: string;
  /** The public key as a JWK (asymmetric kinds). */
  jwk?: JsonWebKey;
  /** Signs a payload the right way. */
  sign(payload: Record<string, unknown>, kid?: string): Promise<string>;
}

/** base64url of bytes or text. */
export function b64url(data: Uint8Array | string): string {
  const bytes = typeof data === "string"
    ? new TextEncoder().encode(data)
    : data;
  let text = "";
  for (const byte of bytes) text += String.fromCharCode(byte);
  return btoa(text).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** A PEM "PUBLIC KEY" of an SPKI key. */
export async function spkiPem(key: CryptoKey): Promise<string> {
  const der = new Uint8Array(await crypto.subtle.exportKey("spki", key));
  let text = "";
  for (const byte of der) text += String.fromCharCode(byte);
  const lines = btoa(text).match(/.{1,64}/g)!.join("\n");
  return `-----BEGIN PUBLIC KEY-----\n${lines}\n-----END PUBLIC KEY-----\n`;
}

/** A PEM "PRIVATE KEY" of a PKCS#8 key. */
export async function pkcs8Pem(key: CryptoKey): Promise<string> {
  const der = new Uint8Array(await crypto.subtle.exportKey("pkcs8", key));
  let text = "";
  for (const byte of der) text += String.fromCharCode(byte);
  const lines = btoa(text).match(/.{1,64}/g)!.join("\n");
  return `-----BEGIN PRIVATE KEY-----\n${lines}\n-----END PRIVATE KEY-----\n`;
}

const PARAMS = {
  RSA: {
    name: "RSASSA-PKCS1-v1_5",
    modulusLength: 2048,
    publicExponent: new Uint8Array([1, 0, 1]),
    hash: "SHA-256",
  },
  EC: { name: "ECDSA", namedCurve: "P-256" },
  EdDSA: { name: "Ed25519" },
} as const;

/** A signed token from a private key and an explicit header. */
async function signWith(
  privateKey: CryptoKey,
  alg: KeyKind["alg"],
  payload: Record<string, unknown>,
  kid?: string,
): Promise<string> {
  const header = b64url(JSON.stringify({ alg, typ: "JWT", kid }));
  const body = b64url(JSON.stringify(payload));
  const params = alg === "RS256"
    ? { name: "RSASSA-PKCS1-v1_5" }
    : alg === "ES256"
    ? { name: "ECDSA", hash: "SHA-256" }
    : { name: "Ed25519" };
  const signature = await crypto.subtle.sign(
    params,
    privateKey,
    new TextEncoder().encode(`${header}.${body}`),
  );
  return `${header}.${body}.${b64url(new Uint8Array(signature))}`;
}

/** Makes a key of one kind. */
export async function makeKey(name: KeyKind["name"]): Promise<KeyKind> {
  if (name === "HMAC") {
    const secret = `test-secret-${crypto.randomUUID()}`;
    return {
      name,
      alg: "HS256",
      material: secret,
      sign: (payload) => sign(payload, secret, "HS256"),
    };
  }
  const pair = await crypto.subtle.generateKey(PARAMS[name], true, [
    "sign",
    "verify",
  ]) as CryptoKeyPair;
  const alg = name === "RSA" ? "RS256" : name === "EC" ? "ES256" : "EdDSA";
  return {
    name,
    alg,
    material: await spkiPem(pair.publicKey),
    jwk: await crypto.subtle.exportKey("jwk", pair.publicKey),
    sign: (payload, kid) => signWith(pair.privateKey, alg, payload, kid),
  };
}

/** An unsigned token (`alg: none`). */
export function noneToken(payload: Record<string, unknown>): string {
  return `${b64url(JSON.stringify({ alg: "none", typ: "JWT" }))}.${
    b64url(JSON.stringify(payload))
  }.`;
}

/**
 * An HS256 token whose HMAC key is the public key's text: what a forger
 * sends to a verifier that lets the token pick the algorithm.
 */
export function confusedToken(
  publicMaterial: string,
  payload: Record<string, unknown>,
): Promise<string> {
  return sign(payload, publicMaterial, "HS256");
}

/** The token with one character of its payload changed. */
export function tamperPayload(token: string): string {
  const [header, payload, signature] = token.split(".");
  const claims = JSON.parse(
    atob(payload.replace(/-/g, "+").replace(/_/g, "/")),
  );
  claims.wsevent = { subscribe: ["*"], publish: ["*"] };
  return `${header}.${b64url(JSON.stringify(claims))}.${signature}`;
}

/** The token with its signature's first character changed. */
export function tamperSignature(token: string): string {
  const dot = token.lastIndexOf(".") + 1;
  const first = token[dot] === "A" ? "B" : "A";
  return token.slice(0, dot) + first + token.slice(dot + 1);
}

/** Seconds since the epoch. */
export function nowSeconds(): number {
  return Math.floor(Date.now() / 1000);
}
