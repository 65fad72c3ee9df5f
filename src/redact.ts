/**
 * Hiding the credentials of a URL (user and password, token-like query
 * parameters) wherever it is shown: status pages, metrics labels, start-up
 * lines, logs and error answers. Pure.
 *
 * @module
 */

/** Query parameters whose values are secrets (compared in lower case). */
const SECRET_PARAMS: ReadonlySet<string> = new Set([
  "token",
  "access_token",
  "auth",
  "key",
  "api_key",
  "apikey",
  "password",
  "secret",
  "signature",
  "sig",
]);

/** What a hidden secret is shown as. */
const HIDDEN = "***";

/**
 * Shows a URL with its credentials hidden: a user and password become
 * `***`, and so does the value of every query parameter named like a secret
 * (`token`, `access_token`, `key`, `password`, `secret`, `sig`, ...). Text
 * that is not a URL is shown as `<invalid URL>`, since it may hold a secret
 * in a form this cannot recognize.
 *
 * @example Usage
 * ```ts
 * import { redactUrl } from "./redact.ts";
 * redactUrl("ws://user:pw@host:8080/events?token=abc&format=json");
 * // "ws://***:***@host:8080/events?token=***&format=json"
 * ```
 *
 * @param url The URL, parsed or as text.
 * @returns The URL text, credentials replaced by `***`.
 */
export function redactUrl(url: URL | string): string {
  let copy: URL;
  try {
    copy = new URL(url);
  } catch {
    return "<invalid URL>";
  }
  if (copy.username !== "") copy.username = HIDDEN;
  if (copy.password !== "") copy.password = HIDDEN;
  const names = [...new Set(copy.searchParams.keys())];
  for (const name of names) {
    if (SECRET_PARAMS.has(name.toLowerCase())) {
      copy.searchParams.set(name, HIDDEN);
    }
  }
  return copy.href;
}

/**
 * Hides the credentials of `url` inside free text, such as an error message
 * from a failed connection that quotes the URL it was given.
 *
 * @param text The text.
 * @param url The URL whose secrets may appear in it.
 * @returns The text with each secret of the URL replaced by `***`.
 */
export function redactSecretsIn(text: string, url: URL): string {
  const secrets = [url.username, url.password];
  for (const [name, value] of url.searchParams) {
    if (SECRET_PARAMS.has(name.toLowerCase())) secrets.push(value);
  }
  let out = text;
  for (const secret of secrets) {
    if (secret.length < 2) continue;
    out = out.split(secret).join(HIDDEN);
    const decoded = safeDecode(secret);
    if (decoded !== secret && decoded.length >= 2) {
      out = out.split(decoded).join(HIDDEN);
    }
  }
  return out;
}

function safeDecode(text: string): string {
  try {
    return decodeURIComponent(text);
  } catch {
    return text;
  }
}
