import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createLogger, escapeControl } from "../src/log.ts";

describe("escapeControl()", () => {
  test("escapeControl() escapes CR, LF, TAB, ESC, NUL, DEL, C1 and line separators", () => {
    assert.equal(
      escapeControl("a\r\nb\tc\x1b[31md\0e\x7ff\x85g\u2028h"),
      "a\\r\\nb\\tc\\x1b[31md\\x00e\\x7ff\\x85g\\u2028h",
    );
  });

  test("escapeControl() leaves printable text, quotes and non-ASCII letters alone", () => {
    const text = 'upstream "x" closed (1000 bye) é 日本';
    assert.equal(escapeControl(text), text);
  });
});

describe("createLogger() with network text", () => {
  test("createLogger() writes one text line whatever a message and its fields hold", () => {
    const lines: string[] = [];
    const log = createLogger({
      level: "info",
      json: false,
      write: (line) => lines.push(line),
    });
    log.warn(
      "closed (1000 bye\n2026-01-01T00:00:00.000Z WARN \x1b[31mforged)",
      {
        reason: "x\ny",
      },
    );
    assert.equal(lines.length, 1);
    assert.equal(lines[0].split("\n").length, 2, "one newline, at the end");
    assert.equal(lines[0].includes("\x1b"), false);
    assert.match(lines[0], /bye\\n2026-01-01/);
  });

  test("createLogger() in JSON keeps each line one JSON object", () => {
    const lines: string[] = [];
    const log = createLogger({
      level: "info",
      json: true,
      write: (line) => lines.push(line),
    });
    log.info("a\nb\x1bc");
    assert.equal(lines[0].split("\n").length, 2);
    assert.equal(JSON.parse(lines[0]).message, "a\nb\x1bc");
  });
});
