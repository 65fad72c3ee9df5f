import assert from "node:assert/strict";
import { test } from "node:test";
import {
  plotSoak,
  quantile,
  slope,
  type SoakSample,
  tableOf,
} from "../../bench/lib/soak_report.ts";

function sample(t: number, rss: number): SoakSample {
  return {
    t,
    originRssMb: rss,
    originHeapMb: rss / 4,
    originFds: 30,
    originLoopP99Ms: 2,
    relayRssMb: 60,
    relayFds: 12,
    relayLoopP99Ms: 3,
    deliveryP50Ms: 1,
    deliveryP99Ms: t,
    published: t * 10,
    delivered: t * 10_000,
    subscribers: 1000,
    churned: t * 5,
  };
}

test("slope() is the least-squares slope, 0 without two distinct x", () => {
  assert.equal(slope([[0, 1], [1, 3], [2, 5]]), 2);
  assert.equal(slope([[0, 5], [1, 4], [2, 6], [3, 5]]), 0.2);
  assert.equal(slope([[1, 1]]), 0);
  assert.equal(slope([[1, 1], [1, 2]]), 0);
});

test("quantile() picks by rank and is 0 for no values", () => {
  const values = Array.from({ length: 100 }, (_, i) => 100 - i);
  assert.equal(quantile(values, 0.5), 51);
  assert.equal(quantile(values, 0.99), 100);
  assert.equal(quantile([], 0.99), 0);
});

test("tableOf() writes one row per slot with the slot's largest p99", () => {
  const samples = [5, 10, 60, 65, 120].map((t) => sample(t, 100 + t));
  const rows = tableOf(samples, 60).trimEnd().split("\n");
  // 5, 10 and 60 s in the first minute; 65 and 120 s in the second.
  assert.equal(rows.length, 2 + 2);
  assert.match(rows[2], /^\| 1\.0 \| 160\.0 \| 40\.0 \| 30 \|/);
  assert.match(rows[2], /\| 1\.0 \/ 60\.0 \| 600 \| 600000 \| 300 \|$/);
  assert.match(rows[3], /^\| 2\.0 \| 220\.0 \|/);
  assert.match(rows[3], /\| 1\.0 \/ 120\.0 \|/);
});

test("plotSoak() draws a polyline per series and a line per restart, with escaped text", () => {
  const samples = [0, 30, 60, 90].map((t) => sample(t, 100 + t));
  const svg = plotSoak(samples, { title: "a < b & c", restarts: [45] });
  assert.match(svg, /^<svg xmlns="http:\/\/www\.w3\.org\/2000\/svg"/);
  assert.match(svg, /<\/svg>\n$/);
  // Nine series with figures; the after-GC one has none here.
  assert.equal(svg.match(/<polyline /g)?.length, 9);
  assert.ok(!svg.includes("NaN"));
  const collected = plotSoak(
    samples.map((s) => ({ ...s, originRssAfterGcMb: 90 })),
    { title: "t", restarts: [] },
  );
  assert.equal(collected.match(/<polyline /g)?.length, 10);
  assert.equal(svg.match(/stroke-dasharray/g)?.length, 4);
  assert.ok(svg.includes("a &lt; b &amp; c"));
  // Every polyline has one point per sample, inside the plot.
  for (const [, points] of svg.matchAll(/points="([^"]*)"/g)) {
    const pairs = points.split(" ").map((p) => p.split(",").map(Number));
    assert.equal(pairs.length, 4);
    for (const [x, y] of pairs) {
      assert.ok(x >= 70 && x <= 730 && y > 0 && y < 800, `${x},${y}`);
    }
  }
});

/** A sample of a run with the Redis engine: B, read lags, redis-server. */
function engineSample(t: number, rss: number): SoakSample {
  return {
    ...sample(t, rss),
    secondRssMb: rss + 1,
    secondHeapMb: 7,
    secondFds: 31,
    secondLoopP99Ms: 4,
    originReadLagMs: 1.5,
    secondReadLagMs: 2.5,
    redisRssMb: 12,
    redisCpuPercent: 0.4,
  };
}

test("tableOf() of a Redis engine run has B's, the read lags' and redis-server's columns", () => {
  const rows = tableOf([5, 60, 65].map((t) => engineSample(t, 100 + t)), 60)
    .trimEnd().split("\n");
  assert.equal(rows.length, 2 + 2);
  assert.match(rows[0], /\| B RSS MB \|.*\| redis-server CPU % \|/);
  // Every row has as many cells as the header.
  const cells = (row: string) => row.split(" | ").length;
  for (const row of rows) assert.equal(cells(row), cells(rows[0]));
  assert.match(
    rows[2],
    /^\| 1\.0 \| 160\.0 \| 40\.0 \| 30 \| 2\.0 \| 161\.0 \| 7\.0 \| 31 \| 4\.0 \| 1\.5 \/ 2\.5 \| 12\.0 \| 0\.4 \| 60\.0 \| 12 \|/,
  );
  // A sample without B (restarting) shows NaN cells, not a crash.
  const hole = tableOf([{ ...engineSample(5, 100), secondRssMb: NaN }], 60);
  assert.match(hole, /\| NaN \|/);
  // The memory engine's table is unchanged: no B column.
  assert.doesNotMatch(tableOf([sample(5, 100)], 60), /B RSS/);
});

test("plotSoak() of a Redis engine run adds B, the read lag and redis-server panels and dots B's restarts", () => {
  const samples = [0, 30, 60, 90].map((t) => engineSample(t, 100 + t));
  const svg = plotSoak(samples, {
    title: "t",
    restarts: [45],
    secondRestarts: [20, 70],
  });
  // Memory 5 (no after-GC figure), fds 3, loop 3, read lag 2, redis CPU 1,
  // delivery 2.
  assert.equal(svg.match(/<polyline /g)?.length, 16);
  assert.ok(svg.includes("Engine read lag"));
  assert.ok(svg.includes("redis-server CPU"));
  assert.ok(svg.includes("dotted: B restarts"));
  // Six panels: one dashed line each for the relay, two dotted for B.
  assert.equal(svg.match(/stroke-dasharray="4 3"/g)?.length, 6);
  assert.equal(svg.match(/stroke-dasharray="1 3"/g)?.length, 12);
  assert.ok(!svg.includes("NaN"));
  // A memory run's plot has none of these.
  const memory = plotSoak([0, 30].map((t) => sample(t, 100)), {
    title: "t",
    restarts: [],
    secondRestarts: [10],
  });
  assert.ok(!memory.includes("Engine read lag"));
  assert.ok(!memory.includes("B restarts"));
});
