import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { BodyError, readEventBody } from "../../src/http/publish.ts";

function post(
  body: BodyInit | null,
  headers: Record<string, string> = {},
): Request {
  return new Request("http://localhost/events", {
    method: "POST",
    headers,
    body,
  });
}

/** A chunked body: no Content-Length, delivered in pieces. */
function chunked(...chunks: Uint8Array[]): Request {
  const body = new ReadableStream<Uint8Array>({
    start(controller) {
      for (const chunk of chunks) controller.enqueue(chunk);
      controller.close();
    },
  });
  return new Request(
    "http://localhost/events",
    { method: "POST", body, duplex: "half" } as RequestInit,
  );
}

async function bodyError(
  promise: Promise<unknown>,
  status: number,
  code: string,
): Promise<void> {
  await assert.rejects(promise, (error: unknown) => {
    assert.ok(error instanceof BodyError);
    assert.equal(error.name, "BodyError");
    assert.equal(error.status, status);
    assert.equal(error.code, code);
    return true;
  });
}

describe("readEventBody()", () => {
  test("readEventBody() reads unlabelled, text and JSON bodies as text", async () => {
    assert.equal(await readEventBody(post("héllo"), 100), "héllo");
    for (
      const type of [
        "text/plain",
        "text/plain; charset=utf-8",
        "Application/JSON",
        "application/vnd.api+json",
        "application/x-www-form-urlencoded",
      ]
    ) {
      const request = post("a=1", { "content-type": type });
      assert.equal(await readEventBody(request, 100), "a=1", type);
    }
  });

  test("readEventBody() reads other types as bytes", async () => {
    for (const type of ["application/octet-stream", "image/png"]) {
      const request = post(new Uint8Array([0, 255, 1]), {
        "content-type": type,
      });
      assert.deepEqual(
        await readEventBody(request, 100),
        new Uint8Array([0, 255, 1]),
        type,
      );
    }
  });

  test("readEventBody() joins a chunked body", async () => {
    const encoder = new TextEncoder();
    assert.equal(
      await readEventBody(
        chunked(encoder.encode("ab"), encoder.encode("cd")),
        4,
      ),
      "abcd",
    );
  });

  test("readEventBody() accepts a body of exactly the limit", async () => {
    assert.equal(await readEventBody(post("12345"), 5), "12345");
  });

  test("readEventBody() refuses an empty or missing body with 400 empty_body", async () => {
    await bodyError(readEventBody(post(""), 100), 400, "empty_body");
    await bodyError(readEventBody(post(null), 100), 400, "empty_body");
  });

  test("readEventBody() refuses a declared Content-Length over the limit with 413", async () => {
    const request = post("123456", { "content-length": "6" });
    await bodyError(readEventBody(request, 5), 413, "body_too_large");
  });

  test("readEventBody() refuses a chunked body once it grows over the limit", async () => {
    const chunk = new Uint8Array(4);
    await bodyError(
      readEventBody(chunked(chunk, chunk), 5),
      413,
      "body_too_large",
    );
  });

  test("readEventBody() refuses text that is not UTF-8 with 400 invalid_utf8", async () => {
    const bytes = new Uint8Array([0x61, 0xff, 0xfe]);
    await bodyError(readEventBody(post(bytes), 100), 400, "invalid_utf8");
    await bodyError(
      readEventBody(post(bytes, { "content-type": "text/plain" }), 100),
      400,
      "invalid_utf8",
    );
  });
});
