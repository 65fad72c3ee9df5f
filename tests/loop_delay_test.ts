import assert from "node:assert/strict";
import { test } from "node:test";
import { monitorLoopDelay } from "../src/_loop_delay.ts";

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

test("monitorLoopDelay() reports a blocked event loop as its max, and little otherwise", async () => {
  const monitor = monitorLoopDelay({ intervalMs: 20, windowSamples: 50 });
  try {
    assert.deepEqual(monitor.read(), {
      p50Ms: 0,
      p99Ms: 0,
      maxMs: 0,
      samples: 0,
    });
    await sleep(200);
    const idle = monitor.read();
    assert.ok(idle.samples >= 3, `samples: ${idle.samples}`);
    const blockedFor = 300;
    const until = performance.now() + blockedFor;
    while (performance.now() < until) {
      // Busy: no timer can run.
    }
    await sleep(100);
    const blocked = monitor.read();
    assert.ok(blocked.maxMs >= blockedFor - 40, `max ${blocked.maxMs}`);
    // One stall is one late sample, not a run of them: the median stays low.
    assert.ok(blocked.p50Ms < blockedFor / 2, `p50 ${blocked.p50Ms}`);
  } finally {
    monitor.stop();
  }
});

test("monitorLoopDelay() keeps only the latest samples", async () => {
  const monitor = monitorLoopDelay({ intervalMs: 10, windowSamples: 4 });
  try {
    await sleep(15);
    const until = performance.now() + 400;
    while (performance.now() < until) {
      // Busy.
    }
    await sleep(150);
    const read = monitor.read();
    assert.equal(read.samples, 4);
    assert.ok(read.maxMs < 300, `the stall left the window: ${read.maxMs}`);
  } finally {
    monitor.stop();
  }
});
