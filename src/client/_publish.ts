/**
 * `publish()`: one POST, one id. Web APIs only.
 *
 * @module
 */

import { basicAuth } from "./_transports.ts";

/** Options of `publish()`. */
export interface PublishOptions {
  /** Sent as `Authorization: Bearer`. @default {undefined} */
  token?: string;
  /** Cancels the request. @default {undefined} */
  signal?: AbortSignal;
  /**
   * The body's Content-Type. Text is published as text, any type other
   * than text, JSON or form data as bytes.
   * @default {"text/plain;charset=utf-8" for a string, "application/octet-stream" for bytes}
   */
  contentType?: string;
}

/** What `publish()` resolves to. */
export interface PublishResult {
  /** The id the server gave the event. */
  id: string;
}

/**
 * The server refused a publish (4xx or 5xx), or answered without an id.
 *
 * @example Usage
 * ```ts ignore
 * import { publish, PublishError } from "./client.ts";
 * try {
 *   await publish("http://localhost:8080/events", "hello");
 * } catch (error) {
 *   if (error instanceof PublishError) console.log(error.status, error.code);
 * }
 * ```
 */
export class PublishError extends Error {
  /** The HTTP status. */
  readonly status: number;
  /** The server's stable error code (such as `unauthorized`), or `""`. */
  readonly code: string;
  /** The server's own message (or the start of its body). */
  readonly detail: string;
  /**
   * Creates the error; its message names the status, the code and the
   * server's message.
   *
   * @param status The HTTP status.
   * @param code The server's error code, or "".
   * @param detail The server's message.
   */
  constructor(status: number, code: string, detail: string) {
    super(
      `Cannot publish: the server answered ${status}${
        code ? ` ${code}` : ""
      }: ${detail}`,
    );
    this.name = "PublishError";
    this.status = status;
    this.code = code;
    this.detail = detail;
  }
}

/**
 * Posts one event and returns its id.
 *
 * @param url The stream's http(s):// URL (ws(s):// is turned into http(s)://).
 * @param data Text, or bytes.
 * @param options See {@link PublishOptions}.
 * @returns The event's id.
 * @throws {PublishError} When the server refuses or answers without an id.
 * @throws {TypeError} When the network fails (from fetch).
 */
export async function postEvent(
  url: URL,
  data: string | Uint8Array,
  options: PublishOptions,
): Promise<PublishResult> {
  const headers: Record<string, string> = {
    "Content-Type": options.contentType ??
      (typeof data === "string"
        ? "text/plain;charset=utf-8"
        : "application/octet-stream"),
  };
  if (options.token) headers.Authorization = `Bearer ${options.token}`;
  // fetch() refuses a URL with credentials (Node, naming the password in
  // its error): they go in a header instead, as subscribe() does.
  const target = new URL(url);
  if (target.username !== "" || target.password !== "") {
    headers.Authorization ??= basicAuth(target);
    target.username = "";
    target.password = "";
  }
  const response = await fetch(target.href, {
    method: "POST",
    headers,
    body: data as BodyInit,
    signal: options.signal,
  });
  const text = await readAnswer(response);
  let json: { id?: unknown; error?: unknown; code?: unknown } = {};
  try {
    json = JSON.parse(text) ?? {};
  } catch {
    // Not JSON (a proxy's error page): the text is shown instead.
  }
  if (response.ok && typeof json.id === "string") return { id: json.id };
  throw new PublishError(
    response.status,
    typeof json.code === "string" ? json.code : "",
    typeof json.error === "string"
      ? json.error
      : response.ok
      ? "no event id in the answer"
      : text.slice(0, 300),
  );
}

/** The most of an answer read: wsevent's answers are a few hundred bytes. */
const MAX_ANSWER_BYTES = 64 * 1024;

/**
 * Reads the answer's text, at most {@link MAX_ANSWER_BYTES} (the rest is
 * cancelled), so a server that is not wsevent and answers a large or
 * endless body cannot hold the promise or grow memory.
 */
async function readAnswer(response: Response): Promise<string> {
  // No stream (an empty answer, or a fetch stand-in): read it whole.
  if (!response.body) return await response.text();
  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let bytes = 0;
  while (bytes < MAX_ANSWER_BYTES) {
    const { done, value } = await reader.read();
    if (done) return text + decoder.decode();
    bytes += value.byteLength;
    text += decoder.decode(value, { stream: true });
  }
  await reader.cancel().catch(() => {});
  return text;
}
