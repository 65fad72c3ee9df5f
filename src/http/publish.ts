/**
 * Reading a published body within a size limit.
 *
 * @module
 */

import type { EventData } from "../event.ts";

/** Why a body was refused. */
export class BodyError extends Error {
  /** HTTP status to answer. */
  readonly status: 400 | 413;
  /** Stable code for clients. */
  readonly code: string;
  /**
   * @param status HTTP status.
   * @param code Stable code.
   * @param message What is wrong.
   */
  constructor(status: 400 | 413, code: string, message: string) {
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
 * @returns The payload.
 * @throws {BodyError} 413 over the limit, 400 when empty or not UTF-8.
 */
export async function readEventBody(
  request: Request,
  maxBytes: number,
): Promise<EventData> {
  const headers = request.headers;
  const length = headers.get("content-length");
  if (length !== null && Number(length) > maxBytes) {
    await request.body?.cancel().catch(() => {});
    throw tooLarge(maxBytes);
  }
  // With a Content-Length within the limit the runtime's HTTP parser bounds
  // the body, and reading it whole is much cheaper than chunk by chunk.
  const bytes = length !== null && /^[0-9]+$/.test(length)
    ? await readWhole(request)
    : await readLimited(request.body, maxBytes);
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

/**
 * Sends a publish to the origin (relay with --forward-publish), so the event
 * gets its id there and comes back down the stream to every relay.
 *
 * @param data The body, already read within the size limit.
 * @param type The request's Content-Type.
 * @param url The upstream stream URL (ws:// becomes http://).
 * @param token The token to present upstream.
 * @returns The origin's answer, or 502 when it cannot be reached.
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
  if (token) headers.set("authorization", `Bearer ${token}`);
  try {
    const answer = await fetch(target, {
      method: "POST",
      headers,
      body: data as BodyInit,
    });
    return new Response(answer.body, {
      status: answer.status,
      headers: {
        "content-type": answer.headers.get("content-type") ??
          "application/json",
      },
    });
  } catch (error) {
    const message = `Cannot forward the publish upstream: ${
      error instanceof Error ? error.message : String(error)
    }`;
    return Response.json({ error: message, code: "upstream_unavailable" }, {
      status: 502,
    });
  }
}
