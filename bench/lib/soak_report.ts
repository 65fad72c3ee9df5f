/**
 * The soak run's figures: a least-squares slope, a markdown table and an
 * SVG plot of samples over time, written by hand (no plotting library).
 *
 * @module
 */

/** One sample of the soak run. */
export interface SoakSample {
  /** Seconds since the start. */
  t: number;
  /** The origin (runs throughout) and the relay (restarted now and then). */
  originRssMb: number;
  originHeapMb: number;
  originFds: number;
  originLoopP99Ms: number;
  relayRssMb: number;
  relayFds: number;
  relayLoopP99Ms: number;
  /** Delivery latency over the sample's window, all subscribers. */
  deliveryP50Ms: number;
  deliveryP99Ms: number;
  /** Events published and delivered so far; subscribers connected now. */
  published: number;
  delivered: number;
  subscribers: number;
  /** Churned connections so far. */
  churned: number;
  /** The origin after its last collection (once a minute), when sampled. */
  originRssAfterGcMb?: number;
  originHeapAfterGcMb?: number;
  /**
   * With the Redis engine only: instance B (restarted now and then; the
   * origin fields are instance A's), both instances' engine read lag, and
   * redis-server's RSS and CPU (per cent of one core over the window).
   */
  secondRssMb?: number;
  secondHeapMb?: number;
  secondFds?: number;
  secondLoopP99Ms?: number;
  originReadLagMs?: number;
  secondReadLagMs?: number;
  redisRssMb?: number;
  redisCpuPercent?: number;
}

/** Whether the samples are of a run with the Redis engine. */
function isEngineRun(samples: readonly SoakSample[]): boolean {
  return samples.some((s) => s.secondRssMb !== undefined);
}

/**
 * The least-squares slope of `y` over `x`.
 *
 * @param points The points.
 * @returns dy/dx, or 0 with fewer than two distinct x.
 */
export function slope(points: readonly [number, number][]): number {
  const n = points.length;
  if (n < 2) return 0;
  let sx = 0, sy = 0, sxx = 0, sxy = 0;
  for (const [x, y] of points) {
    sx += x;
    sy += y;
    sxx += x * x;
    sxy += x * y;
  }
  const d = n * sxx - sx * sx;
  return d === 0 ? 0 : (n * sxy - sx * sy) / d;
}

/**
 * The `q` quantile of `values` (sorted here), 0 for none.
 *
 * @param values The values; sorted in place.
 * @param q From 0 to 1.
 * @returns The value at that rank.
 */
export function quantile(values: number[], q: number): number {
  if (values.length === 0) return 0;
  values.sort((a, b) => a - b);
  return values[Math.min(values.length - 1, Math.floor(q * values.length))];
}

/** A line of a panel. */
interface Series {
  label: string;
  color: string;
  value(sample: SoakSample): number;
}

/** A panel of the plot. */
interface Panel {
  title: string;
  unit: string;
  series: Series[];
}

const PANELS: Panel[] = [
  {
    title: "Memory",
    unit: "MB",
    series: [
      { label: "origin RSS", color: "#1f77b4", value: (s) => s.originRssMb },
      { label: "origin heap", color: "#2ca02c", value: (s) => s.originHeapMb },
      { label: "relay RSS", color: "#ff7f0e", value: (s) => s.relayRssMb },
      {
        label: "origin RSS after GC",
        color: "#9467bd",
        value: (s) => s.originRssAfterGcMb ?? NaN,
      },
    ],
  },
  {
    title: "Open file descriptors",
    unit: "",
    series: [
      { label: "origin", color: "#1f77b4", value: (s) => s.originFds },
      { label: "relay", color: "#ff7f0e", value: (s) => s.relayFds },
    ],
  },
  {
    title: "Event-loop delay p99",
    unit: "ms",
    series: [
      { label: "origin", color: "#1f77b4", value: (s) => s.originLoopP99Ms },
      { label: "relay", color: "#ff7f0e", value: (s) => s.relayLoopP99Ms },
    ],
  },
  {
    title: "Delivery latency",
    unit: "ms",
    series: [
      { label: "p50", color: "#2ca02c", value: (s) => s.deliveryP50Ms },
      { label: "p99", color: "#d62728", value: (s) => s.deliveryP99Ms },
    ],
  },
];

const orNaN = (v: number | undefined) => v ?? NaN;

/** The panels of a Redis engine run: A (origin), B, relay, redis-server. */
const ENGINE_PANELS: Panel[] = [
  {
    title: "Memory",
    unit: "MB",
    series: [
      { label: "A RSS", color: "#1f77b4", value: (s) => s.originRssMb },
      { label: "A heap", color: "#2ca02c", value: (s) => s.originHeapMb },
      {
        label: "B RSS",
        color: "#17becf",
        value: (s) => orNaN(s.secondRssMb),
      },
      { label: "relay RSS", color: "#ff7f0e", value: (s) => s.relayRssMb },
      {
        label: "A RSS after GC",
        color: "#9467bd",
        value: (s) => s.originRssAfterGcMb ?? NaN,
      },
      {
        label: "redis-server RSS",
        color: "#d62728",
        value: (s) => orNaN(s.redisRssMb),
      },
    ],
  },
  {
    title: "Open file descriptors",
    unit: "",
    series: [
      { label: "A", color: "#1f77b4", value: (s) => s.originFds },
      { label: "B", color: "#17becf", value: (s) => orNaN(s.secondFds) },
      { label: "relay", color: "#ff7f0e", value: (s) => s.relayFds },
    ],
  },
  {
    title: "Event-loop delay p99",
    unit: "ms",
    series: [
      { label: "A", color: "#1f77b4", value: (s) => s.originLoopP99Ms },
      {
        label: "B",
        color: "#17becf",
        value: (s) => orNaN(s.secondLoopP99Ms),
      },
      { label: "relay", color: "#ff7f0e", value: (s) => s.relayLoopP99Ms },
    ],
  },
  {
    title: "Engine read lag (last event read)",
    unit: "ms",
    series: [
      {
        label: "A",
        color: "#1f77b4",
        value: (s) => orNaN(s.originReadLagMs),
      },
      {
        label: "B",
        color: "#17becf",
        value: (s) => orNaN(s.secondReadLagMs),
      },
    ],
  },
  {
    title: "redis-server CPU",
    unit: "% of a core",
    series: [
      {
        label: "redis-server",
        color: "#d62728",
        value: (s) => orNaN(s.redisCpuPercent),
      },
    ],
  },
  PANELS[3],
];

/** A round upper bound for an axis. */
function niceMax(value: number): number {
  if (!(value > 0)) return 1;
  const power = 10 ** Math.floor(Math.log10(value));
  for (const step of [1, 2, 2.5, 5, 10]) {
    if (value <= step * power) return step * power;
  }
  return 10 * power;
}

function escapeXml(text: string): string {
  return text.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(
    />/g,
    "&gt;",
  );
}

/**
 * Plots the samples: one panel per figure, minutes on the x axis, relay
 * restarts as dashed lines (and, with the Redis engine, B's restarts as
 * dotted ones).
 *
 * @param samples The samples, in time order.
 * @param options Title and the restart times (s).
 * @returns An SVG document.
 */
export function plotSoak(
  samples: readonly SoakSample[],
  options: {
    title: string;
    restarts: readonly number[];
    secondRestarts?: readonly number[];
  },
): string {
  const engineRun = isEngineRun(samples);
  const panels = engineRun ? ENGINE_PANELS : PANELS;
  const width = 900, panelHeight = 170, left = 70, right = 170, top = 40;
  const plotWidth = width - left - right;
  const innerHeight = panelHeight - 45;
  const height = top + panels.length * panelHeight + 20;
  const tMax = Math.max(60, samples.at(-1)?.t ?? 60);
  const x = (t: number) => left + (t / tMax) * plotWidth;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="100%" height="100%" fill="white"/>`,
    `<text x="${left}" y="22" font-size="15" font-weight="bold">${
      escapeXml(options.title)
    }</text>`,
  ];
  panels.forEach((panel, index) => {
    const y0 = top + index * panelHeight + 20;
    const yMax = niceMax(
      Math.max(
        ...panel.series.flatMap((s) =>
          samples.map(s.value).filter(Number.isFinite)
        ),
        0,
      ),
    );
    const y = (v: number) => y0 + innerHeight - (v / yMax) * innerHeight;
    out.push(
      `<text x="${left}" y="${y0 - 6}" font-weight="bold">${
        escapeXml(panel.title)
      }${panel.unit ? ` (${panel.unit})` : ""}</text>`,
      `<rect x="${left}" y="${y0}" width="${plotWidth}" height="${innerHeight}" fill="none" stroke="#888"/>`,
    );
    for (const fraction of [0, 0.5, 1]) {
      const v = yMax * fraction;
      out.push(
        `<text x="${left - 6}" y="${y(v) + 4}" text-anchor="end">${+v.toFixed(
          2,
        )}</text>`,
        `<line x1="${left}" x2="${left + plotWidth}" y1="${y(v)}" y2="${
          y(v)
        }" stroke="#eee"/>`,
      );
    }
    for (const restart of options.restarts) {
      out.push(
        `<line x1="${x(restart)}" x2="${x(restart)}" y1="${y0}" y2="${
          y0 + innerHeight
        }" stroke="#bbb" stroke-dasharray="4 3"/>`,
      );
    }
    for (const restart of options.secondRestarts ?? []) {
      out.push(
        `<line x1="${x(restart)}" x2="${x(restart)}" y1="${y0}" y2="${
          y0 + innerHeight
        }" stroke="#7fd3dc" stroke-dasharray="1 3"/>`,
      );
    }
    panel.series.forEach((series, i) => {
      // Samples without the figure (a restart, a run without it) are left
      // out of the line.
      const points = samples.filter((s) => Number.isFinite(series.value(s)))
        .map((s) =>
          `${x(s.t).toFixed(1)},${
            y(Math.min(series.value(s), yMax)).toFixed(1)
          }`
        ).join(" ");
      if (points !== "") {
        out.push(
          `<polyline fill="none" stroke="${series.color}" stroke-width="1.5" points="${points}"/>`,
        );
      }
      out.push(
        `<line x1="${left + plotWidth + 12}" x2="${
          left + plotWidth + 32
        }" y1="${y0 + 10 + i * 16}" y2="${
          y0 + 10 + i * 16
        }" stroke="${series.color}" stroke-width="2"/>`,
        `<text x="${left + plotWidth + 38}" y="${y0 + 14 + i * 16}">${
          escapeXml(series.label)
        }</text>`,
      );
    });
    const axisY = y0 + innerHeight + 15;
    const step = niceMax(tMax / 60 / 6);
    for (let minute = 0; minute * 60 <= tMax; minute += step) {
      out.push(
        `<text x="${x(minute * 60)}" y="${axisY}" text-anchor="middle">${+minute
          .toFixed(1)}</text>`,
      );
    }
  });
  out.push(
    `<text x="${left + plotWidth / 2}" y="${
      height - 4
    }" text-anchor="middle">minutes (dashed: relay restarts${
      engineRun ? "; dotted: B restarts" : ""
    })</text>`,
    "</svg>",
  );
  return out.join("\n") + "\n";
}

/**
 * A markdown table with one row per `everyS` seconds (the last sample of
 * each slot; delivery p99 is the slot's largest).
 *
 * @param samples The samples, in time order.
 * @param everyS Seconds per row.
 * @returns The table.
 */
export function tableOf(
  samples: readonly SoakSample[],
  everyS: number,
): string {
  const engineRun = isEngineRun(samples);
  const rows = engineRun
    ? [
      "| min | A RSS MB | A heap MB | A fds | A loop p99 ms | B RSS MB | B heap MB | B fds | B loop p99 ms | read lag A / B ms | redis-server RSS MB | redis-server CPU % | relay RSS MB | relay fds | delivery p50 / p99 ms | published | delivered | churned |",
      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    : [
      "| min | origin RSS MB | heap MB | fds | loop p99 ms | relay RSS MB | relay fds | delivery p50 / p99 ms | published | delivered | churned |",
      "| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ];
  const f = (v: number | undefined) => orNaN(v).toFixed(1);
  let slot: SoakSample[] = [];
  const flush = () => {
    const last = slot.at(-1);
    if (last === undefined) return;
    const p99 = Math.max(...slot.map((s) => s.deliveryP99Ms));
    if (engineRun) {
      rows.push(
        `| ${(last.t / 60).toFixed(1)} | ${f(last.originRssMb)} | ${
          f(last.originHeapMb)
        } | ${last.originFds} | ${f(last.originLoopP99Ms)} | ${
          f(last.secondRssMb)
        } | ${f(last.secondHeapMb)} | ${last.secondFds} | ${
          f(last.secondLoopP99Ms)
        } | ${f(last.originReadLagMs)} / ${f(last.secondReadLagMs)} | ${
          f(last.redisRssMb)
        } | ${f(last.redisCpuPercent)} | ${
          f(last.relayRssMb)
        } | ${last.relayFds} | ${f(last.deliveryP50Ms)} / ${
          p99.toFixed(1)
        } | ${last.published} | ${last.delivered} | ${last.churned} |`,
      );
      slot = [];
      return;
    }
    rows.push(
      `| ${(last.t / 60).toFixed(1)} | ${last.originRssMb.toFixed(1)} | ${
        last.originHeapMb.toFixed(1)
      } | ${last.originFds} | ${last.originLoopP99Ms.toFixed(1)} | ${
        last.relayRssMb.toFixed(1)
      } | ${last.relayFds} | ${last.deliveryP50Ms.toFixed(1)} / ${
        p99.toFixed(1)
      } | ${last.published} | ${last.delivered} | ${last.churned} |`,
    );
    slot = [];
  };
  let boundary = everyS;
  for (const sample of samples) {
    if (sample.t > boundary) {
      flush();
      while (sample.t > boundary) boundary += everyS;
    }
    slot.push(sample);
  }
  flush();
  return rows.join("\n") + "\n";
}
