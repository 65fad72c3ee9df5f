/**
 * One-line logs on stderr, with levels and an optional JSON form.
 *
 * @module
 */

import type { LogLevel } from "./config.ts";

/** A logger. */
export interface Logger {
  /** Per-event detail, shown with `--verbose`. */
  debug(message: string, fields?: Record<string, unknown>): void;
  /** Meaningful events: start, upstream connect and loss. */
  info(message: string, fields?: Record<string, unknown>): void;
  /** Rejected requests and recoverable trouble. */
  warn(message: string, fields?: Record<string, unknown>): void;
  /** Failures. */
  error(message: string, fields?: Record<string, unknown>): void;
}

/** C0 and C1 control characters, DEL, and the Unicode line separators. */
// deno-lint-ignore no-control-regex -- matching control characters is the point
const CONTROL = /[\u0000-\u001f\u007f-\u009f\u2028\u2029]/g;

/**
 * Escapes control characters (CR, LF, ESC, ...) as `\n`, `\r` or `\xNN`
 * / `\uNNNN`, so a text log line stays one line and shows no terminal
 * escape codes.
 *
 * @example Usage
 * ```ts
 * import { escapeControl } from "./log.ts";
 * escapeControl("bye\n\x1b[31mforged"); // "bye\\n\\x1b[31mforged"
 * ```
 *
 * @param text Text that may come from the network.
 * @returns The text with every control character escaped.
 */
export function escapeControl(text: string): string {
  return text.replace(CONTROL, (char) => {
    if (char === "\n") return "\\n";
    if (char === "\r") return "\\r";
    if (char === "\t") return "\\t";
    const code = char.charCodeAt(0);
    return code <= 0xff
      ? `\\x${code.toString(16).padStart(2, "0")}`
      : `\\u${code.toString(16).padStart(4, "0")}`;
  });
}

const RANK = { debug: 0, info: 1, warn: 2, error: 3 } as const;
const THRESHOLD: Record<LogLevel, number> = { verbose: 0, info: 1, quiet: 3 };

/**
 * Creates a logger writing whole lines through `write`.
 *
 * @param options Level, form and where lines go.
 * @returns The logger.
 */
export function createLogger(options: {
  level: LogLevel;
  json: boolean;
  write(line: string): void;
}): Logger {
  const threshold = THRESHOLD[options.level];
  const log =
    (level: keyof typeof RANK) =>
    (message: string, fields?: Record<string, unknown>): void => {
      if (RANK[level] < threshold) return;
      const time = new Date().toISOString();
      if (options.json) {
        options.write(
          JSON.stringify({ time, level, message, ...fields }) + "\n",
        );
      } else {
        const extra = fields
          ? " " +
            Object.entries(fields).map(([k, v]) => `${k}=${JSON.stringify(v)}`)
              .join(" ")
          : "";
        // One event, one line: text from the network (close reasons, paths,
        // error messages) must not start a forged line or colour a terminal.
        options.write(
          `${time} ${level.toUpperCase()} ${escapeControl(message)}${
            escapeControl(extra)
          }\n`,
        );
      }
    };
  return {
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
  };
}
