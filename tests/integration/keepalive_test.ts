/**
 * Idle keep-alive connections outlive a proxy's pooled ones: a POST sent on
 * a connection that has been idle for longer than Node's default 5 s still
 * gets its 202 (nginx keeps pooled upstream connections for 60 s and does
 * not retry a POST whose connection the backend closed). README's 65 s is
 * checked as the value the Node adapter gives its server (idling 65 s in a
 * test would cost too much), and the idle past Node's default shows that it
 * takes effect.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createConnection, type Socket } from "node:net";
import { Server } from "node:http";
import { startService, waitFor } from "./_helpers.ts";
import { runtime as nodeRuntime } from "../../src/runtime/node.ts";

const IDLE_MS = 6500;

/** Whether the server closed the connection (remembered from the start). */
function watchClose(socket: Socket): () => boolean {
  let closed = false;
  socket.once("end", () => (closed = true));
  socket.once("close", () => (closed = true));
  return () => closed;
}

function post(
  socket: Socket,
  body: string,
  closed: () => boolean,
): Promise<string> {
  return new Promise((resolve, reject) => {
    if (closed() || socket.destroyed) {
      reject(new Error("the server closed the idle connection"));
      return;
    }
    let answer = "";
    const onData = (chunk: Buffer) => {
      answer += chunk.toString("latin1");
      const end = answer.indexOf("\r\n\r\n");
      const length = /content-length: *(\d+)/i.exec(answer);
      if (end >= 0 && length && answer.length >= end + 4 + Number(length[1])) {
        done();
        resolve(answer);
      }
    };
    const onEnd = () => {
      done();
      reject(new Error(`connection ended; got ${JSON.stringify(answer)}`));
    };
    const done = () => {
      socket.off("data", onData);
      socket.off("end", onEnd);
      socket.off("error", onEnd);
    };
    socket.on("data", onData);
    socket.once("end", onEnd);
    socket.once("error", onEnd);
    socket.write(
      `POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
    );
  });
}

describe("keep-alive", () => {
  test(
    `a POST on a keep-alive connection idle for ${IDLE_MS} ms (past Node's default 5 s) is answered 202`,
    {
      timeout: 30_000,
    },
    async () => {
      const hub = await startService([
        "--serve-address",
        "127.0.0.1:0",
        "--no-produce",
      ]);
      const socket = createConnection({ host: "127.0.0.1", port: hub.port });
      socket.on("error", () => {});
      const closed = watchClose(socket);
      try {
        await new Promise<void>((ok) => socket.once("connect", () => ok()));
        assert.match(await post(socket, "first", closed), /^HTTP\/1\.1 202/);
        await new Promise((r) => setTimeout(r, IDLE_MS));
        assert.match(await post(socket, "second", closed), /^HTTP\/1\.1 202/);
      } finally {
        socket.destroy();
        await hub.stop();
      }
    },
  );
});

describe("keep-alive setting", () => {
  test("the Node adapter (Node's CLI, and Deno's on node:http; run in-process on every runtime) keeps idle connections 65 s, above nginx's 60 s, with headersTimeout above that", async () => {
    // The server @hono/node-server creates, caught as it starts listening.
    const listen = Server.prototype.listen;
    const servers: Server[] = [];
    Server.prototype.listen = function (
      this: Server,
      ...args: unknown[]
    ): Server {
      servers.push(this);
      return (listen as (...a: unknown[]) => Server).apply(this, args);
    };
    let running: Awaited<ReturnType<typeof nodeRuntime.serve>> | undefined;
    try {
      running = await nodeRuntime.serve(() => new Response("ok"), {
        hostname: "127.0.0.1",
        port: 0,
        maxFrameBytes: 1024,
      });
    } finally {
      Server.prototype.listen = listen;
    }
    try {
      assert.equal(servers.length, 1);
      assert.equal(servers[0].keepAliveTimeout, 65_000);
      assert.ok(
        servers[0].headersTimeout > servers[0].keepAliveTimeout,
        `headersTimeout ${servers[0].headersTimeout}`,
      );
      const answer = await fetch(`http://127.0.0.1:${running.port}/`);
      assert.equal(await answer.text(), "ok");
    } finally {
      await running.shutdown();
    }
  });
});

/** Longer than Bun's default idleTimeout (10 s, checked every few seconds). */
const QUIET_MS = 15_000;

describe("quiet streams", () => {
  test(
    `an SSE stream with nothing to send for ${
      QUIET_MS / 1000
    } s (past Bun's default 10 s idle timeout; heartbeats 60 s apart) stays open and gets the next event`,
    { timeout: 40_000 },
    async () => {
      const hub = await startService([
        "--serve-address",
        "127.0.0.1:0",
        "--no-produce",
        "--heartbeat",
        "60000",
      ]);
      const socket = createConnection({ host: "127.0.0.1", port: hub.port });
      socket.on("error", () => {});
      const closed = watchClose(socket);
      let text = "";
      socket.on("data", (chunk: Buffer) => (text += chunk.toString("latin1")));
      try {
        await new Promise<void>((ok) => socket.once("connect", () => ok()));
        socket.write(
          "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: text/event-stream\r\n\r\n",
        );
        await waitFor(() => /\r\n\r\n/.test(text), 5_000, "the SSE headers");
        assert.match(text, /^HTTP\/1\.1 200/);
        const quietFrom = text.length;
        // The idle period itself is what is tested: nothing to wait for.
        await new Promise((r) => setTimeout(r, QUIET_MS));
        assert.equal(closed(), false, "the server closed the quiet stream");
        assert.equal(
          text.slice(quietFrom).includes("data:"),
          false,
          "nothing was sent meanwhile",
        );
        const answer = await fetch(`${hub.http}/events`, {
          method: "POST",
          body: "after the quiet",
        });
        assert.equal(answer.status, 202);
        await answer.body?.cancel();
        await waitFor(
          () => text.includes("data: after the quiet\n") || closed(),
          5_000,
          "the event on the quiet stream",
        );
        assert.equal(closed(), false, "the server closed the quiet stream");
        assert.ok(text.includes("data: after the quiet\n"));
      } finally {
        socket.destroy();
        await hub.stop();
      }
    },
  );
});
