import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createStatusLine } from "../src/status_line.ts";

const CLEAR = "\r\x1b[2K";

/** A status line writing into an array, with Date.now() under the test's control. */
function setup() {
  const writes: string[] = [];
  const realNow = Date.now;
  let now = realNow();
  Date.now = () => now;
  const line = createStatusLine(
    "ws://127.0.0.1:8080/events",
    (text) => writes.push(text),
  );
  return {
    line,
    writes,
    /** The last status line drawn, without the clearing prefix. */
    last: () => writes.at(-1)!.replace(CLEAR, ""),
    advance: (ms: number) => (now += ms),
    done() {
      line.stop();
      Date.now = realNow;
    },
  };
}

describe("createStatusLine()", () => {
  test("createStatusLine() draws state, URL, rate, count, last id and reconnects in place at once", () => {
    const t = setup();
    try {
      assert.equal(t.writes.length, 1);
      assert.ok(t.writes[0].startsWith(CLEAR), "redrawn in place");
      assert.equal(
        t.last(),
        "connecting ws://127.0.0.1:8080/events | 0.0 ev/s | 0 events | last - | reconnects 0",
      );
      t.line.state("open", "connected");
      t.line.event("e-1");
      t.line.event(null);
      t.line.print("a log line");
      assert.match(
        t.last(),
        /^live .* \| 2 events \| last e-1 \| reconnects 0$/,
      );
    } finally {
      t.done();
    }
  });

  test("createStatusLine() counts a reconnect on each open after the first, and prints the reason of a drop on its own line", () => {
    const t = setup();
    try {
      t.line.state("open", "connected to x");
      t.line.state("closed", "upstream x went silent; retrying in 200 ms");
      const reason = t.writes.at(-2)!;
      assert.equal(
        reason,
        `${CLEAR}upstream x went silent; retrying in 200 ms\n`,
        "the reason stays on the terminal above the status line",
      );
      assert.match(t.last(), /^reconnecting .* \| reconnects 0$/);
      t.line.state("connecting", "connecting to x");
      assert.match(t.last(), /^connecting /);
      t.line.state("open", "connected to x");
      assert.match(t.last(), /^live .* \| reconnects 1$/);
      t.line.state("closed", "dropped");
      t.line.state("open", "connected to x");
      assert.match(t.last(), /\| reconnects 2$/);
    } finally {
      t.done();
    }
  });

  test("createStatusLine() shows the rate over the last window of a second or more", () => {
    const t = setup();
    try {
      for (let i = 0; i < 25; i++) t.line.event(`e-${i}`);
      t.advance(500);
      t.line.print("half a second: not a whole window yet");
      assert.match(t.last(), / 0\.0 ev\/s /);
      t.advance(1500);
      t.line.print("two seconds");
      assert.match(t.last(), / 12\.5 ev\/s \| 25 events \| last e-24 /);
      t.advance(2000);
      t.line.print("two quiet seconds");
      assert.match(t.last(), / 0\.0 ev\/s \| 25 events /);
    } finally {
      t.done();
    }
  });

  test("createStatusLine() stop() clears the line and writes nothing afterwards", () => {
    const t = setup();
    t.line.stop();
    const count = t.writes.length;
    assert.equal(t.writes.at(-1), CLEAR);
    t.line.event("e-1");
    t.line.state("closed", "late");
    t.line.print("late");
    assert.equal(t.writes.length, count);
    t.done();
  });
});
