/**
 * A one-line status on a terminal's stderr for the `subscribe` client:
 * where it is connected, events per second, the last id and reconnects,
 * redrawn in place. Only used when stderr is a terminal.
 *
 * @module
 */

/** Redraw period. */
const REDRAW_MS = 250;
const CLEAR = "\r\x1b[2K";

/** The status line. */
export interface StatusLine {
  /** An event arrived. */
  event(id: string | null): void;
  /** The connection changed: `open`, `connecting` or `closed`. */
  state(state: string, detail: string): void;
  /** Prints a whole line above the status line. */
  print(line: string): void;
  /** Clears the line and stops redrawing. */
  stop(): void;
}

/**
 * Starts a status line.
 *
 * @param url The stream, as shown.
 * @param write Writes to the terminal (stderr).
 * @returns The status line.
 */
export function createStatusLine(
  url: string,
  write: (text: string) => void,
): StatusLine {
  let state = "connecting";
  let lastId: string | null = null;
  let total = 0;
  let reconnects = 0;
  let wasOpen = false;
  let windowStart = Date.now();
  let windowCount = 0;
  let rate = 0;
  let stopped = false;
  const draw = (): void => {
    if (stopped) return;
    const now = Date.now();
    if (now - windowStart >= 1000) {
      rate = windowCount * 1000 / (now - windowStart);
      windowStart = now;
      windowCount = 0;
    }
    write(
      `${CLEAR}${state} ${url} | ${
        rate.toFixed(1)
      } ev/s | ${total} events | last ${
        lastId ?? "-"
      } | reconnects ${reconnects}`,
    );
  };
  const timer = setInterval(draw, REDRAW_MS);
  draw();
  return {
    event(id) {
      total++;
      windowCount++;
      if (id !== null) lastId = id;
    },
    state(next, detail) {
      if (next === "open") {
        if (wasOpen) reconnects++;
        wasOpen = true;
        state = "live";
      } else if (!stopped) {
        state = next === "connecting" ? "connecting" : "reconnecting";
        write(`${CLEAR}${detail}\n`);
      }
      draw();
    },
    print(line) {
      if (!stopped) write(`${CLEAR}${line}\n`);
      draw();
    },
    stop() {
      clearInterval(timer);
      write(CLEAR);
      stopped = true;
    },
  };
}
