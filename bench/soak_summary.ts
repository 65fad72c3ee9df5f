/**
 * Summarizes soak runs (`bench/soak.ts` output, `soak-<runtime>.json`) as
 * one markdown table: duration, events, deliveries, lost/duplicated/gaps,
 * churn, relay restarts, the origin's RSS slope per hour (over every
 * sample, and over the floor: the least RSS of each five minutes, which a
 * collection would reach), heap slope, and delivery p99 in the first and
 * last five minutes. Runs with the Redis engine (`soak-<runtime>-redis.json`)
 * get a second table with their own columns: events published to A and B,
 * ids differing between subscribers, restarts of the relay and of B, B's
 * RSS, the engine read lag and redis-server's RSS and CPU.
 *
 * ```sh
 * node bench/soak_summary.ts docs/soak/soak-node.json docs/soak/soak-deno.json
 * node bench/soak_summary.ts docs/soak/soak-*.json    # both kinds
 * ```
 *
 * @module
 */

import { readFileSync } from "node:fs";
import process from "node:process";
import { slope, type SoakSample } from "./lib/soak_report.ts";

interface SoakFile {
  summary: Record<string, number | string | Record<string, number>>;
  restarts: number[];
  samples: SoakSample[];
}

/** The least RSS of each `windowS` seconds after `fromS`, as (hours, MB). */
function floor(
  samples: readonly SoakSample[],
  fromS: number,
  windowS: number,
): [number, number][] {
  const out: [number, number][] = [];
  let slot: SoakSample[] = [];
  let end = fromS + windowS;
  const flush = () => {
    const finite = slot.filter((s) => Number.isFinite(s.originRssMb));
    if (finite.length === 0) return;
    const least = finite.reduce((a, b) =>
      a.originRssMb <= b.originRssMb ? a : b
    );
    out.push([least.t / 3600, least.originRssMb]);
  };
  for (const sample of samples) {
    if (sample.t <= fromS) continue;
    if (sample.t > end) {
      flush();
      slot = [];
      while (sample.t > end) end += windowS;
    }
    slot.push(sample);
  }
  flush();
  return out;
}

const rows: string[] = [];
const memoryRows = [
  "| runtime | minutes | events | deliveries | lost | duplicated | gaps | churned | relay restarts | origin RSS MB first → last | RSS slope MB/h (all / floor) | heap slope MB/h | after GC: RSS / heap slope MB/h | delivery p99 ms first → last 5 min |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
];
const redisRows = [
  "| runtime | minutes | events to A / B | deliveries | lost | duplicated | gaps | ids differing | churned | restarts relay / B | subscriber reconnects A / B / relay | A RSS MB first → last | A RSS slope MB/h (all / floor) | B RSS MB first → last | engine read lag max ms A / B | redis-server RSS MB first → last | redis-server CPU s | delivery p99 ms first → last 5 min |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
];
const mb = (value: number | undefined) =>
  value === undefined ? "-" : value.toFixed(0);
for (const file of process.argv.slice(2)) {
  const soak = JSON.parse(readFileSync(file, "utf8")) as SoakFile;
  const s = soak.summary as Record<string, number> & {
    runtime: string;
    engine?: string;
    originRssMb: { first: number; last: number };
  };
  const warmUpS = Math.min(300, s.durationMin * 60 / 3);
  const floorSlope = slope(floor(soak.samples, warmUpS, 300));
  if (s.engine === "redis") {
    const e = soak.summary as unknown as {
      publishedTo: { a: number; b: number };
      secondRestarts: number;
      subscriberReconnects?: Record<string, number>;
      secondRssMb: { first?: number; last?: number };
      readLagMaxMs: { a: number | null; b: number | null };
      redisRssMb: { first?: number; last?: number };
      redisCpuSeconds?: number;
    };
    redisRows.push(
      `| ${s.runtime} | ${s.durationMin} | ${e.publishedTo.a} / ${e.publishedTo.b} | ${s.delivered} | ${s.lost} | ${s.duplicates} | ${s.gaps} | ${s.idMismatches} | ${s.churned} | ${s.relayRestarts} / ${e.secondRestarts} | ${
        ["a", "b", "relay"].map((p) => e.subscriberReconnects?.[p] ?? "-")
          .join(" / ")
      } | ${mb(s.originRssMb.first)} → ${
        mb(s.originRssMb.last)
      } | ${s.rssSlopeMbPerHour} / ${floorSlope.toFixed(1)} | ${
        mb(e.secondRssMb.first)
      } → ${
        mb(e.secondRssMb.last)
      } | ${e.readLagMaxMs.a} / ${e.readLagMaxMs.b} | ${
        mb(e.redisRssMb.first)
      } → ${mb(e.redisRssMb.last)} | ${
        e.redisCpuSeconds?.toFixed(1) ?? "-"
      } | ${s.deliveryP99FirstMs} → ${s.deliveryP99LastMs} |`,
    );
    continue;
  }
  memoryRows.push(
    `| ${s.runtime} | ${s.durationMin} | ${s.published} | ${s.delivered} | ${s.lost} | ${s.duplicates} | ${s.gaps} | ${s.churned} | ${s.relayRestarts} | ${
      s.originRssMb.first.toFixed(0)
    } → ${s.originRssMb.last.toFixed(0)} | ${s.rssSlopeMbPerHour} / ${
      floorSlope.toFixed(1)
    } | ${s.heapSlopeMbPerHour} | ${
      s.rssAfterGcSlopeMbPerHour === undefined
        ? "not sampled"
        : `${s.rssAfterGcSlopeMbPerHour} / ${s.heapAfterGcSlopeMbPerHour}`
    } | ${s.deliveryP99FirstMs} → ${s.deliveryP99LastMs} |`,
  );
}
if (memoryRows.length > 2) rows.push(...memoryRows);
if (redisRows.length > 2) {
  if (rows.length > 0) rows.push("");
  rows.push(...redisRows);
}
console.log(rows.join("\n"));
