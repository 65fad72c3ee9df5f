/**
 * Checks that a request's URL can be trusted for routing: the runtimes
 * build `request.url` from the Host header and the request target, so a
 * Host such as `127.0.0.1/events?token=x#` would move the path, and one
 * such as `[` would make the URL unparsable.
 *
 * @module
 */

/** A host name or IP literal and an optional port, nothing else. */
const HOST = /^(?:[A-Za-z0-9._~-]+|\[[0-9A-Fa-f:.]+\])(?::([0-9]{1,5}))?$/;

/**
 * Whether a request's Host header is a plain `host[:port]` (or absent):
 * no path, query, fragment, user, space or percent sign, a port up to
 * 65535. Only then is the path of `request.url` the request target's.
 *
 * @example Usage
 * ```ts
 * import { hostHeaderValid } from "./request_target.ts";
 * hostHeaderValid(new Request("http://x/", { headers: { host: "a:80" } })); // true
 * ```
 *
 * @param request The request.
 * @returns True when the URL may be routed by.
 */
export function hostHeaderValid(request: Request): boolean {
  const host = request.headers.get("host");
  if (host === null) return true;
  const match = HOST.exec(host);
  return match !== null &&
    (match[1] === undefined || Number(match[1]) <= 65535);
}

/**
 * Parses a request's URL, or returns null when it cannot be parsed.
 *
 * @param url The request's URL.
 * @returns The URL or null.
 */
export function parseRequestUrl(url: string): URL | null {
  try {
    return new URL(url);
  } catch {
    return null;
  }
}
