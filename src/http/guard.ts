/**
 * Tokens and origins: who may subscribe and publish. Checked before any
 * upgrade, so a refused WebSocket gets a plain HTTP answer.
 *
 * @module
 */

const ENCODER = new TextEncoder();

/**
 * Compares two secrets in time that depends only on their lengths.
 *
 * @param given What the client sent.
 * @param expected The configured token.
 * @returns True when equal.
 */
export function timingSafeEqual(given: string, expected: string): boolean {
  const a = ENCODER.encode(given);
  const b = ENCODER.encode(expected);
  let diff = a.length ^ b.length;
  for (let i = 0; i < b.length; i++) {
    diff |= (a[i % (a.length || 1)] ?? 0) ^ b[i];
  }
  return diff === 0;
}

/**
 * Reads the token of a request: `Authorization: Bearer <token>`, or, where
 * browsers cannot set headers (WebSocket, EventSource), `?token=`.
 *
 * @param request The request.
 * @param allowQuery Whether `?token=` counts.
 * @returns The token or null.
 */
export function requestToken(
  request: Request,
  allowQuery: boolean,
): string | null {
  const header = request.headers.get("authorization");
  if (header !== null) {
    const match = /^Bearer\s+(.+)$/i.exec(header.trim());
    return match ? match[1] : null;
  }
  if (!allowQuery) return null;
  return new URL(request.url).searchParams.get("token");
}

/**
 * Decides whether a browser origin may use the stream. Requests without an
 * Origin header (curl, services) pass. With a list, only the origins on it
 * pass, compared whole (scheme, host and port): there is no implicit
 * same-origin, since a page that rebinds its DNS name to this instance
 * chooses both Origin and Host. An instance's own pages (the live view)
 * need their origin on the list too.
 *
 * @param request The request.
 * @param allowed Allowed origins, as `URL.origin` gives them; empty allows
 * all.
 * @returns True when allowed.
 */
export function originAllowed(
  request: Request,
  allowed: readonly string[],
): boolean {
  if (allowed.length === 0) return true;
  const origin = request.headers.get("origin");
  if (origin === null) return true;
  return allowed.includes(origin);
}
