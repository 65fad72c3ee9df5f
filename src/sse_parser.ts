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

  // The unfinished line's parts and their length: only new text is ever
  // scanned for line ends, so a line that arrives in many small chunks
  // costs its length once (rescanning the whole pending line on each chunk
  // made a 2 MiB line sent in 1 KiB chunks take seconds of CPU).
  let parts: string[] = [];
  let partsLength = 0;

  return {
    feed(input) {
      let text = input;
      if (skipLf && text.length > 0) {
        skipLf = false;
        if (text.charCodeAt(0) === 10) text = text.slice(1);
      }
      if (first && text.length > 0) {
        if (text.charCodeAt(0) === 0xfeff) text = text.slice(1);
        first = false;
      }
      let start = 0;
      for (let i = 0; i < text.length; i++) {
        const code = text.charCodeAt(i);
        if (code !== 10 && code !== 13) continue;
        if (partsLength > 0) {
          parts.push(text.slice(start, i));
          const line = parts.join("");
          parts = [];
          partsLength = 0;
          field(line);
        } else field(text.slice(start, i));
        if (code === 13) {
          // CR ends the line now; an LF right after it belongs to it, even
          // when it only arrives with the next chunk.
          if (i === text.length - 1) skipLf = true;
          else if (text.charCodeAt(i + 1) === 10) i++;
        }
        start = i + 1;
      }
      if (start < text.length) {
        parts.push(start === 0 ? text : text.slice(start));
        partsLength += text.length - start;
      }
      if (partsLength > maxLineLength) {
        throw new RangeError(
          `Cannot parse event stream: a line is longer than ${maxLineLength} characters`,
        );
      }
    },
  };
}
