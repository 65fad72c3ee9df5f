/**
 * Hiding the credentials of a URL (user and password, token-like query
 * parameters) wherever it is shown: status pages, metrics labels, start-up
 * lines, logs and error answers. Pure.
 *
 * @module
 */

/**
 * Query parameter names whose values are secrets, compared in lower case
 * without `-`, `_` and `.` (so `access-token`, `Access_Token` and
 * `accesstoken` are one name).
 */
const SECRET_PARAMS: ReadonlySet<string> = new Set([
  "key",
  "sig",
  "pass",
  "pwd",
  "code",
]);

/** Parts of a parameter name that make its value a secret. */
const SECRET_PARTS =
  /token|secret|passw|jwt|auth|apikey|signature|session|credential|bearer|key$/;

/** Whether a query parameter's value is a secret, judged by its name. */
function isSecretName(name: string): boolean {
  const plain = name.toLowerCase().replace(/[-_.]/g, "");
  return SECRET_PARAMS.has(plain) || SECRET_PARTS.test(plain);
}

/** What a hidden secret is shown as. */
const HIDDEN = "***";

/**
 * Shows a URL with its credentials hidden: a user and password become
 * `***`, and so does the value of every query parameter named like a secret
 * (`token`, `access-token`, `jwt`, `key`, `password`, `secret`, `sig`, ...)
 * and the fragment. Text
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
    if (isSecretName(name)) copy.searchParams.set(name, HIDDEN);
  }
  // A fragment is never sent, but it may carry a token (`#access_token=`).
  if (copy.hash !== "") copy.hash = HIDDEN;
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
  const secrets = [url.username, url.password, url.hash.slice(1)];
  for (const [name, value] of url.searchParams) {
    if (isSecretName(name)) secrets.push(value);
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

/**
 * Hides credentials in text that should hold a URL or an address but may
 * not parse (a bad flag value quoted in its error message): a user and
 * password before `@` and the values of secret-like query parameters
 * become `***`, and so does a fragment.
 *
 * @example Usage
 * ```ts
 * import { redactText } from "./redact.ts";
 * redactText("ftp://alice:pw@h/e?token=abc"); // "ftp://***@h/e?token=***"
 * ```
 *
 * @param text The text as given.
 * @returns The text with its credentials replaced by `***`.
 */
export function redactText(text: string): string {
  return text
    .replace(/^((?:[a-z][a-z0-9+.-]*:)?\/\/)?[^/?#]*@/i, `$1${HIDDEN}@`)
    .replace(
      /([?&;])([^=&;#]*)=([^&;#]*)/g,
      (all, sep: string, name: string) =>
        isSecretName(safeDecode(name)) ? `${sep}${name}=${HIDDEN}` : all,
    )
    .replace(/#.*$/s, `#${HIDDEN}`);
}
