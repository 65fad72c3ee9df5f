/**
 * SIGTERM with publishes in flight: each gets an HTTP answer, `202` with
 * its id once stored or `503`, never a cut connection (which would leave
 * the publisher unable to tell whether its event was stored). Publishes
 * arriving during the shutdown get `503` `shutting_down` with
 * `Connection: close`. Raw sockets, so that any connection error shows.
 */

import assert from "node:assert/strict";
import { createConnection } from "node:net";
import { describe, test } from "node:test";
import process from "node:process";
import {
  connectWs,
  publish,
  RUNTIME,
  type Service,
  startService,
  waitFor,
  waitForReady,
  type WsClient,
  wsIds,
} from "./_helpers.ts";
import { type RedisServer, startRedis } from "./_redis.ts";

/** What a raw POST got: an HTTP answer, or the connection's error. */
interface Answer {
  status: number | null;
  headers: string;
  body: string;
  error: string | null;
}

/** A POST on its own connection; `rest` of the body is sent when asked. */
interface RawPost {
  /** Sends what is left of the body. */
  finish(): void;
  answer: Promise<Answer>;
}

function rawPost(port: number, body: string, sendAll = true): RawPost {
  const socket = createConnection({ host: "127.0.0.1", port });
  const bytes = Buffer.from(body);
  const half = sendAll ? bytes.length : Math.floor(bytes.length / 2);
  socket.write(
    `POST /events HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\n` +
      `Content-Type: text/plain\r\nContent-Length: ${bytes.length}\r\n` +
      `Connection: close\r\n\r\n`,
  );
  socket.write(bytes.subarray(0, half));
  let text = "";
  let error: string | null = null;
  socket.setEncoding("utf8");
  socket.on("data", (chunk: string) => (text += chunk));
  socket.on("error", (e: Error & { code?: string }) => {
    error = e.code ?? e.message;
  });
  const answer = new Promise<Answer>((done) => {
    socket.on("close", () => {
      const match = /^HTTP\/1\.1 (\d{3})/.exec(text);
      const split = text.indexOf("\r\n\r\n");
      done({
        status: match ? Number(match[1]) : null,
        headers: split < 0 ? text : text.slice(0, split),
        body: split < 0 ? "" : text.slice(split + 4),
        error: match ? null : error ?? "closed without an answer",
      });
    });
  });
  return {
    finish: () => socket.write(bytes.subarray(half)),
    answer,
  };
}

function idOf(answer: Answer): string {
  const match = /\{.*\}/s.exec(answer.body);
  const json = JSON.parse(match?.[0] ?? "null") as { id?: string } | null;
  assert.equal(typeof json?.id, "string", `202 without an id: ${answer.body}`);
  return json!.id!;
}

function assertShuttingDown(answer: Answer, what: string): void {
  assert.equal(answer.status, 503, `${what}: ${JSON.stringify(answer)}`);
  assert.match(answer.body, /"code":"shutting_down"/, what);
  assert.match(answer.headers, /^connection: close$/im, what);
}

/** Waits until the instance has `count` publishes in its handlers. */
async function inFlight(service: Service, count: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  for (;;) {
    const text = await (await fetch(`${service.http}/metrics`)).text();
    const now = Number(/^wsevent_publishes_in_flight (\d+)$/m.exec(text)?.[1]);
    if (now === count) return;
    assert.ok(
      Date.now() < deadline,
      `${now} publishes in flight, not ${count}`,
    );
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sends SIGTERM and waits until the instance says it is shutting down. */
async function sigterm(service: Service): Promise<void> {
  process.kill(service.proc.pid!, "SIGTERM");
  await waitFor(
    () => /received SIGTERM/.test(service.stderr()),
    10_000,
    "the SIGTERM log line",
  );
}

describe(
  `SIGTERM with publishes in flight on ${RUNTIME}: each answered 202 or 503, never a cut connection`,
  {
    timeout: 90_000,
  },
  () => {
    test("memory engine: a publish whose body is still arriving gets 503 shutting_down, a new one too, and the process exits 0", async () => {
      const service = await startService([
        "--serve-address",
        "127.0.0.1:0",
        "--no-produce",
      ]);
      try {
        // Bodies half sent: their handlers wait for the rest.
        const slow = [0, 1, 2].map((i) =>
          rawPost(service.port, `slow body ${i}`, false)
        );
        await inFlight(service, 3);
        await sigterm(service);
        // The shutdown waits for them (up to 1 s): meanwhile a new publish
        // gets 503.
        const late = await rawPost(service.port, "late").answer;
        assertShuttingDown(late, "a publish after SIGTERM");
        for (const post of slow) post.finish();
        const answers = await Promise.all(slow.map((post) => post.answer));
        for (const [i, answer] of answers.entries()) {
          assertShuttingDown(answer, `slow publish ${i}`);
        }
        const exit = await service.exited;
        assert.deepEqual(exit, { code: 0, signal: null }, service.stderr());
      } finally {
        await service.stop("SIGKILL");
      }
    });

    test("Redis engine (writes paused): publishes waiting for Redis get 202 once stored, each id is in the stream and reached a subscriber on another instance; a new one gets 503", async () => {
      let redis: RedisServer | undefined;
      const services: Service[] = [];
      let subscriber: WsClient | undefined;
      try {
        redis = await startRedis();
        const args = [
          "--serve-address",
          "127.0.0.1:0",
          "--no-produce",
          "--engine",
          redis.url,
          "--engine-timeout",
          "8000",
        ];
        const [a, b] = await Promise.all([
          startService(args),
          startService(args),
        ]);
        services.push(a, b);
        await Promise.all([
          waitForReady(a.http, true),
          waitForReady(b.http, true),
        ]);
        subscriber = connectWs(`ws://127.0.0.1:${b.port}/events?format=json`);
        await subscriber.opened;
        const first = await publish(a.http, "events", "first");
        await waitFor(
          () => wsIds(subscriber!).includes(first),
          10_000,
          "the first event on the other instance",
        );
        // Writes wait in Redis for 4 s: appends are in flight meanwhile.
        await redis.cli("CLIENT", "PAUSE", "4000", "WRITE");
        const pausedAt = Date.now();
        const posts = [0, 1, 2, 3, 4].map((i) =>
          rawPost(a.port, `in flight ${i}`)
        );
        await inFlight(a, 5);
        // Redis holds the append script of A's command connection.
        const blocked = async (): Promise<boolean> =>
          /blocked_clients:[1-9]/.test(await redis!.cli("INFO", "clients"));
        const deadline = Date.now() + 3000;
        while (!(await blocked())) {
          assert.ok(Date.now() < deadline, "no append waits in Redis");
        }
        await sigterm(a);
        assert.ok(
          Date.now() - pausedAt < 3500,
          "SIGTERM was sent while Redis still held the appends",
        );
        const late = await rawPost(a.port, "late").answer;
        assertShuttingDown(late, "a publish after SIGTERM");
        const answers = await Promise.all(posts.map((post) => post.answer));
        const ids: string[] = [];
        for (const [i, answer] of answers.entries()) {
          assert.equal(answer.error, null, `publish ${i}: ${answer.error}`);
          assert.ok(
            answer.status === 202 || answer.status === 503,
            `publish ${i}: ${JSON.stringify(answer)}`,
          );
          if (answer.status === 202) ids.push(idOf(answer));
        }
        // Redis stored what it held once the pause ended: each was answered
        // 202 (none waited past the engine's timeout).
        assert.equal(
          ids.length,
          posts.length,
          `not all answered 202: ${JSON.stringify(answers)}`,
        );
        for (const id of ids) {
          const dash = id.lastIndexOf("-");
          const entry = `0-${Number(id.slice(dash + 1)) + 1}`;
          const stream = await redis.cli(
            "XRANGE",
            "wsevent:{events}:log",
            entry,
            entry,
          );
          assert.ok(
            stream.split("\n").includes(id.slice(0, dash)),
            `${id} is not in the stream: ${stream}`,
          );
        }
        await waitFor(
          () => ids.every((id) => wsIds(subscriber!).includes(id)),
          10_000,
          `every answered id on the other instance: ${ids}`,
        );
        const exit = await a.exited;
        assert.deepEqual(exit, { code: 0, signal: null }, a.stderr());
      } finally {
        subscriber?.close();
        for (const service of services) await service.stop("SIGKILL");
        await redis?.stop();
      }
    });
  },
);
