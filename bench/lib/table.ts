/**
 * The benchmark's one table, in Markdown: every figure for wsevent beside
 * its runtime's baseline and the ratio, the target, and lost and
 * duplicated messages.
 *
 * @module
 */

import type { Outcome, Runtime, ServerKind } from "./harness.ts";

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
}

const formatRate = (value: number) => Math.round(value).toLocaleString("en-US");
const formatMs = (value: number) =>
  value.toFixed(Math.abs(value) < 10 ? 2 : Math.abs(value) < 100 ? 1 : 0);
const formatKb = (value: number) => value.toFixed(1);
const formatRatio = (value: number) => `${value.toFixed(2)}x`;

/** Describes the rows of every scenario, with sizes in the titles. */
export function scenarioRows(sizes: {
  fanoutSubscribers: number;
  fanoutEvents: number;
  fanoutInflight: number;
  steadySubscribers: number;
  steadyRate: number;
  steadySeconds: number;
  idleSubscribers: number;
  relaySubscribers: number;
  relayRate: number;
}): ScenarioRows[] {
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
  ];
}

/** Adds derived figures that compare scenarios (SSE over WebSocket fan-out). */
export function deriveFigures(results: Results, runtimes: Runtime[]): void {
  for (const runtime of runtimes) {
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
  const lines = [
    "| scenario | metric | runtime | wsevent | baseline | ratio | target | lost (ws / base) | dup (ws / base) |",
    "| --- | --- | --- | ---: | ---: | ---: | --- | ---: | ---: |",
  ];
  for (const scenario of rows) {
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
