import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { Buffer } from "node:buffer";
import { createServer } from "node:http";
import type { AddressInfo } from "node:net";
import { createPoster, parseResponse } from "../../bench/lib/poster.ts";

function parse(text: string) {
  return parseResponse(Buffer.from(text, "latin1"));
}

describe("bench poster", () => {
  test("parseResponse() frames by Content-Length, chunked encoding, or none for 204", () => {
    const withLength =
      'HTTP/1.1 202 Accepted\r\nContent-Length: 9\r\n\r\n{"id":"x"}';
    assert.deepEqual(parse(withLength), {
      end: withLength.length - 1,
      status: 202,
    });
    const chunked =
      "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n0\r\n\r\nNEXT";
    assert.deepEqual(parse(chunked), { end: chunked.length - 4, status: 202 });
    assert.deepEqual(parse("HTTP/1.1 204 No Content\r\n\r\n"), {
      end: 27,
      status: 204,
    });
  });

  test("parseResponse() waits for the rest of an incomplete answer", () => {
    assert.equal(parse("HTTP/1.1 202 Accepted\r\nContent-Le"), null);
    assert.equal(
      parse("HTTP/1.1 202 Accepted\r\nContent-Length: 5\r\n\r\nab"),
      null,
    );
    assert.equal(
      parse(
        "HTTP/1.1 202 Accepted\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nab",
      ),
      null,
    );
  });

  test("parseResponse() refuses what it cannot frame", () => {
    assert.ok(parse("SSH-2.0-OpenSSH\r\n\r\n") instanceof Error);
    assert.ok(
      parse("HTTP/1.1 200 OK\r\nConnection: close\r\n\r\nbody") instanceof
        Error,
    );
    assert.ok(
      parse(
        "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n",
      ) instanceof
        Error,
    );
  });

  test("createPoster() reuses keep-alive connections, reports non-2xx and recovers from a closed connection", async () => {
    const bodies: string[] = [];
    const sockets = new Set<unknown>();
    const server = createServer((request, response) => {
      sockets.add(request.socket);
      let body = "";
      request.on("data", (chunk) => (body += chunk));
      request.on("end", () => {
        bodies.push(body);
        if (body === "refuse") {
          response.writeHead(503).end("busy");
        } else if (body === "drop") {
          request.socket.destroy();
        } else {
          response.writeHead(202, { "content-type": "application/json" })
            .end('{"id":"e-1"}');
        }
      });
    });
    await new Promise<void>((resolve) =>
      server.listen(0, "127.0.0.1", resolve)
    );
    const { port } = server.address() as AddressInfo;
    const poster = createPoster(`http://127.0.0.1:${port}/events`);
    try {
      assert.equal(await poster.post("one"), "");
      assert.equal(await poster.post("two"), "");
      assert.equal(
        sockets.size,
        1,
        "one keep-alive connection for sequential posts",
      );
      const both = await Promise.all([
        poster.post("three"),
        poster.post("four"),
      ]);
      assert.deepEqual(both, ["", ""]);
      assert.equal(
        sockets.size,
        2,
        "a second connection while the first is busy",
      );
      assert.equal(await poster.post("refuse"), "POST answered 503");
      assert.match(await poster.post("drop"), /^POST failed: connection ended/);
      assert.equal(await poster.post("after"), "");
      assert.deepEqual(bodies, [
        "one",
        "two",
        "three",
        "four",
        "refuse",
        "drop",
        "after",
      ]);
    } finally {
      poster.close();
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
