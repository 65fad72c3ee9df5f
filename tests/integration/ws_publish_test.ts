/**
 * Publishing over a WebSocket (`GET /<path>?publish`), memory engine,
 * against a real process: every message answered in order with the id
 * subscribers then receive; each bad input refused as a POST would be
 * (401/403/404/400 before the upgrade, an error frame after it, or the
 * WebSocket close code the protocol prescribes); the client module's
 * `publisher()`. Raw sockets, so what the server sends shows as it is.
 */

import assert from "node:assert/strict";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { after, before, describe, test } from "node:test";
import {
  connectWs,
  freePort,
  relayConnected,
  ROOT,
  RUNTIME,
  runtimeCommand,
  type Service,
  startChild,
  startHub,
  startRelay,
  startService,
  startServiceWith,
  waitFor,
  wsIds,
} from "./_helpers.ts";
import { encodeFrame, metric, rawConnect, type RawWs } from "./_raw_ws.ts";
import { makeKey, nowSeconds } from "../http/_jwt_keys.ts";
import {
  publisher,
  PublishError,
  PublishUnconfirmedError,
} from "../../src/client.ts";

const TOKEN = "pub-token";
const MAX_BODY = 1000;

/** Parsed answer frames of a publisher connection. */
function answers(ws: RawWs): Record<string, unknown>[] {
  return ws.messages.map((text) => JSON.parse(text));
}

async function answered(ws: RawWs, count: number): Promise<void> {
  await waitFor(
    () => ws.messages.length >= count || ws.isEnded(),
    15_000,
    `${count} answers (have ${ws.messages.length})`,
  );
  assert.equal(
    ws.messages.length,
    count,
    `answers: ${ws.messages.slice(-3)}; close ${JSON.stringify(ws.closeFrame)}`,
  );
}

function idsOfAnswers(ws: RawWs): string[] {
  return answers(ws).map((answer) => answer.id as string);
}

async function closedWith(ws: RawWs, code: number): Promise<void> {
  await waitFor(() => ws.closeFrame !== null || ws.isEnded(), 10_000, "close");
  assert.equal(ws.closeFrame?.code, code, JSON.stringify(ws.closeFrame));
}

describe(
  `publishing over a WebSocket (?publish), memory engine, on ${RUNTIME}`,
  {
    timeout: 60_000,
  },
  () => {
    let service: Service;
    let dir: string;
    let sign: (rights: Record<string, unknown>) => Promise<string>;
    let key: Awaited<ReturnType<typeof makeKey>>;
    const opened: RawWs[] = [];

    const connect = async (
      path: string,
      headers: Record<string, string> = { Authorization: `Bearer ${TOKEN}` },
    ): Promise<RawWs> => {
      const ws = await rawConnect(`ws://127.0.0.1:${service.port}/${path}`, {
        headers,
      });
      opened.push(ws);
      return ws;
    };

    before(async () => {
      key = await makeKey("RSA");
      sign = (rights) => key.sign({ wsevent: rights, exp: nowSeconds() + 600 });
      dir = mkdtempSync(join(tmpdir(), "wsevent-wspub-"));
      writeFileSync(join(dir, "jwt.pem"), key.material);
      service = await startService([
        "--serve-address",
        "127.0.0.1:0",
        "--serve-path",
        "events",
        "--serve-path",
        "other",
        "--serve-path",
        "rooms/*",
        "--jwt-leeway",
        "0",
        "--no-produce",
        "--buffer",
        "2000",
        "--max-body",
        String(MAX_BODY),
        "--publish-token",
        TOKEN,
        "--jwt-key",
        `@${join(dir, "jwt.pem")}`,
      ]);
    });

    after(async () => {
      for (const ws of opened) ws.destroy();
      await service?.stop();
      rmSync(dir, { recursive: true, force: true });
    });

    test("500 messages sent at once (text and binary) are answered in order with the ids a subscriber receives, with their payloads", async () => {
      const subscriber = connectWs(
        `ws://127.0.0.1:${service.port}/events?format=json&token=${await sign(
          { subscribe: ["*"] },
        )}`,
      );
      try {
        await subscriber.opened;
        const ws = await connect("events?publish");
        assert.equal(ws.status, 101, ws.body);
        const sent: string[] = [];
        for (let i = 0; i < 500; i++) {
          if (i % 50 === 49) {
            ws.send(2, new Uint8Array([i & 255, 0, 255]));
            sent.push(`b${i}`);
          } else {
            ws.send(1, `event ${i} ✓`);
            sent.push(`event ${i} ✓`);
          }
        }
        await answered(ws, 500);
        const ids = answers(ws).map((answer, i) => {
          assert.equal(
            typeof answer.id,
            "string",
            `answer ${i}: ${ws.messages[i]}`,
          );
          return answer.id as string;
        });
        const seqs = ids.map((id) => Number(id.slice(id.lastIndexOf("-") + 1)));
        for (let i = 1; i < seqs.length; i++) {
          assert.equal(
            seqs[i],
            seqs[i - 1] + 1,
            `answers out of order at ${i}`,
          );
        }
        await waitFor(
          () => subscriber.messages.length >= 500,
          15_000,
          "500 events at the subscriber",
        );
        assert.deepEqual(wsIds(subscriber), ids);
        const received = subscriber.messages.map((text) => JSON.parse(text));
        for (const [i, event] of received.entries()) {
          if (sent[i].startsWith("b")) {
            const byte = Number(sent[i].slice(1)) & 255;
            assert.deepEqual(
              [event.encoding, event.data],
              ["base64", btoa(String.fromCharCode(byte, 0, 255))],
              `event ${i} is the binary payload`,
            );
          } else assert.equal(event.data, sent[i], `event ${i}'s payload`);
        }
        assert.equal(ws.isEnded(), false, "the publisher stays connected");
        assert.ok(
          await metric(service.http, "wsevent_publisher_connections") >= 1,
          "the open publisher is counted",
        );
      } finally {
        subscriber.close();
      }
    });

    test("an empty message gets the POST's 400 empty_body as an error frame, and the socket stays open", async () => {
      const ws = await connect("events?publish");
      ws.send(1, "");
      ws.send(2, new Uint8Array(0));
      ws.send(1, "after");
      await answered(ws, 3);
      const [empty, emptyBinary, after] = answers(ws);
      for (const answer of [empty, emptyBinary]) {
        assert.deepEqual(answer, {
          error: "Cannot publish an empty body",
          code: "empty_body",
          status: 400,
        });
      }
      assert.equal(typeof after.id, "string");
      assert.equal(ws.isEnded(), false);
    });

    test("a text message that is not UTF-8 closes with 1007, as the WebSocket protocol prescribes; nothing is published", async () => {
      const before = await metric(
        service.http,
        "wsevent_events_published_total",
      );
      const ws = await connect("other?publish");
      ws.send(1, new Uint8Array([0x68, 0xff, 0xfe, 0x69]));
      await closedWith(ws, 1007);
      assert.deepEqual(ws.messages, []);
      assert.equal(
        await metric(service.http, "wsevent_events_published_total"),
        before,
      );
    });

    test("a message over --max-body closes with 1009 (message too big); one at the limit is stored", async () => {
      const ws = await connect("other?publish");
      ws.send(1, "x".repeat(MAX_BODY));
      await answered(ws, 1);
      assert.equal(typeof answers(ws)[0].id, "string");
      ws.send(1, "x".repeat(MAX_BODY + 1));
      await closedWith(ws, 1009);
      assert.equal(ws.messages.length, 1);
    });

    test("the publish token or a JWT with publish rights is checked before the upgrade: 401 without or with a wrong one, 403 for a JWT without the topic; ?token= works", async () => {
      const noToken = await connect("events?publish", {});
      assert.equal(noToken.status, 401, noToken.body);
      assert.match(noToken.body, /"code":"unauthorized"/);
      const wrong = await connect("events?publish", {
        Authorization: "Bearer nope",
      });
      assert.equal(wrong.status, 401, wrong.body);
      const subscribeOnly = await connect("events?publish", {
        Authorization: `Bearer ${await sign({
          subscribe: ["*"],
          publish: ["other"],
        })}`,
      });
      assert.equal(subscribeOnly.status, 403, subscribeOnly.body);
      assert.match(subscribeOnly.body, /"code":"forbidden_topic"/);
      const allowed = await connect("events?publish", {
        Authorization: `Bearer ${await sign({ publish: ["events"] })}`,
      });
      assert.equal(allowed.status, 101, allowed.body);
      const query = await connect(`events?publish&token=${TOKEN}`, {});
      assert.equal(query.status, 101, query.body);
      query.send(1, "by query token");
      await answered(query, 1);
      assert.equal(typeof answers(query)[0].id, "string");
      // A subscriber is not a publisher: its frames publish nothing.
      const before = await metric(
        service.http,
        "wsevent_events_published_total",
      );
      const plain = await connect(
        `events?token=${await sign({ subscribe: ["*"] })}`,
        {},
      );
      assert.equal(plain.status, 101);
      plain.send(1, "not an event");
      const probe = await connect("events?publish");
      probe.send(1, "probe");
      await answered(probe, 1);
      assert.equal(
        await metric(service.http, "wsevent_events_published_total"),
        before + 1,
        "only the probe was published",
      );
    });

    test("a topic on demand (rooms/*) is created by its publisher and reaches its subscriber; a bad topic name is 400 before the upgrade", async () => {
      const token = await sign({
        subscribe: ["rooms/*"],
        publish: ["rooms/*"],
      });
      const ws = await connect("rooms/a?publish", {
        Authorization: `Bearer ${token}`,
      });
      assert.equal(ws.status, 101, ws.body);
      ws.send(1, "first in rooms/a");
      await answered(ws, 1);
      const [first] = idsOfAnswers(ws);
      const subscriber = connectWs(
        `ws://127.0.0.1:${service.port}/rooms/a?format=json&token=${token}&lastEventId=${first}`,
      );
      try {
        await subscriber.opened;
        ws.send(1, "second in rooms/a");
        await answered(ws, 2);
        await waitFor(
          () => subscriber.messages.length >= 1,
          10_000,
          "the second event at the subscriber",
        );
        assert.deepEqual(wsIds(subscriber), [idsOfAnswers(ws)[1]]);
      } finally {
        subscriber.close();
      }
      const bad = await connect("rooms/bad!name?publish", {
        Authorization: `Bearer ${token}`,
      });
      assert.equal(bad.status, 400, bad.body);
      assert.match(bad.body, /"code":"bad_topic"/);
    });

    test("a JWT that expires while its publisher is open: later messages are answered 401 as a POST would be, and publish nothing", async () => {
      const ws = await connect("other?publish", {
        Authorization: `Bearer ${await key.sign({
          wsevent: { publish: ["other"] },
          exp: nowSeconds() + 3,
        })}`,
      });
      assert.equal(ws.status, 101, ws.body);
      ws.send(1, "before expiry");
      await answered(ws, 1);
      assert.equal(typeof answers(ws)[0].id, "string", ws.messages[0]);
      const expired = (nowSeconds() + 4) * 1000;
      while (Date.now() <= expired) {
        await new Promise((r) => setTimeout(r, 100));
      }
      const before = await metric(
        service.http,
        "wsevent_events_published_total",
      );
      ws.send(1, "after expiry");
      await answered(ws, 2);
      assert.deepEqual(answers(ws)[1], {
        error: "Cannot publish: the token has expired",
        code: "unauthorized",
        status: 401,
      });
      assert.equal(
        await metric(service.http, "wsevent_events_published_total"),
        before,
      );
    });

    test("an unknown path is 404, a ?publish with a value is 400, and ?publish without an upgrade is 400, all before any upgrade", async () => {
      const missing = await connect("nowhere?publish");
      assert.equal(missing.status, 404, missing.body);
      const bad = await connect("events?publish=maybe");
      assert.equal(bad.status, 400, bad.body);
      assert.match(bad.body, /\?publish takes no value/);
      const plain = await fetch(`${service.http}/events?publish`, {
        headers: { Authorization: `Bearer ${TOKEN}` },
      });
      assert.equal(plain.status, 400);
      assert.match((await plain.json()).error, /needs a WebSocket upgrade/);
    });

    test("publisher() (client module): many publishes in flight resolve in order; a refused one rejects with PublishError; a refused connection rejects its publishes", async () => {
      const url = `ws://127.0.0.1:${service.port}/events`;
      const events = publisher(url, { token: TOKEN, maxInFlight: 16 });
      const results = await Promise.all(
        Array.from({ length: 200 }, (_, i) => events.publish(`client ${i}`)),
      );
      const seqs = results.map(({ id }) =>
        Number(id.slice(id.lastIndexOf("-") + 1))
      );
      for (let i = 1; i < seqs.length; i++) {
        assert.equal(
          seqs[i],
          seqs[i - 1] + 1,
        );
      }
      await assert.rejects(
        events.publish(""),
        (error: unknown) =>
          error instanceof PublishError && error.status === 400 &&
          error.code === "empty_body",
      );
      assert.equal(
        typeof (await events.publish(new Uint8Array([1]))).id,
        "string",
      );
      await events.close();
      await assert.rejects(events.publish("late"), TypeError);
      const refused = publisher(url, { token: "wrong" });
      await assert.rejects(refused.publish("x"), /could not be opened/);
      await refused.close();
      // A connection cut with a publish unanswered: unconfirmed, not resent.
      const tooBig = publisher(url, { token: TOKEN });
      await assert.rejects(
        tooBig.publish("y".repeat(MAX_BODY + 1)),
        (error: unknown) =>
          error instanceof PublishUnconfirmedError &&
          /1009.*may or may not have been stored/.test(error.message),
      );
      // The next publish opens a new connection.
      assert.equal(
        typeof (await tooBig.publish("after the drop")).id,
        "string",
      );
      await tooBig.close();
    });
  },
);

describe(
  "publishing over a WebSocket through Deno.serve and Deno.upgradeWebSocket (deno run --allow-net; spawns Deno on every runtime: the permission flags are Deno's)",
  {
    timeout: 60_000,
  },
  () => {
    test("answers in order with the ids a subscriber receives; empty: error frame; over --max-body: 1009; bad UTF-8: the connection ends and nothing is published", async () => {
      const deno = join(ROOT, "node_modules", ".bin", "deno");
      const service = await startServiceWith([deno, [
        "run",
        "--allow-net",
        join(ROOT, "cli.ts"),
      ]], [
        "--serve-address",
        "127.0.0.1:0",
        "--no-produce",
        "--max-body",
        String(MAX_BODY),
      ]);
      const sockets: RawWs[] = [];
      const subscriber = connectWs(`${service.url}?format=json`);
      try {
        assert.match(service.stderr(), /serving with Deno\.serve/);
        await subscriber.opened;
        const ws = await rawConnect(`${service.url}?publish`);
        sockets.push(ws);
        assert.equal(ws.status, 101, ws.body);
        for (let i = 0; i < 100; i++) ws.send(1, `deno ${i}`);
        ws.send(2, new Uint8Array([7, 8]));
        ws.send(1, "");
        await answered(ws, 102);
        const ids = answers(ws).slice(0, 101).map((answer) => answer.id);
        assert.equal(answers(ws)[101].code, "empty_body");
        await waitFor(
          () => subscriber.messages.length >= 101,
          10_000,
          "101 events at the subscriber",
        );
        assert.deepEqual(wsIds(subscriber), ids);
        assert.equal(
          JSON.parse(subscriber.messages[100]).data,
          btoa("\x07\x08"),
        );
        // 501 characters, 1,002 bytes: -max-body counts bytes.
        ws.send(1, "é".repeat(MAX_BODY / 2 + 1));
        await closedWith(ws, 1009);
        const bad = await rawConnect(`${service.url}?publish`);
        sockets.push(bad);
        // Deno.serve drops the connection without a close frame (node:http
        // with ws, and Bun, send 1007): either way nothing is published.
        bad.send(1, new Uint8Array([0xff, 0xfe]));
        await waitFor(() => bad.isEnded(), 10_000, "the connection's end");
        assert.deepEqual(bad.messages, []);
        assert.ok(
          bad.closeFrame === null || bad.closeFrame.code === 1007,
          JSON.stringify(bad.closeFrame),
        );
        const probe = await rawConnect(`${service.url}?publish`);
        sockets.push(probe);
        probe.send(1, "probe");
        await answered(probe, 1);
        await waitFor(
          () => subscriber.messages.length >= 102,
          10_000,
          "the probe at the subscriber",
        );
        assert.equal(JSON.parse(subscriber.messages[101]).data, "probe");
        assert.equal(subscriber.messages.length, 102);
      } finally {
        subscriber.close();
        for (const ws of sockets) ws.destroy();
        await service.stop("SIGKILL");
      }
    });
  },
);

describe(
  `publishing over a WebSocket to a relay, on ${RUNTIME}: with -forward-publish each event gets its id from the origin; without, the relay publishes it itself`,
  {
    timeout: 60_000,
  },
  () => {
    test("relay with and without -forward-publish", async () => {
      const origin = await startHub();
      const forwarding = await startRelay(origin.url, ["--forward-publish"]);
      const local = await startRelay(origin.url);
      const sockets: RawWs[] = [];
      const atOrigin = connectWs(`${origin.url}?format=json`);
      const atLocal = connectWs(`${local.url}?format=json`);
      try {
        await Promise.all([
          relayConnected(forwarding),
          relayConnected(local),
          atOrigin.opened,
          atLocal.opened,
        ]);
        const forwarded = await rawConnect(`${forwarding.url}?publish`);
        sockets.push(forwarded);
        // Many in flight at once: forwarded one after the other, so the
        // origin stores them in the order sent (POSTs in flight together
        // would reach it in any order).
        const count = 200;
        for (let i = 0; i < count; i++) {
          forwarded.send(1, `forwarded ${i}`);
        }
        await answered(forwarded, count);
        const ids = idsOfAnswers(forwarded);
        await waitFor(
          () => atOrigin.messages.length >= count,
          15_000,
          "the forwarded events at the origin",
        );
        // The origin gave the ids: its subscriber sees the same, in order.
        assert.deepEqual(
          atOrigin.messages.map((m) => JSON.parse(m).data),
          Array.from({ length: count }, (_, i) => `forwarded ${i}`),
          "stored in the order sent",
        );
        assert.deepEqual(wsIds(atOrigin), ids);
        await waitFor(
          () => atLocal.messages.length >= count,
          15_000,
          "the origin's events at the other relay",
        );
        const kept = await rawConnect(`${local.url}?publish`);
        sockets.push(kept);
        kept.send(1, "only on the relay");
        await answered(kept, 1);
        const [localId] = idsOfAnswers(kept);
        await waitFor(
          () => atLocal.messages.length >= count + 1,
          10_000,
          "the relay's own event",
        );
        assert.equal(wsIds(atLocal)[count], localId);
        assert.ok(!ids.includes(localId));
        // Not forwarded: a marker published at the origin after it arrives
        // there next, with nothing in between.
        const marker = await rawConnect(`${origin.url}?publish`);
        sockets.push(marker);
        marker.send(1, "marker");
        await answered(marker, 1);
        await waitFor(
          () => atOrigin.messages.length >= count + 1,
          10_000,
          "the marker at the origin",
        );
        assert.equal(JSON.parse(atOrigin.messages[count]).data, "marker");
      } finally {
        atOrigin.close();
        atLocal.close();
        for (const ws of sockets) ws.destroy();
        await forwarding.stop();
        await local.stop();
        await origin.stop();
      }
    });
  },
);

describe(`a publisher that does not read its answers, on ${RUNTIME}`, {
  timeout: 60_000,
}, () => {
  test("is closed once its answers queue past -max-queue, and the instance keeps serving", async () => {
    // Heartbeats far apart: the close must come from the queue's bound, not
    // from the pings this client never answers.
    const service = await startHub([
      "--max-queue",
      "4096",
      "--heartbeat",
      "60000",
    ]);
    let ws: RawWs | undefined;
    try {
      ws = await rawConnect(`${service.url}?publish`, {
        pauseAfterHandshake: true,
      });
      assert.equal(ws.status, 101, ws.body);
      // Empty messages: 6 bytes each, answered with an 80-byte error frame
      // that this client never reads. 25 MB of answers is more than the
      // kernel's buffers of both ends hold.
      const frame = encodeFrame(1, "");
      const batch = new Uint8Array(frame.byteLength * 10_000);
      for (let i = 0; i < 10_000; i++) batch.set(frame, i * frame.byteLength);
      const deadline = Date.now() + 10_000;
      let connections = 1;
      for (let sent = 0; sent < 30 && connections > 0; sent++) {
        ws.write(batch);
        await new Promise((r) => setTimeout(r, 50));
        connections = await metric(
          service.http,
          "wsevent_publisher_connections",
        );
      }
      while (connections > 0 && Date.now() < deadline) {
        await new Promise((r) => setTimeout(r, 100));
        connections = await metric(
          service.http,
          "wsevent_publisher_connections",
        );
      }
      assert.equal(connections, 0, "the publisher was closed");
      const probe = await rawConnect(`${service.url}?publish`);
      probe.send(1, "still serving");
      await answered(probe, 1);
      probe.destroy();
    } finally {
      ws?.destroy();
      await service.stop();
    }
  });
});

describe(
  `publishing over a WebSocket in a Hono app that mounts createStreams() (examples/embed_${RUNTIME}.ts: hono/deno, hono/bun, @hono/node-server)`,
  { timeout: 60_000 },
  () => {
    test("text and binary messages are answered with the ids its subscriber receives, with their payloads", async () => {
      const dir = join(
        ROOT,
        ".tmp",
        `wspub-embed-${process.pid}-${Date.now()}`,
      );
      mkdirSync(dir, { recursive: true });
      const file = join(dir, `embed_${RUNTIME}.ts`);
      writeFileSync(
        file,
        readFileSync(join(ROOT, "examples", `embed_${RUNTIME}.ts`), "utf8")
          .replace('from "wsevent"', 'from "../../mod.ts"'),
      );
      const port = await freePort();
      const [command, args] = runtimeCommand(file);
      const child = startChild(command, args, { PORT: String(port) });
      const sockets: RawWs[] = [];
      let subscriber: ReturnType<typeof connectWs> | undefined;
      try {
        const deadline = Date.now() + 20_000;
        for (;;) {
          try {
            await (await fetch(`http://127.0.0.1:${port}/`)).text();
            break;
          } catch (error) {
            if (Date.now() > deadline || child.proc.exitCode !== null) {
              throw new Error(
                `the app did not serve: ${error}\n${child.stderr()}`,
              );
            }
            await new Promise((r) => setTimeout(r, 100));
          }
        }
        const url = `ws://127.0.0.1:${port}/live/orders`;
        subscriber = connectWs(`${url}?format=json`);
        await subscriber.opened;
        const ws = await rawConnect(`${url}?publish`);
        sockets.push(ws);
        assert.equal(ws.status, 101, ws.body);
        ws.send(1, "text order");
        ws.send(2, new Uint8Array([1, 2, 3]));
        ws.send(1, "after the binary one");
        await answered(ws, 3);
        const ids = idsOfAnswers(ws);
        assert.ok(
          ids.every((id) => typeof id === "string"),
          ws.messages.join(),
        );
        await waitFor(
          () => subscriber!.messages.length >= 3,
          10_000,
          "3 events at the subscriber",
        );
        assert.deepEqual(wsIds(subscriber), ids);
        assert.deepEqual(
          subscriber.messages.map((m) => JSON.parse(m).data),
          ["text order", btoa("\x01\x02\x03"), "after the binary one"],
        );
      } finally {
        subscriber?.close();
        for (const ws of sockets) ws.destroy();
        await child.stop("SIGKILL");
        rmSync(dir, { recursive: true, force: true });
      }
    });
  },
);
