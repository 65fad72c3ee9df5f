/**
 * Publishing over a WebSocket (`?publish`) with the Redis engine, against
 * real processes and a real redis-server: answers in order with the ids
 * subscribers of another instance receive; the bound on unanswered
 * messages (1008); Redis stopped: error frames, the socket stays, and
 * publishing resumes once Redis is back; SIGTERM with messages waiting
 * for Redis: every one answered, then 1001.
 */

import assert from "node:assert/strict";
import process from "node:process";
import { after, before, describe, test } from "node:test";
import {
  connectWs,
  nginxTemplate,
  RUNTIME,
  type Service,
  startNginx,
  startService,
  waitFor,
  waitForReady,
  type WsClient,
  wsIds,
} from "./_helpers.ts";
import { metric, rawConnect, type RawWs } from "./_raw_ws.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { publisher } from "../../src/client.ts";

function answers(ws: RawWs): Record<string, unknown>[] {
  return ws.messages.map((text) => JSON.parse(text));
}

async function answered(ws: RawWs, count: number): Promise<void> {
  await waitFor(
    () => ws.messages.length >= count || ws.isEnded(),
    20_000,
    `${count} answers (have ${ws.messages.length})`,
  );
  assert.equal(
    ws.messages.length,
    count,
    `answers: ${ws.messages.slice(-3)}; close ${JSON.stringify(ws.closeFrame)}`,
  );
}

function idsOf(ws: RawWs, from = 0, count = Infinity): string[] {
  return answers(ws).slice(from, from + count).map((answer, i) => {
    assert.equal(
      typeof answer.id,
      "string",
      `answer ${from + i}: ${ws.messages[from + i]}`,
    );
    return answer.id as string;
  });
}

describe(
  `publishing over a WebSocket (?publish), Redis engine, on ${RUNTIME}`,
  {
    timeout: 90_000,
  },
  () => {
    let redis: RedisServer;
    let a: Service;
    let b: Service;
    let subscriber: WsClient;
    const opened: RawWs[] = [];
    const connect = async (path = "events"): Promise<RawWs> => {
      const ws = await rawConnect(`ws://127.0.0.1:${a.port}/${path}?publish`);
      assert.equal(ws.status, 101, ws.body);
      opened.push(ws);
      return ws;
    };

    let args: string[];
    before(async () => {
      redis = await startRedis();
      args = [
        "--serve-address",
        "127.0.0.1:0",
        "--serve-path",
        "events",
        "--serve-path",
        "big",
        "--no-produce",
        "--buffer",
        "5000",
        "--engine",
        redis.url,
        "--engine-timeout",
        "8000",
      ];
      [a, b] = await Promise.all([startService(args), startService(args)]);
      await Promise.all([
        waitForReady(a.http, true),
        waitForReady(b.http, true),
      ]);
      subscriber = connectWs(`ws://127.0.0.1:${b.port}/events?format=json`);
      await subscriber.opened;
    });

    after(async () => {
      subscriber?.close();
      for (const ws of opened) ws.destroy();
      await a?.stop("SIGKILL");
      await b?.stop("SIGKILL");
      await redis?.stop();
    });

    test("300 messages sent at once: answered in order with the ids a subscriber on another instance receives", async () => {
      const ws = await connect();
      for (let i = 0; i < 300; i++) ws.send(1, `redis ${i}`);
      await answered(ws, 300);
      const ids = idsOf(ws);
      const seqs = ids.map((id) => Number(id.slice(id.lastIndexOf("-") + 1)));
      for (let i = 1; i < seqs.length; i++) {
        assert.equal(seqs[i], seqs[i - 1] + 1, `answers out of order at ${i}`);
      }
      await waitFor(
        () => subscriber.messages.length >= 300,
        15_000,
        "300 events on the other instance",
      );
      assert.deepEqual(wsIds(subscriber).slice(0, 300), ids);
      assert.deepEqual(
        subscriber.messages.slice(0, 300).map((m) => JSON.parse(m).data),
        Array.from({ length: 300 }, (_, i) => `redis ${i}`),
      );
    });

    test("publisher() (client module) with large events: it keeps what it sends unanswered within the server's 16 MiB, so 200 events of 120 KB in flight are all stored in order, none cut by a 1008", async () => {
      // A path the shared subscriber does not read (24 MB would make it slow).
      const events = publisher(`ws://127.0.0.1:${a.port}/big`);
      try {
        const results = await Promise.allSettled(
          Array.from(
            { length: 200 },
            (_, i) => events.publish(`${i} `.padEnd(120_000, "z")),
          ),
        );
        const refused = results.flatMap((result) =>
          result.status === "rejected" ? [String(result.reason)] : []
        );
        assert.deepEqual(refused.slice(0, 1), [], `${refused.length} refused`);
        const seqs = results.map((result) => {
          const { id } = (result as PromiseFulfilledResult<{ id: string }>)
            .value;
          return Number(id.slice(id.lastIndexOf("-") + 1));
        });
        for (let i = 1; i < seqs.length; i++) {
          assert.equal(seqs[i], seqs[i - 1] + 1, `stored out of order at ${i}`);
        }
      } finally {
        await events.close();
      }
    });

    test("through nginx (scripts/config/nginx.conf, both instances behind it): two publishers, each answered in order, every id reaches the subscriber", async () => {
      const nginx = await startNginx(nginxTemplate(), [a.port, b.port]);
      const sockets: RawWs[] = [];
      try {
        const already = subscriber.messages.length;
        for (let n = 0; n < 2; n++) {
          const ws = await rawConnect(
            `ws://127.0.0.1:${nginx.port}/events?publish`,
          );
          assert.equal(ws.status, 101, ws.body);
          sockets.push(ws);
        }
        for (let i = 0; i < 100; i++) {
          for (const [n, ws] of sockets.entries()) {
            ws.send(1, `nginx ${n} ${i}`);
          }
        }
        const ids: string[] = [];
        for (const ws of sockets) {
          await answered(ws, 100);
          ids.push(...idsOf(ws));
        }
        await waitFor(
          () => subscriber.messages.length >= already + 200,
          15_000,
          "200 events published through nginx",
        );
        assert.deepEqual(
          wsIds(subscriber).slice(already).sort(),
          [...ids].sort(),
        );
      } finally {
        // Closed first: nginx's graceful stop waits for open connections.
        for (const ws of sockets) ws.destroy();
        await nginx.stop();
      }
    });

    test("an answer known at once (an empty message) waits behind the answers of earlier messages still waiting for Redis", async () => {
      const ws = await connect();
      await redis.cli("CLIENT", "PAUSE", "1500", "WRITE");
      ws.send(1, "first");
      ws.send(1, "");
      ws.send(1, "third");
      await answered(ws, 3);
      const [first, empty, third] = answers(ws);
      assert.equal(typeof first.id, "string", JSON.stringify(first));
      assert.equal(empty.code, "empty_body", JSON.stringify(empty));
      assert.equal(typeof third.id, "string", JSON.stringify(third));
    });

    // Waits until the instance holds `count` publishes in flight (messages
    // received, waiting for the paused Redis).
    const inFlight = async (count: number): Promise<void> => {
      const deadline = Date.now() + 10_000;
      let now = -1;
      while (
        (now = await metric(a.http, "wsevent_publishes_in_flight")) < count
      ) {
        assert.ok(Date.now() < deadline, `${count} in flight (have ${now})`);
        await new Promise((r) => setTimeout(r, 20));
      }
      assert.equal(now, count);
    };

    test("1024 unanswered messages are held (Redis holds the appends); one more closes the publisher with 1008", async () => {
      await redis.cli("CLIENT", "PAUSE", "6000", "WRITE");
      try {
        const ws = await connect();
        for (let i = 0; i < 1024; i++) ws.send(1, `held ${i}`);
        await inFlight(1024);
        assert.equal(ws.isEnded(), false, "1024 unanswered are allowed");
        ws.send(1, "one too many");
        await waitFor(() => ws.closeFrame !== null, 10_000, "the close");
        assert.equal(ws.closeFrame?.code, 1008, JSON.stringify(ws.closeFrame));
        assert.match(ws.closeFrame!.reason, /1024 publishes/);
      } finally {
        await redis.cli("CLIENT", "UNPAUSE");
      }
      await inFlight(0);
    });

    test("16 MiB plus one -max-body (1 MiB) of unanswered messages are held; one more byte of them closes the publisher with 1008", async () => {
      await redis.cli("CLIENT", "PAUSE", "6000", "WRITE");
      try {
        // Not the shared subscriber's path: 17 MiB would make it slow.
        const ws = await connect("big");
        const mib = "m".repeat(1 << 20);
        for (let i = 0; i < 16; i++) ws.send(1, mib);
        ws.send(1, mib);
        await inFlight(17);
        assert.equal(ws.isEnded(), false, "17 MiB unanswered are allowed");
        ws.send(1, "m");
        await waitFor(() => ws.closeFrame !== null, 10_000, "the close");
        assert.equal(ws.closeFrame?.code, 1008, JSON.stringify(ws.closeFrame));
        assert.match(ws.closeFrame!.reason, /16 MiB unanswered/);
      } finally {
        await redis.cli("CLIENT", "UNPAUSE");
      }
      await inFlight(0);
    });

    test("a publisher gone with 20 messages waiting for Redis: each event is stored once and reaches the other instance, and the in-flight gauge returns to 0", async () => {
      const ws = await connect();
      const tag = `gone ${Date.now()}`;
      await redis.cli("CLIENT", "PAUSE", "6000", "WRITE");
      try {
        for (let i = 0; i < 20; i++) ws.send(1, `${tag} ${i}`);
        await inFlight(20);
        const open = await metric(a.http, "wsevent_publisher_connections");
        ws.destroy();
        const deadline = Date.now() + 10_000;
        while (await metric(a.http, "wsevent_publisher_connections") >= open) {
          assert.ok(Date.now() < deadline, "the publisher's close seen");
          await new Promise((r) => setTimeout(r, 20));
        }
      } finally {
        await redis.cli("CLIENT", "UNPAUSE");
      }
      await inFlight(0);
      const mine = () =>
        subscriber.messages.map((m) => JSON.parse(m).data).filter((
          data: string,
        ) => data.startsWith(tag));
      await waitFor(
        () => mine().length >= 20,
        15_000,
        "the 20 events on the other instance",
      );
      assert.deepEqual(
        mine(),
        Array.from({ length: 20 }, (_, i) => `${tag} ${i}`),
      );
      assert.equal(await metric(a.http, "wsevent_publishes_in_flight"), 0);
    });

    test("SIGKILL of a third instance mid-stream (200 messages in flight): every id it answered is stored once and reaches the other instance in the order sent, the answers in that order too", async () => {
      const c = await startService(args);
      const watcher = connectWs(`ws://127.0.0.1:${b.port}/big?format=json`);
      let pump: ReturnType<typeof setInterval> | undefined;
      try {
        await Promise.all([waitForReady(c.http, true), watcher.opened]);
        const ws = await rawConnect(`ws://127.0.0.1:${c.port}/big?publish`);
        opened.push(ws);
        assert.equal(ws.status, 101, ws.body);
        let sent = 0;
        pump = setInterval(() => {
          while (sent - ws.messages.length < 200 && !ws.isEnded()) {
            ws.send(1, `kill ${sent++}`);
          }
        }, 1);
        await waitFor(() => ws.messages.length >= 1000, 20_000, "1000 answers");
        process.kill(c.proc.pid!, "SIGKILL");
        await ws.ended;
        clearInterval(pump);
        const ids = idsOf(ws);
        const seqs = ids.map((id) => Number(id.slice(id.lastIndexOf("-") + 1)));
        for (let i = 1; i < seqs.length; i++) {
          assert.equal(
            seqs[i],
            seqs[i - 1] + 1,
            `answers out of order at ${i}`,
          );
        }
        await waitFor(
          () => watcher.messages.length >= ids.length,
          15_000,
          `the ${ids.length} answered events on the other instance`,
        );
        assert.deepEqual(wsIds(watcher).slice(0, ids.length), ids);
        // Beyond the answered ones, those stored before the kill: still in
        // the order sent, none twice.
        const data = watcher.messages.map((m) => JSON.parse(m).data);
        assert.deepEqual(
          data,
          Array.from({ length: data.length }, (_, i) => `kill ${i}`),
        );
      } finally {
        clearInterval(pump);
        watcher.close();
        await c.stop("SIGKILL");
      }
    });

    test("Redis stopped: each message gets a 503 engine_unavailable error frame, the socket stays open; Redis back: publishing resumes and reaches the other instance", async () => {
      const ws = await connect();
      await redis.kill();
      await waitForReady(a.http, false);
      for (let i = 0; i < 3; i++) ws.send(1, `down ${i}`);
      await answered(ws, 3);
      for (const answer of answers(ws)) {
        assert.equal(answer.code, "engine_unavailable", JSON.stringify(answer));
        assert.equal(answer.status, 503);
        assert.match(String(answer.error), /Cannot publish/);
      }
      assert.equal(ws.isEnded(), false, "the publisher stays connected");
      await redis.restart();
      await Promise.all([
        waitForReady(a.http, true),
        waitForReady(b.http, true),
      ]);
      ws.send(1, "back");
      await answered(ws, 4);
      const [id] = idsOf(ws, 3);
      await waitFor(
        () => wsIds(subscriber).includes(id),
        15_000,
        "the event published after Redis came back, on the other instance",
      );
    });

    test("SIGTERM with messages waiting for Redis: each is answered with its id, a later one with shutting_down, then the socket closes with 1001 and the process exits 0", async () => {
      const ws = await connect();
      const before = ws.messages.length;
      await redis.cli("CLIENT", "PAUSE", "4000", "WRITE");
      for (let i = 0; i < 20; i++) ws.send(1, `in flight ${i}`);
      const deadline = Date.now() + 10_000;
      while (await metric(a.http, "wsevent_publishes_in_flight") !== 20) {
        assert.ok(Date.now() < deadline, "20 publishes in flight");
        await new Promise((r) => setTimeout(r, 20));
      }
      process.kill(a.proc.pid!, "SIGTERM");
      await waitFor(
        () => /received SIGTERM/.test(a.stderr()),
        10_000,
        "the SIGTERM log line",
      );
      ws.send(1, "after SIGTERM");
      await waitFor(
        () => ws.closeFrame !== null || ws.isEnded(),
        20_000,
        "the close",
      );
      assert.equal(ws.closeFrame?.code, 1001, JSON.stringify(ws.closeFrame));
      await answered(ws, before + 21);
      const ids = idsOf(ws, before, 20);
      assert.deepEqual(answers(ws)[before + 20], {
        error: "The instance is shutting down",
        code: "shutting_down",
        status: 503,
      });
      await waitFor(
        () => ids.every((id) => wsIds(subscriber).includes(id)),
        15_000,
        "every answered id on the other instance",
      );
      assert.deepEqual(await a.exited, { code: 0, signal: null }, a.stderr());
    });
  },
);
