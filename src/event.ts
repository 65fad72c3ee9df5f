/**
 * The event, its id, and its wire formats (bare, JSON, SSE). Pure: no I/O.
 *
 * @module
 */

/** The payload of an event: text, or bytes for binary frames. */
export type EventData = string | Uint8Array;

/** The parts of an event id: the origin's epoch and a sequence number. */
export interface EventIdParts {
  /** Base36 token that changes every time the origin starts. */
  readonly epoch: string;
  /** Position of the event in its path's stream at the origin, from 0. */
  readonly seq: number;
}

/** What a subscriber is told when a resume could not be exact. */
export interface GapNotice {
  /** The id the subscriber resumed from, or null when it gave none we could read. */
  readonly lastEventId: string | null;
  /** Why events may be missing, in words. */
  readonly reason: string;
}

const ID_PATTERN = /^([0-9a-z]{1,32})-(0|[1-9][0-9]{0,15})$/;
const ENCODER = new TextEncoder();

/**
 * Makes a new epoch: the start time in base36 plus random letters, so two
 * starts in the same millisecond still differ.
 *
 * @returns A lowercase base36 token such as `"mi5x0k2a-"`'s first part.
 */
export function createEpoch(): string {
  const random = crypto.getRandomValues(new Uint32Array(1))[0];
  return Date.now().toString(36) +
    (random % 46656).toString(36).padStart(3, "0");
}

/**
 * Formats an event id from its parts.
 *
 * @param epoch The origin's epoch.
 * @param seq The sequence number.
 * @returns `"<epoch>-<seq>"`.
 */
export function formatEventId(epoch: string, seq: number): string {
  return `${epoch}-${seq}`;
}

/**
 * Reads an event id.
 *
 * @param id The id as received from a client or an upstream.
 * @returns Its parts, or `undefined` when it is not a wsevent id.
 */
export function parseEventId(id: string): EventIdParts | undefined {
  const match = ID_PATTERN.exec(id);
  if (match === null) return undefined;
  const seq = Number(match[2]);
  if (!Number.isSafeInteger(seq)) return undefined;
  return { epoch: match[1], seq };
}

/**
 * The length of `text` in UTF-8, as TextEncoder would encode it (a lone
 * surrogate becomes U+FFFD, 3 bytes), without encoding it.
 *
 * @example Usage
 * ```ts
 * import { utf8Length } from "./event.ts";
 * console.log(utf8Length("héllo 😀")); // 11
 * ```
 *
 * @param text The text.
 * @returns Its size in bytes.
 */
export function utf8Length(text: string): number {
  let bytes = text.length;
  for (let i = 0; i < text.length; i++) {
    const code = text.charCodeAt(i);
    if (code < 0x80) continue;
    if (code < 0x800) {
      bytes += 1;
    } else if (
      code >= 0xd800 && code <= 0xdbff && i + 1 < text.length &&
      (text.charCodeAt(i + 1) & 0xfc00) === 0xdc00
    ) {
      // A surrogate pair: 2 UTF-16 units, 4 bytes.
      bytes += 2;
      i++;
    } else {
      bytes += 2;
    }
  }
  return bytes;
}

/**
 * One event with its serialized forms, each computed once on first use and
 * shared by every subscriber that needs it.
 */
export class StreamEvent {
  /** The id given by the origin. */
  readonly id: string;
  /** The origin's epoch (from the id). */
  readonly epoch: string;
  /** The sequence number (from the id). */
  readonly seq: number;
  /** The payload. */
  readonly data: EventData;
  /** Payload size in bytes (UTF-8 for text). */
  readonly size: number;
  #bytes?: Uint8Array;
  #json?: string;
  #sse?: Uint8Array;
  #holder?: { grew(bytes: number): void };

  /**
   * Creates an event; serialized forms are computed when first asked for.
   *
   * @param parts The id's parts.
   * @param data The payload.
   */
  constructor(parts: EventIdParts, data: EventData) {
    this.epoch = parts.epoch;
    this.seq = parts.seq;
    this.id = formatEventId(parts.epoch, parts.seq);
    this.data = data;
    if (typeof data === "string") {
      this.size = utf8Length(data);
    } else {
      this.#bytes = data;
      this.size = data.byteLength;
    }
  }

  /**
   * Bytes this event holds: the payload and every serialized form made so
   * far (a body of newlines makes an SSE form seven times its size), so a
   * buffer bounded in bytes is bounded in what it really keeps. JSON is
   * counted at one byte per character.
   */
  get held(): number {
    return this.size +
      (typeof this.data === "string" ? this.#bytes?.byteLength ?? 0 : 0) +
      (this.#json?.length ?? 0) + (this.#sse?.byteLength ?? 0);
  }

  /**
   * Tells `holder` of each serialized form made from now on (a buffer that
   * counts what it holds); `undefined` stops telling.
   *
   * @param holder Who keeps this event.
   */
  holdBy(holder: { grew(bytes: number): void } | undefined): void {
    this.#holder = holder;
  }

  /** The payload as bytes (UTF-8 for text), for transports that send bytes. */
  get bytes(): Uint8Array {
    if (this.#bytes === undefined) {
      this.#bytes = ENCODER.encode(this.data as string);
      this.#holder?.grew(this.#bytes.byteLength);
    }
    return this.#bytes;
  }

  /** True when the payload is binary. */
  get binary(): boolean {
    return typeof this.data !== "string";
  }

  /** The JSON envelope `{"id","data"}` (binary data as base64 with `"encoding":"base64"`). */
  get json(): string {
    if (this.#json === undefined) {
      this.#json = formatJsonEvent(this.id, this.data);
      this.#holder?.grew(this.#json.length);
    }
    return this.#json;
  }

  /** The Server-Sent Events block for this event, as bytes. */
  get sse(): Uint8Array {
    if (this.#sse === undefined) {
      this.#sse = ENCODER.encode(formatSseEvent(this.id, this.data));
      this.#holder?.grew(this.#sse.byteLength);
    }
    return this.#sse;
  }
}

/** Who keeps an event and counts the bytes it holds (see StreamEvent.held). */
export interface EventHolder {
  /** A serialized form of `bytes` bytes was made. */
  grew(bytes: number): void;
}

/**
 * Formats the JSON envelope of an event (`?format=json`, `subscribe --json`).
 *
 * @param id The event id, or null where the upstream gave none.
 * @param data The payload; binary payloads as base64 with `"encoding":"base64"`.
 * @returns `{"id","data"}` as JSON text.
 */
export function formatJsonEvent(id: string | null, data: EventData): string {
  if (typeof data === "string") return JSON.stringify({ id, data });
  return JSON.stringify({ id, data: encodeBase64(data), encoding: "base64" });
}

/**
 * Formats one SSE block. Each line of the payload becomes one `data:` field
 * (CR, LF and CRLF all end a line, as the SSE parser will read them), so a
 * trailing newline survives as an empty last `data:` line.
 *
 * @param id The event id, or null for none.
 * @param data The payload; binary payloads are sent as base64 under `event: binary`.
 * @param event An event name for the `event:` field.
 * @returns The block, ending with a blank line.
 */
export function formatSseEvent(
  id: string | null,
  data: EventData,
  event?: string,
): string {
  let text: string;
  let name = event;
  if (typeof data === "string") {
    text = data;
  } else {
    text = encodeBase64(data);
    name ??= "binary";
  }
  let out = id === null ? "" : `id: ${id}\n`;
  if (name !== undefined) out += `event: ${name}\n`;
  for (const line of text.split(/\r\n|\r|\n/)) out += `data: ${line}\n`;
  return out + "\n";
}

/**
 * Formats a gap notice for JSON WebSocket subscribers.
 *
 * @param notice The gap.
 * @returns `{"type":"gap","lastEventId":...,"reason":...}`.
 */
export function formatJsonGap(notice: GapNotice): string {
  return JSON.stringify({ type: "gap", ...notice });
}

/**
 * Formats a gap notice as an SSE `event: gap` block with JSON data.
 *
 * @param notice The gap.
 * @returns The SSE block.
 */
export function formatSseGap(notice: GapNotice): string {
  return formatSseEvent(null, JSON.stringify(notice), "gap");
}

/** A message read from a JSON stream (`?format=json`). */
export type JsonMessage =
  | { readonly type: "event"; readonly id: string; readonly data: EventData }
  | { readonly type: "gap"; readonly notice: GapNotice }
  | { readonly type: "heartbeat" };

/**
 * Reads one JSON stream message: an event envelope, a gap notice or a
 * heartbeat.
 *
 * @param text A text frame.
 * @returns The message, or `undefined` when the frame is not one of ours
 *   (then it is a bare payload from an upstream that gives no ids).
 */
export function parseJsonMessage(text: string): JsonMessage | undefined {
  if (text.charCodeAt(0) !== 123 /* { */) return undefined;
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch {
    return undefined;
  }
  if (typeof value !== "object" || value === null) return undefined;
  const record = value as Record<string, unknown>;
  if (typeof record.id === "string" && typeof record.data === "string") {
    if (parseEventId(record.id) === undefined) return undefined;
    if (record.encoding === "base64") {
      const bytes = decodeBase64(record.data);
      return bytes && { type: "event", id: record.id, data: bytes };
    }
    return { type: "event", id: record.id, data: record.data };
  }
  if (record.type === "heartbeat") return { type: "heartbeat" };
  if (record.type === "gap") {
    return { type: "gap", notice: readGapNotice(record) };
  }
  return undefined;
}

/**
 * Reads a gap notice from its JSON form (the `event: gap` data of SSE, or
 * a `{"type":"gap"}` message), tolerating missing fields.
 *
 * @param value The parsed JSON.
 * @returns The notice.
 */
export function readGapNotice(value: unknown): GapNotice {
  const record =
    (typeof value === "object" && value !== null ? value : {}) as Record<
      string,
      unknown
    >;
  return {
    lastEventId: typeof record.lastEventId === "string"
      ? record.lastEventId
      : null,
    reason: typeof record.reason === "string" ? record.reason : "gap",
  };
}

/**
 * Encodes bytes as standard base64.
 *
 * @param bytes The bytes.
 * @returns Base64 text.
 */
export function encodeBase64(bytes: Uint8Array): string {
  let binary = "";
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    binary += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return btoa(binary);
}

/**
 * Decodes standard base64.
 *
 * @param text Base64 text.
 * @returns The bytes, or `undefined` when the text is not base64.
 */
export function decodeBase64(text: string): Uint8Array | undefined {
  let binary: string;
  try {
    binary = atob(text);
  } catch {
    return undefined;
  }
  const bytes = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) bytes[i] = binary.charCodeAt(i);
  return bytes;
}
