/**
 * Percentiles over latency samples.
 *
 * @module
 */

import type { LatencySummary } from "./protocol.ts";

/**
 * Summarizes latency samples in milliseconds. Sorts `samples` in place.
 *
 * @param samples Latencies in milliseconds; only the first `length` are read.
 * @param length How many samples are valid.
 * @returns p50, p99 and max, or NaN when there are no samples.
 */
export function summarizeLatency(
  samples: Float32Array,
  length: number,
): LatencySummary {
  if (length === 0) return { p50: NaN, p99: NaN, max: NaN };
  const sorted = samples.subarray(0, length).sort();
  return {
    p50: percentile(sorted, 0.5),
    p99: percentile(sorted, 0.99),
    max: sorted[length - 1],
  };
}

function percentile(sorted: Float32Array, fraction: number): number {
  const index = Math.min(
    sorted.length - 1,
    Math.ceil(fraction * sorted.length) - 1,
  );
  return sorted[Math.max(0, index)];
}
