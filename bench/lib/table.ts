/**
 * The benchmark's one table, in Markdown: every figure for wsevent beside
 * its runtime's baseline and the ratio, the target, and lost and
 * duplicated messages.
 *
 * @module
 */

import type { Outcome, Runtime, ServerKind, Sizes } from "./harness.ts";

/** A scenario's outcome per runtime and server kind, or the error that stopped it. */
export type Results = Map<string, Outcome | Error>;

/** The key of one outcome in {@link Results}. */
export function resultKey(
  scenario: string,
  runtime: Runtime,
  kind: ServerKind,
): string {
  return `${scenario}/${runtime}/${kind}`;
}

/** How a figure is shown and judged. */
interface Metric {
  key: string;
  label: string;
  format: (value: number) => string;
  /** Whether a wsevent/baseline ratio means something. @default true */
  ratio?: boolean;
  /** Checks wsevent's value and its ratio to the baseline; undefined if no target. */
  target?: { text: string; pass(value: number, ratio: number): boolean };
}

/** Rows of one scenario. */
export interface ScenarioRows {
  id: string;
  title: string;
  metrics: Metric[];
  /** No baseline column (the relay scenario is wsevent only). */
  wseventOnly?: boolean;
  /**
   * Names of the two columns when they are not wsevent and its baseline
   * (scenario r: the Redis engine and the memory engine); such rows get a
   * table of their own.
   */
  columns?: [string, string];
}

const formatRate = (value: number) => Math.round(value).toLocaleString("en-US");
const formatMs = (value: number) =>
  value.toFixed(Math.abs(value) < 10 ? 2 : Math.abs(value) < 100 ? 1 : 0);
const formatKb = (value: number) => value.toFixed(1);
const formatRatio = (value: number) => `${value.toFixed(2)}x`;
const formatPct = (value: number) => `${value.toFixed(0)}%`;
const formatUs = (value: number) => value.toFixed(2);

/** Describes the rows of every scenario, with sizes in the titles. */
export function scenarioRows(
  sizes: Pick<
    Sizes,
    | "fanoutSubscribers"
    | "fanoutEvents"
    | "fanoutInflight"
    | "steadySubscribers"
    | "steadyRate"
    | "steadySeconds"
    | "idleSubscribers"
    | "relaySubscribers"
    | "relayRate"
    | "engineFixedRate"
    | "engineFixedEvents"
    | "enginePublishEvents"
  >,
): ScenarioRows[] {
  const fanoutSize =
    `${sizes.fanoutSubscribers} subs x ${sizes.fanoutEvents} ev, ${sizes.fanoutInflight} POSTs in flight`;
  const latency = (key: string): Metric => ({
    key,
    label: `${key} ms`,
    format: formatMs,
  });
  return [
    {
      id: "a",
      title: `a WS fan-out ${fanoutSize}`,
      metrics: [
        {
          key: "rate",
          label: "deliveries/s",
          format: formatRate,
          target: { text: ">= 1.0x", pass: (_v, ratio) => ratio >= 1 },
        },
        latency("p50"),
        latency("p99"),
      ],
    },
    {
      id: "b",
      title:
        `b steady ${sizes.steadySubscribers} subs, ${sizes.steadyRate} ev/s x ${sizes.steadySeconds} s`,
      metrics: [
        latency("p50"),
        {
          ...latency("p99"),
          target: { text: "<= 50 ms", pass: (value) => value <= 50 },
        },
        latency("max"),
      ],
    },
    {
      id: "c",
      title: `c idle ${sizes.idleSubscribers} WS subs`,
      metrics: [{
        key: "kbPerConnection",
        label: "RSS KiB/conn",
        format: formatKb,
        target: { text: "<= 1.2x", pass: (_v, ratio) => ratio <= 1.2 },
      }],
    },
    {
      id: "d",
      title:
        `d relay 2 hops, ${sizes.relaySubscribers} subs/hop, ${sizes.relayRate} ev/s`,
      wseventOnly: true,
      metrics: [
        { key: "producerP50", label: "p50 ms at producer", format: formatMs },
        { key: "relay1P50", label: "p50 ms at relay 1", format: formatMs },
        { key: "relay2P50", label: "p50 ms at relay 2", format: formatMs },
        {
          key: "perHop",
          label: "added p50 ms/hop",
          format: formatMs,
          target: { text: "< 2 ms", pass: (value) => value < 2 },
        },
      ],
    },
    {
      id: "e",
      title: `e SSE fan-out ${fanoutSize}`,
      metrics: [
        { key: "rate", label: "deliveries/s", format: formatRate },
        latency("p50"),
        latency("p99"),
        {
          key: "sseOverWs",
          label: "SSE/WS deliveries",
          format: formatRatio,
          ratio: false,
          target: { text: ">= 0.8 (wsevent)", pass: (value) => value >= 0.8 },
        },
      ],
    },
    {
      id: "r",
      title:
        `r Redis engine: WS fan-out ${fanoutSize}; the same at a fixed ${sizes.engineFixedRate} ev/s; ${sizes.enginePublishEvents} ev to 1 sub; ${sizes.steadySubscribers} subs at ${sizes.steadyRate} ev/s x ${sizes.steadySeconds} s`,
      columns: ["redis", "memory"],
      metrics: [
        {
          key: "rate",
          label: "fan-out deliveries/s",
          format: formatRate,
          target: { text: ">= 0.8x", pass: (_v, ratio) => ratio >= 0.8 },
        },
        { key: "p50", label: "fan-out p50 ms", format: formatMs },
        { key: "p99", label: "fan-out p99 ms", format: formatMs },
        {
          key: "cpuUs",
          label: "server CPU us/delivery",
          format: formatUs,
          target: { text: "<= 1.25x", pass: (_v, ratio) => ratio <= 1.25 },
        },
        {
          key: "serverCpuPct",
          label: "server CPU (fan-out)",
          format: formatPct,
        },
        {
          key: "redisCpuPct",
          label: "redis-server CPU (fan-out)",
          format: formatPct,
          ratio: false,
        },
        {
          key: "redisCpuUs",
          label: "redis-server CPU us/delivery",
          format: formatUs,
          ratio: false,
        },
        {
          key: "fixedCpuUs",
          label: "server CPU us/delivery, fixed rate",
          format: formatUs,
        },
        {
          key: "fixedServerCpuPct",
          label: "server CPU (fixed rate)",
          format: formatPct,
        },
        { key: "fixedP50", label: "fixed rate p50 ms", format: formatMs },
        {
          key: "publishRate",
          label: `publish ev/s, ${sizes.fanoutInflight} in flight`,
          format: formatRate,
          target: { text: ">= 20,000", pass: (value) => value >= 20_000 },
        },
        {
          key: "publishCpuUs",
          label: "server CPU us/event (publish)",
          format: formatUs,
        },
        {
          key: "publishRedisCpuUs",
          label: "redis-server CPU us/event (publish)",
          format: formatUs,
          ratio: false,
        },
        {
          key: "wsPublishRate",
          label:
            `publish ev/s over 1 WebSocket, ${sizes.fanoutInflight} in flight`,
          format: formatRate,
          target: { text: ">= 20,000", pass: (value) => value >= 20_000 },
        },
        {
          key: "wsPublishCpuUs",
          label: "server CPU us/event (WS publish)",
          format: formatUs,
        },
        {
          key: "wsPublishServerCpuPct",
          label: "server CPU (WS publish)",
          format: formatPct,
        },
        {
          key: "wsPublishClientCpuPct",
          label: "load client CPU (WS publish)",
          format: formatPct,
        },
        {
          key: "wsPublishRedisCpuPct",
          label: "redis-server CPU (WS publish)",
          format: formatPct,
          ratio: false,
        },
        {
          key: "wsPublishRedisCpuUs",
          label: "redis-server CPU us/event (WS publish)",
          format: formatUs,
          ratio: false,
        },
        { key: "steadyP50", label: "steady p50 ms", format: formatMs },
        { key: "steadyP99", label: "steady p99 ms", format: formatMs },
        {
          key: "addedP50",
          label: "added steady p50 ms",
          format: formatMs,
          ratio: false,
          target: { text: "< 2 ms", pass: (value) => value < 2 },
        },
      ],
    },
  ];
}

/**
 * Adds derived figures that compare scenarios (SSE over WebSocket fan-out)
 * or the two columns of one (the latency the Redis engine adds).
 */
export function deriveFigures(results: Results, runtimes: Runtime[]): void {
  for (const runtime of runtimes) {
    const redis = results.get(resultKey("r", runtime, "wsevent"));
    const memory = results.get(resultKey("r", runtime, "baseline"));
    if (
      redis && !(redis instanceof Error) && memory &&
      !(memory instanceof Error)
    ) {
      redis.figures.addedP50 = redis.figures.steadyP50 -
        memory.figures.steadyP50;
    }
    for (const kind of ["wsevent", "baseline"] as const) {
      const ws = results.get(resultKey("a", runtime, kind));
      const sse = results.get(resultKey("e", runtime, kind));
      if (sse && !(sse instanceof Error) && ws && !(ws instanceof Error)) {
        sse.figures.sseOverWs = sse.figures.rate / ws.figures.rate;
      }
    }
  }
}

function cell(
  outcome: Outcome | Error | undefined,
  key: string,
  format: (value: number) => string,
): string {
  if (outcome === undefined) return "";
  if (outcome instanceof Error) return "error";
  const value = outcome.figures[key];
  return value === undefined || Number.isNaN(value) ? "n/a" : format(value);
}

function counts(
  wsevent: Outcome | Error | undefined,
  baseline: Outcome | Error | undefined,
  pick: (o: Outcome) => number,
): string {
  const one = (o: Outcome | Error | undefined) =>
    o === undefined ? "" : o instanceof Error ? "error" : String(pick(o));
  return baseline === undefined
    ? one(wsevent)
    : `${one(wsevent)} / ${one(baseline)}`;
}

/**
 * Renders the table.
 *
 * @param rows The scenarios to show, in order.
 * @param results Outcomes of the runs.
 * @param runtimes The runtimes, in column order.
 * @returns Markdown text, one line per row.
 */
export function renderTable(
  rows: ScenarioRows[],
  results: Results,
  runtimes: Runtime[],
): string {
  const lines: string[] = [];
  let header = "";
  for (const scenario of rows) {
    const [left, right] = scenario.columns ?? ["wsevent", "baseline"];
    const [l, r] = scenario.columns ?? ["ws", "base"];
    const wanted =
      `| scenario | metric | runtime | ${left} | ${right} | ratio | target | lost (${l} / ${r}) | dup (${l} / ${r}) |`;
    if (wanted !== header) {
      if (header !== "") lines.push("");
      header = wanted;
      lines.push(
        header,
        "| --- | --- | --- | ---: | ---: | ---: | --- | ---: | ---: |",
      );
    }
    for (const runtime of runtimes) {
      const wsevent = results.get(resultKey(scenario.id, runtime, "wsevent"));
      const baseline = scenario.wseventOnly
        ? undefined
        : results.get(resultKey(scenario.id, runtime, "baseline"));
      if (wsevent === undefined && baseline === undefined) continue;
      scenario.metrics.forEach((metric, index) => {
        const w = wsevent instanceof Error
          ? undefined
          : wsevent?.figures[metric.key];
        const b = baseline instanceof Error
          ? undefined
          : baseline?.figures[metric.key];
        const ratio =
          metric.ratio !== false && w !== undefined && b !== undefined &&
            b !== 0
            ? w / b
            : NaN;
        const target =
          metric.target === undefined || w === undefined || Number.isNaN(w)
            ? metric.target?.text ?? ""
            : `${metric.target.text} ${
              metric.target.pass(w, ratio) ? "ok" : "MISS"
            }`;
        lines.push(`| ${
          [
            index === 0 ? scenario.title : "",
            metric.label,
            runtime,
            cell(wsevent, metric.key, metric.format),
            scenario.wseventOnly
              ? "-"
              : cell(baseline, metric.key, metric.format),
            Number.isNaN(ratio) ? "" : formatRatio(ratio),
            target,
            index === 0 ? counts(wsevent, baseline, (o) => o.lost) : "",
            index === 0 ? counts(wsevent, baseline, (o) => o.duplicated) : "",
          ].join(" | ")
        } |`);
      });
    }
  }
  return lines.join("\n");
}
