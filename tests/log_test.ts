import { describe, test } from "node:test";
import assert from "node:assert/strict";
import type { LogLevel } from "../src/config.ts";
import { createLogger, type Logger } from "../src/log.ts";

function logger(level: LogLevel, json = false): {
  log: Logger;
  lines: string[];
} {
  const lines: string[] = [];
  return {
    lines,
    log: createLogger({ level, json, write: (line) => lines.push(line) }),
  };
}

function levelsWritten(level: LogLevel): string[] {
  const { log, lines } = logger(level, true);
  log.debug("d");
  log.info("i");
  log.warn("w");
  log.error("e");
  return lines.map((line) => JSON.parse(line).level);
}

describe("createLogger()", () => {
  test("createLogger() writes every level with verbose", () => {
    assert.deepEqual(levelsWritten("verbose"), [
      "debug",
      "info",
      "warn",
      "error",
    ]);
  });

  test("createLogger() hides debug at info", () => {
    assert.deepEqual(levelsWritten("info"), ["info", "warn", "error"]);
  });

  test("createLogger() writes only errors when quiet", () => {
    assert.deepEqual(levelsWritten("quiet"), ["error"]);
  });

  test("createLogger() writes one text line with time, level, message and fields", () => {
    const { log, lines } = logger("info");
    log.warn("refused", { path: "/events", code: 401 });
    assert.equal(lines.length, 1);
    assert.match(
      lines[0],
      /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z WARN refused path="\/events" code=401\n$/,
    );
  });

  test("createLogger() writes one JSON object per line", () => {
    const { log, lines } = logger("info", true);
    log.info("started\nsecond line", { port: 8080 });
    assert.equal(lines.length, 1);
    assert.ok(lines[0].endsWith("\n"));
    assert.equal(lines[0].indexOf("\n"), lines[0].length - 1);
    const record = JSON.parse(lines[0]);
    assert.equal(record.level, "info");
    assert.equal(record.message, "started\nsecond line");
    assert.equal(record.port, 8080);
    assert.ok(!Number.isNaN(Date.parse(record.time)));
  });
});
