/**
 * The engine flags, read and checked: `--engine`, `--engine-prefix` and
 * `--history-ttl`. No I/O.
 *
 * @module
 */

import { UsageError } from "../errors.ts";

/** Which engine an instance runs, with its settings. */
export type EngineConfig =
  | { readonly kind: "memory" }
  | {
    readonly kind: "redis";
    /** `redis://` or `rediss://` (TLS), with user, password and db. */
    readonly url: URL;
    /** Prefix of every key and channel. */
    readonly prefix: string;
    /** Seconds without a publish after which a path's history expires; 0 keeps it. */
    readonly historyTtlSeconds: number;
    /** Longest wait for Redis's answer (a command, or a new connection's handshake). @default {5000} */
    readonly commandTimeoutMs?: number;
  };

const EXPECTED =
  "expected memory, redis://[user:password@]host[:port][/db] or rediss://...";

/**
 * Shows an engine URL with its password hidden, for logs and errors.
 *
 * @example Usage
 * ```ts
 * import { redactEngineUrl } from "./config.ts";
 * console.log(redactEngineUrl("redis://app:s3cret@db:6379/2")); // "redis://app:***@db:6379/2"
 * ```
 *
 * @param text The URL as given.
 * @returns The URL with the password replaced by `***`.
 */
export function redactEngineUrl(text: string): string {
  // Text, not URL: a URL that does not parse must not leak either.
  return text.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/]*:)[^@/]*@/i, "$1***@");
}

/**
 * Reads the `--engine` value.
 *
 * @example Usage
 * ```ts
 * import { parseEngineUrl } from "./config.ts";
 * console.log(parseEngineUrl("redis://127.0.0.1:6380/1")?.port); // "6380"
 * console.log(parseEngineUrl("memory")); // null
 * ```
 *
 * @param text `memory` or a Redis URL.
 * @returns The Redis URL, or null for the memory engine.
 * @throws {UsageError} When the value is neither, without showing a password.
 */
export function parseEngineUrl(text: string): URL | null {
  if (text === "memory") return null;
  const fail = (why: string): never => {
    throw new UsageError(
      `Cannot parse flag -engine: ${why}, received "${redactEngineUrl(text)}"`,
    );
  };
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return fail(EXPECTED);
  }
  if (url.protocol !== "redis:" && url.protocol !== "rediss:") {
    return fail(EXPECTED);
  }
  if (url.hostname === "") return fail("the URL has no host");
  if (!/^(\/([0-9]{1,5})?)?$/.test(url.pathname)) {
    return fail("the path must be a database number such as /0");
  }
  if (url.search !== "" || url.hash !== "") {
    return fail("the URL takes no query or fragment");
  }
  try {
    decodeURIComponent(url.username);
    decodeURIComponent(url.password);
  } catch {
    return fail("malformed percent-encoding in the user or password");
  }
  return url;
}

const UNITS: Record<string, number> = { "": 1, s: 1, m: 60, h: 3600, d: 86400 };

/**
 * Reads the `--history-ttl` value: seconds, or a number with `s`, `m`, `h`
 * or `d`.
 *
 * @example Usage
 * ```ts
 * import { parseHistoryTtl } from "./config.ts";
 * console.log(parseHistoryTtl("10m")); // 600
 * ```
 *
 * @param text The value.
 * @returns Seconds; 0 keeps the history until trimmed by count.
 * @throws {UsageError} On anything else.
 */
export function parseHistoryTtl(text: string): number {
  const match = /^([0-9]{1,9})([smhd]?)$/.exec(text);
  const seconds = match === null ? NaN : Number(match[1]) * UNITS[match[2]];
  if (!Number.isSafeInteger(seconds) || seconds > 365 * 86400) {
    throw new UsageError(
      `Cannot parse flag -history-ttl: expected seconds or a duration such as 90s, 10m, 2h or 7d (at most 365d), received "${text}"`,
    );
  }
  return seconds;
}

/**
 * Builds the engine's configuration from the three flags' values.
 *
 * @param engine The `--engine` value.
 * @param prefix The `--engine-prefix` value.
 * @param historyTtl The `--history-ttl` value.
 * @returns The configuration.
 * @throws {UsageError} On a bad value, or a history TTL without Redis.
 */
export function readEngineConfig(
  engine: string,
  prefix: string,
  historyTtl: string,
): EngineConfig {
  const url = parseEngineUrl(engine);
  const historyTtlSeconds = parseHistoryTtl(historyTtl);
  if (url === null) {
    if (historyTtlSeconds !== 0) {
      throw new UsageError(
        "Cannot use -history-ttl with the memory engine: it needs -engine redis://...",
      );
    }
    return { kind: "memory" };
  }
  if (!/^[\x21-\x7e]{0,64}$/.test(prefix) || /[{}]/.test(prefix)) {
    throw new UsageError(
      `Cannot parse flag -engine-prefix: expected up to 64 printable characters without spaces or braces, received "${prefix}"`,
    );
  }
  return { kind: "redis", url, prefix, historyTtlSeconds };
}
