/**
 * Event-loop delay, measured the same way on every runtime: a timer asks
 * to run every `intervalMs`, and how late it runs is the delay any other
 * callback (a frame, a heartbeat) would have seen. Web timers only.
 *
 * @module
 */

/** Event-loop delay over the recent window, in milliseconds. */
export interface LoopDelay {
  /** Median lateness of the timer. */
  p50Ms: number;
  /** 99th percentile. */
  p99Ms: number;
  /** Largest. */
  maxMs: number;
  /** Samples in the window. */
  samples: number;
}

/** A running monitor. */
export interface LoopDelayMonitor {
  /** The delay over the last `windowSamples` ticks. */
  read(): LoopDelay;
  /** Stops the timer. */
  stop(): void;
}

/** Options of {@link monitorLoopDelay}. */
export interface LoopDelayOptions {
  /** How often the timer asks to run. @default {200} */
  intervalMs?: number;
  /** How many of the latest samples are kept. @default {300} */
  windowSamples?: number;
}

function quantile(sorted: number[], q: number): number {
  if (sorted.length === 0) return 0;
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))];
}

/**
 * Starts measuring event-loop delay.
 *
 * @param options Tick and window.
 * @returns The monitor; call `stop()` on shutdown.
 */
export function monitorLoopDelay(
  options: LoopDelayOptions = {},
): LoopDelayMonitor {
  const interval = options.intervalMs ?? 200;
  const window = new Float64Array(options.windowSamples ?? 300);
  let count = 0;
  let expected = performance.now() + interval;
  const timer = setInterval(() => {
    const now = performance.now();
    window[count++ % window.length] = Math.max(0, now - expected);
    // From now, not from the missed slot: one long stall is one sample.
    expected = now + interval;
  }, interval);
  // Not a reason to keep the process alive (Node and Bun; Deno's timers
  // have no unref here and the server keeps it alive anyway).
  (timer as unknown as { unref?: () => void }).unref?.();
  return {
    read(): LoopDelay {
      const filled = Math.min(count, window.length);
      const sorted = Array.from(window.subarray(0, filled)).sort((a, b) =>
        a - b
      );
      return {
        p50Ms: quantile(sorted, 0.5),
        p99Ms: quantile(sorted, 0.99),
        maxMs: filled === 0 ? 0 : sorted[filled - 1],
        samples: filled,
      };
    },
    stop: () => clearInterval(timer),
  };
}
