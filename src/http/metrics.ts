/**
 * `/metrics` in the Prometheus text format.
 *
 * @module
 */

import type { Engine } from "../engine/types.ts";
import type { Hub } from "../hub.ts";
import type { PatternStats, TopicPatterns } from "../topics.ts";
import type { UpstreamStatus } from "./types.ts";

function escapeLabel(value: string): string {
  return value.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(
    /\n/g,
    "\\n",
  );
}

type MetricWriter = (
  name: string,
  type: string,
  help: string,
  samples: [string, number][],
) => void;

/** Series of on-demand topics: one per pattern, plus counters. */
function formatPatternMetrics(
  patterns: TopicPatterns,
  metric: MetricWriter,
): void {
  const stats = patterns.stats();
  const per = (value: (s: PatternStats) => number): [string, number][] =>
    stats.map((s) => [`{pattern="${escapeLabel(s.pattern)}"}`, value(s)]);
  metric(
    "wsevent_pattern_topics",
    "gauge",
    "Topics created on demand below each served pattern.",
    per((s) => s.topics),
  );
  metric(
    "wsevent_pattern_subscribers",
    "gauge",
    "Current subscribers of the topics below each pattern.",
    per((s) => s.subscribers),
  );
  metric(
    "wsevent_pattern_replay_buffer_events",
    "gauge",
    "Events in the replay buffers of the topics below each pattern.",
    per((s) => s.buffered),
  );
  metric(
    "wsevent_pattern_replay_buffer_bytes",
    "gauge",
    "Payload bytes in the replay buffers of the topics below each pattern.",
    per((s) => s.bufferedBytes),
  );
  metric(
    "wsevent_topics_max",
    "gauge",
    "Topics that may be created on demand (-max-topics).",
    [["", patterns.maxTopics]],
  );
  metric(
    "wsevent_topics_created_total",
    "counter",
    "Topics created on demand.",
    [["", patterns.created]],
  );
  metric(
    "wsevent_topics_dropped_total",
    "counter",
    "On-demand topics dropped after -topic-ttl idle.",
    [["", patterns.dropped]],
  );
  metric(
    "wsevent_topic_limit_refusals_total",
    "counter",
    "New topics refused at -max-topics.",
    [["", patterns.refused]],
  );
}

/**
 * Formats the hub's counters and gauges.
 *
 * @param hub The hub.
 * @param upstreams Relay upstreams.
 * @param extra Counters kept by the HTTP layer (rejects), by name.
 * @param engine The engine, whose connection is shown when it has a store.
 * @returns Prometheus text.
 */
export function formatMetrics(
  hub: Hub,
  upstreams: readonly UpstreamStatus[],
  extra: Readonly<Record<string, number>>,
  engine?: Engine,
  patterns?: TopicPatterns | null,
): string {
  const lines: string[] = [];
  const metric = (
    name: string,
    type: string,
    help: string,
    samples: [string, number][],
  ): void => {
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} ${type}`);
    for (const [labels, value] of samples) {
      lines.push(`${name}${labels} ${value}`);
    }
  };
  const { stats, counts } = hub;
  metric("wsevent_subscribers", "gauge", "Current subscribers by transport.", [
    ['{transport="websocket"}', counts.websocket],
    ['{transport="sse"}', counts.sse],
  ]);
  metric(
    "wsevent_events_published_total",
    "counter",
    "Events that entered a path (published, generated or relayed).",
    [["", stats.published]],
  );
  metric(
    "wsevent_events_delivered_total",
    "counter",
    "Event frames handed to subscriber transports.",
    [["", stats.delivered]],
  );
  metric(
    "wsevent_events_dropped_total",
    "counter",
    "Event frames skipped for slow subscribers.",
    [["", stats.dropped]],
  );
  metric(
    "wsevent_slow_consumer_disconnects_total",
    "counter",
    "Subscribers closed for falling behind.",
    [["", stats.slowDisconnects]],
  );
  metric(
    "wsevent_send_errors_total",
    "counter",
    "Subscribers closed because a send failed.",
    [["", stats.sinkErrors]],
  );
  metric(
    "wsevent_resume_requests_total",
    "counter",
    "Subscriptions that asked to resume from an id.",
    [["", stats.resumes]],
  );
  metric("wsevent_gaps_total", "counter", "Gap notices sent to subscribers.", [[
    "",
    stats.gaps,
  ]]);
  metric(
    "wsevent_events_coalesced_total",
    "counter",
    "Events that waited under load to go out with later ones (-coalesce).",
    [["", stats.coalesced]],
  );
  // Topics created on demand are counted per pattern, so the number of
  // series does not grow with the number of topics.
  const topics = patterns
    ? hub.topics().filter((t) => !patterns.owns(t))
    : hub.topics();
  const perPath = (
    value: (t: (typeof topics)[number]) => number,
  ): [string, number][] =>
    topics.map((t) => [`{path="${escapeLabel(t.path)}"}`, value(t)]);
  metric(
    "wsevent_replay_buffer_events",
    "gauge",
    "Events in the replay buffer.",
    perPath((t) => t.buffered),
  );
  metric(
    "wsevent_replay_buffer_bytes",
    "gauge",
    "Payload bytes in the replay buffer.",
    perPath((t) => t.bufferedBytes),
  );
  metric(
    "wsevent_path_subscribers",
    "gauge",
    "Current subscribers by path.",
    perPath((t) => t.subscribers),
  );
  if (patterns) formatPatternMetrics(patterns, metric);
  const up = (value: (u: UpstreamStatus) => number): [string, number][] =>
    upstreams.map((
      u,
    ) => [
      `{path="${escapeLabel(u.path)}",upstream="${escapeLabel(u.url)}"}`,
      value(u),
    ]);
  metric(
    "wsevent_upstream_connected",
    "gauge",
    "1 while the relay's upstream is connected.",
    up((u) => Number(u.connected)),
  );
  metric(
    "wsevent_upstream_reconnects_total",
    "counter",
    "Upstream connections lost.",
    up((u) => u.reconnects),
  );
  const status = engine?.status;
  if (status !== undefined) {
    const label = `{engine="${escapeLabel(engine?.name ?? "")}"}`;
    metric(
      "wsevent_engine_connected",
      "gauge",
      "1 while the engine's store (Redis) is connected.",
      [[label, Number(status.connected)]],
    );
    metric(
      "wsevent_engine_reconnects_total",
      "counter",
      "Connections to the engine's store lost.",
      [[label, status.reconnects]],
    );
    metric(
      "wsevent_engine_publish_errors_total",
      "counter",
      "Publishes the engine could not store (answered 503).",
      [[label, status.publishErrors]],
    );
    metric(
      "wsevent_engine_read_lag_seconds",
      "gauge",
      "Time from an append to its live delivery here, for the last event read.",
      [[label, status.readLagSeconds]],
    );
  }
  for (const [name, value] of Object.entries(extra)) {
    metric(
      `wsevent_${name}_total`,
      "counter",
      `Requests refused: ${name.replace(/_/g, " ")}.`,
      [["", value]],
    );
  }
  return lines.join("\n") + "\n";
}

/**
 * What the process uses, sampled by the runtime adapter (see
 * `Runtime.processStats`) and the instance's event-loop monitor. A field
 * the runtime cannot read is left out, and so is its metric.
 */
export interface ProcessStats {
  /** Resident set size. */
  rssBytes?: number;
  /** JavaScript heap in use. */
  heapUsedBytes?: number;
  /** JavaScript heap reserved. */
  heapTotalBytes?: number;
  /** Memory outside the JavaScript heap held by JavaScript objects (buffers). */
  externalBytes?: number;
  /** Open file descriptors (sockets included), from `/proc/self/fd`. */
  openFds?: number;
  /** Event-loop delay over the recent window, in milliseconds. */
  loopDelay?: { p50Ms: number; p99Ms: number; maxMs: number };
}

/**
 * Formats process figures: memory, open file descriptors, event-loop
 * delay. Empty for an empty sample.
 *
 * @example Usage
 * ```ts
 * import { formatProcessMetrics } from "./metrics.ts";
 * const text = formatProcessMetrics({ rssBytes: 50e6, openFds: 12 });
 * if (!text.includes("wsevent_process_open_fds 12")) throw new Error(text);
 * ```
 *
 * @param stats The sample.
 * @returns Prometheus text.
 */
export function formatProcessMetrics(stats: ProcessStats): string {
  const lines: string[] = [];
  const gauge = (
    name: string,
    help: string,
    samples: [string, number | undefined][],
  ): void => {
    const known = samples.filter(([, value]) => value !== undefined);
    if (known.length === 0) return;
    lines.push(`# HELP ${name} ${help}`, `# TYPE ${name} gauge`);
    for (const [labels, value] of known) {
      lines.push(`${name}${labels} ${value}`);
    }
  };
  gauge("wsevent_process_resident_memory_bytes", "Resident set size.", [[
    "",
    stats.rssBytes,
  ]]);
  gauge("wsevent_process_heap_bytes", "JavaScript heap, used and reserved.", [
    ['{state="used"}', stats.heapUsedBytes],
    ['{state="total"}', stats.heapTotalBytes],
  ]);
  gauge(
    "wsevent_process_external_memory_bytes",
    "Memory outside the JavaScript heap held by JavaScript objects.",
    [["", stats.externalBytes]],
  );
  gauge(
    "wsevent_process_open_fds",
    "Open file descriptors, sockets included.",
    [["", stats.openFds]],
  );
  const delay = stats.loopDelay;
  gauge(
    "wsevent_event_loop_delay_seconds",
    "How late a timer ran, over the last minute.",
    [
      ['{quantile="0.5"}', delay && delay.p50Ms / 1000],
      ['{quantile="0.99"}', delay && delay.p99Ms / 1000],
      ['{quantile="1"}', delay && delay.maxMs / 1000],
    ],
  );
  return lines.length === 0 ? "" : lines.join("\n") + "\n";
}
