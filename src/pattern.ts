/**
 * Topic patterns, as `--serve-path` and a token's `wsevent` claim write
 * them: a plain path names one topic, `prefix/*` names every topic below
 * the prefix (one or more segments), and `*` alone names every topic.
 *
 * @module
 */

/**
 * Tells whether a topic path matches a pattern.
 *
 * @example Usage
 * ```ts
 * import { matchesPattern } from "./pattern.ts";
 * console.log(matchesPattern("rooms/*", "rooms/42")); // true
 * console.log(matchesPattern("rooms/*", "rooms")); // false
 * console.log(matchesPattern("rooms/42", "rooms/42")); // true
 * ```
 *
 * @param pattern A path, `prefix/*` or `*`, without a leading slash.
 * @param path A topic path, without a leading slash.
 * @returns True when the pattern names the topic.
 */
export function matchesPattern(pattern: string, path: string): boolean {
  if (pattern === "*") return path.length > 0;
  if (pattern.endsWith("/*")) {
    const prefix = pattern.slice(0, -1);
    return path.length > prefix.length && path.startsWith(prefix);
  }
  return pattern === path;
}

/**
 * Tells whether a path is a pattern (`*` or ends in `/*`) rather than one
 * topic.
 *
 * @param path A path without a leading slash.
 * @returns True for a pattern.
 */
export function isPattern(path: string): boolean {
  return path === "*" || path.endsWith("/*");
}
