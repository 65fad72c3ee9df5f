/**
 * Reading a published body within a size limit.
 *
 * @module
 */

import type { EventData } from "../event.ts";
import { basicAuth } from "../client/_transports.ts";
import { redactSecretsIn, redactUrl } from "../redact.ts";

/** Why a body was refused. */
export class BodyError extends Error {
  /** HTTP status to answer. */
  readonly status: 400 | 408 | 413;
  /** Stable code for clients. */
  readonly code: string;
  /**
   * @param status HTTP status.
   * @param code Stable code.
   * @param message What is wrong.
   */
  constructor(status: 400 | 408 | 413, code: string, message: string) {
    super(message);
    this.name = "BodyError";
    this.status = status;
    this.code = code;
  }
}

const DECODER = new TextDecoder("utf-8", { fatal: true });

/**
 * Reads a request body as one event payload: text for text, JSON or
 * unlabelled bodies (which must be UTF-8), bytes for other types.
 *
 * @param request The request.
 * @param maxBytes The largest body accepted.
 * @param timeoutMs Time the whole body has to arrive in (0: no bound), so
 * a client that sends a byte now and then cannot hold a connection.
 * @returns The payload.
 * @throws {BodyError} 413 over the limit, 400 when empty or not UTF-8, 408
 * when the body takes longer than `timeoutMs`.
 */
export async function readEventBody(
  request: Request,
  maxBytes: number,
  timeoutMs = 0,
): Promise<EventData> {
  const headers = request.headers;
  const length = headers.get("content-length");
  if (length !== null && Number(length) > maxBytes) {
    await request.body?.cancel().catch(() => {});
    throw tooLarge(maxBytes);
  }
  // With a Content-Length within the limit the runtime's HTTP parser bounds
  // the body, and reading it whole is much cheaper than chunk by chunk.
  const reading = length !== null && /^[0-9]+$/.test(length)
    ? readWhole(request)
    : readLimited(request.body, maxBytes);
  const bytes = timeoutMs > 0
    ? await withinTime(reading, timeoutMs)
    : await reading;
  if (bytes.byteLength === 0) {
    throw new BodyError(400, "empty_body", "Cannot publish an empty body");
  }
  const type = (headers.get("content-type") ?? "").toLowerCase();
  const binary = type !== "" && !type.startsWith("text/") &&
    !type.includes("json") &&
    !type.startsWith("application/x-www-form-urlencoded");
  if (binary) return bytes;
  try {
    return DECODER.decode(bytes);
  } catch {
    throw new BodyError(
      400,
      "invalid_utf8",
      "Cannot publish a text body that is not valid UTF-8; send application/octet-stream for bytes",
    );
  }
}

/** The whole body as bytes: `bytes()` where the runtime has it (one object less). */
async function readWhole(request: Request): Promise<Uint8Array> {
  const body = request as { bytes?: () => Promise<Uint8Array> };
  return typeof body.bytes === "function"
    ? await body.bytes()
    : new Uint8Array(await request.arrayBuffer());
}

/**
 * The body, or a 408 BodyError once `timeoutMs` passed (the read is left to
 * fail when the runtime closes the connection after the answer).
 */
function withinTime(
  reading: Promise<Uint8Array>,
  timeoutMs: number,
): Promise<Uint8Array> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const late = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new BodyError(
            408,
            "body_timeout",
            `Cannot publish: the body did not arrive within ${timeoutMs} ms`,
          ),
        ),
      timeoutMs,
    );
  });
  reading.catch(() => {});
  return Promise.race([reading, late]).finally(() => clearTimeout(timer));
}

function tooLarge(maxBytes: number): BodyError {
  return new BodyError(
    413,
    "body_too_large",
    `Cannot publish a body over ${maxBytes} bytes`,
  );
}

async function readLimited(
  body: ReadableStream<Uint8Array> | null,
  maxBytes: number,
): Promise<Uint8Array> {
  if (body === null) return new Uint8Array(0);
  const chunks: Uint8Array[] = [];
  let total = 0;
  const reader = body.getReader();
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.byteLength;
    if (total > maxBytes) {
      await reader.cancel().catch(() => {});
      throw tooLarge(maxBytes);
    }
    chunks.push(value);
  }
  if (chunks.length === 1) return chunks[0];
  const out = new Uint8Array(total);
  let offset = 0;
  for (const chunk of chunks) {
    out.set(chunk, offset);
    offset += chunk.byteLength;
  }
  return out;
}

/** Largest upstream answer read to learn the event's id. */
const MAX_ANSWER_BYTES = 4096;

/** What an id from an upstream may look like to be passed on. */
const ID_PATTERN = /^[A-Za-z0-9._:-]{1,200}$/;

/**
 * Sends a publish to the origin (relay with --forward-publish), so the event
 * gets its id there and comes back down the stream to every relay. The
 * relay answers with its own JSON, never with the upstream's body or
 * content type (an upstream is not trusted to write into our answers), and
 * shows the upstream's URL only with its credentials hidden.
 *
 * @param data The body, already read within the size limit.
 * @param type The request's Content-Type.
 * @param url The upstream stream URL (ws:// becomes http://).
 * @param token The token to present upstream.
 * @returns 202 with the origin's id (null when it gave none); 502 when it
 * cannot be reached or refuses, with its status.
 */
export async function forwardPublish(
  data: EventData,
  type: string | null,
  url: URL,
  token: string | null,
): Promise<Response> {
  const target = new URL(url);
  if (target.protocol === "ws:") target.protocol = "http:";
  if (target.protocol === "wss:") target.protocol = "https:";
  target.search = "";
  const headers = new Headers();
  headers.set(
    "content-type",
    type ??
      (typeof data === "string"
        ? "text/plain; charset=utf-8"
        : "application/octet-stream"),
  );
  // fetch() refuses a URL with credentials: they go in a header instead.
  if (token) headers.set("authorization", `Bearer ${token}`);
  else if (target.username !== "" || target.password !== "") {
    headers.set("authorization", basicAuth(target));
  }
  target.username = "";
  target.password = "";
  let answer: Response;
  try {
    answer = await fetch(target, {
      method: "POST",
      headers,
      body: data as BodyInit,
    });
  } catch (error) {
    const why = error instanceof Error ? error.message : String(error);
    const message = `Cannot forward the publish to ${redactUrl(target)}: ${
      redactSecretsIn(why, url)
    }`;
    return Response.json({ error: message, code: "upstream_unavailable" }, {
      status: 502,
    });
  }
  const id = await answerId(answer);
  if (answer.status >= 200 && answer.status < 300) {
    // An upstream that gives no id (not wsevent) still took the event.
    return Response.json(id === undefined ? { id: null } : { id }, {
      status: 202,
    });
  }
  return Response.json({
    error: `Cannot forward the publish: the upstream answered ${answer.status}`,
    code: "upstream_refused",
    upstreamStatus: answer.status,
  }, { status: 502 });
}

/** The `id` of an upstream's JSON answer, read within a bound. */
async function answerId(answer: Response): Promise<string | undefined> {
  if (answer.body === null) return undefined;
  let bytes: Uint8Array;
  try {
    bytes = await readLimited(answer.body, MAX_ANSWER_BYTES);
  } catch {
    return undefined;
  }
  try {
    const parsed: unknown = JSON.parse(new TextDecoder().decode(bytes));
    const id = (parsed as { id?: unknown } | null)?.id;
    return typeof id === "string" && ID_PATTERN.test(id) ? id : undefined;
  } catch {
    return undefined;
  }
}
