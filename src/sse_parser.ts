/**
 * An incremental parser for `text/event-stream`, following the HTML
 * standard's interpretation rules. Pure.
 *
 * @module
 */

/** One dispatched Server-Sent Event. */
export interface SseMessage {
  /** The `event:` field, `"message"` when absent. */
  event: string;
  /** The data lines joined with `\n`. */
  data: string;
  /** The last event id seen so far in the stream (it persists), or "". */
  lastEventId: string;
}

/** Callbacks of {@link createSseParser}. */
export interface SseParserHandlers {
  /** An event was dispatched. */
  onMessage(message: SseMessage): void;
  /** A comment line arrived (heartbeats). */
  onComment?(text: string): void;
  /** A `retry:` field arrived. */
  onRetry?(ms: number): void;
  /**
   * An event was dropped at its end because its data lines together grew
   * past the limit (the parser stops keeping them once they do).
   */
  onOversized?(length: number): void;
}

/** The parser: feed it decoded text as it arrives. */
export interface SseParser {
  /** Adds text; complete lines are interpreted at once. */
  feed(text: string): void;
}

/**
 * Creates an SSE parser.
 *
 * @example Usage
 * ```ts
 * import { createSseParser } from "../mod.ts";
 * const parser = createSseParser({ onMessage: (m) => console.log(m.data) });
 * parser.feed("id: a-1\ndata: hello\n\n"); // prints "hello"
 * ```
 *
 * @param handlers What to call.
 * @param maxLineLength Longest line accepted, in UTF-16 units; an event
 * whose data lines add up to more is dropped (see `onOversized`).
 * @returns The parser.
 * @throws {RangeError} From `feed`, when a line grows past `maxLineLength`.
 */
export function createSseParser(
  handlers: SseParserHandlers,
  maxLineLength = 16 << 20,
): SseParser {
  let pending = "";
  let first = true;
  let skipLf = false;
  let data: string[] = [];
  // The data lines' length so far (with their joining newlines): without
  // this bound, lines that each pass the line limit but never end the
  // event would grow one event without end.
  let dataLength = 0;
  let oversized = false;
  let event = "";
  let lastEventId = "";

  function field(line: string): void {
    if (line === "") {
      if (oversized) handlers.onOversized?.(dataLength);
      else if (data.length > 0) {
        handlers.onMessage({
          event: event || "message",
          data: data.join("\n"),
          lastEventId,
        });
      }
      data = [];
      dataLength = 0;
      oversized = false;
      event = "";
      return;
    }
    if (line.charCodeAt(0) === 58 /* : */) {
      handlers.onComment?.(line.slice(1).trimStart());
      return;
    }
    const colon = line.indexOf(":");
    const name = colon < 0 ? line : line.slice(0, colon);
    let value = colon < 0 ? "" : line.slice(colon + 1);
    if (value.charCodeAt(0) === 32) value = value.slice(1);
    if (name === "data") {
      // Each line after the first adds the newline that joins it.
      dataLength += value.length + (dataLength > 0 || data.length > 0 ? 1 : 0);
      if (dataLength > maxLineLength) {
        oversized = true;
        data = [];
      } else data.push(value);
    } else if (name === "event") event = value;
    else if (name === "id" && !value.includes("\0")) lastEventId = value;
    else if (name === "retry" && /^[0-9]+$/.test(value)) {
      handlers.onRetry?.(Number(value));
    }
  }

  return {
    feed(text) {
      let chunk = pending + text;
      if (chunk.length === 0) return;
      if (skipLf && chunk.charCodeAt(0) === 10) chunk = chunk.slice(1);
      skipLf = false;
      if (first && chunk.length > 0) {
        if (chunk.charCodeAt(0) === 0xfeff) chunk = chunk.slice(1);
        first = false;
      }
      let start = 0;
      for (let i = 0; i < chunk.length; i++) {
        const code = chunk.charCodeAt(i);
        if (code !== 10 && code !== 13) continue;
        field(chunk.slice(start, i));
        if (code === 13) {
          // CR ends the line now; an LF right after it belongs to it, even
          // when it only arrives with the next chunk.
          if (i === chunk.length - 1) skipLf = true;
          else if (chunk.charCodeAt(i + 1) === 10) i++;
        }
        start = i + 1;
      }
      pending = chunk.slice(start);
      if (pending.length > maxLineLength) {
        throw new RangeError(
          `Cannot parse event stream: a line is longer than ${maxLineLength} characters`,
        );
      }
    },
  };
}
