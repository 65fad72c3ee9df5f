/**
 * Summarizes soak runs (`bench/soak.ts` output, `soak-<runtime>.json`) as
 * one markdown table: duration, events, deliveries, lost/duplicated/gaps,
 * churn, relay restarts, the origin's RSS slope per hour (over every
 * sample, and over the floor: the least RSS of each five minutes, which a
 * collection would reach), heap slope, and delivery p99 in the first and
 * last five minutes.
 *
 * ```sh
 * node bench/soak_summary.ts docs/soak/soak-node.json docs/soak/soak-deno.json
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

const rows = [
  "| runtime | minutes | events | deliveries | lost | duplicated | gaps | churned | relay restarts | origin RSS MB first → last | RSS slope MB/h (all / floor) | heap slope MB/h | after GC: RSS / heap slope MB/h | delivery p99 ms first → last 5 min |",
  "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
];
for (const file of process.argv.slice(2)) {
  const soak = JSON.parse(readFileSync(file, "utf8")) as SoakFile;
  const s = soak.summary as Record<string, number> & {
    runtime: string;
    originRssMb: { first: number; last: number };
  };
  const warmUpS = Math.min(300, s.durationMin * 60 / 3);
  const floorSlope = slope(floor(soak.samples, warmUpS, 300));
  rows.push(
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
console.log(rows.join("\n"));
