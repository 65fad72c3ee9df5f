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
        options.write(`${time} ${level.toUpperCase()} ${message}${extra}\n`);
      }
    };
  return {
    debug: log("debug"),
    info: log("info"),
    warn: log("warn"),
    error: log("error"),
  };
}
