import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  connectWs,
  freePort,
  nginxTemplate,
  seqOf,
  startNginx,
  startRelay,
  startService,
  waitFor,
} from "./_helpers.ts";

const DEMO = /^(\d+): (127\.0\.0\.1:\d+): [A-Za-z]{10}\n$/;

describe("scenarios of the original", { timeout: 90_000 }, () => {
  test("scenario 1: three producers behind real nginx; subscribers together see all three", async () => {
    const ports = await Promise.all([freePort(), freePort(), freePort()]);
    const producers = await Promise.all(
      ports.map((port) =>
        startService(["-serve-address", `127.0.0.1:${port}`, "-interval", "50"])
      ),
    );
    const nginx = await startNginx(nginxTemplate(), ports);
    const clients = Array.from(
      { length: 6 },
      () => connectWs(`ws://127.0.0.1:${nginx.port}/events`),
    );
    try {
      await Promise.all(clients.map((c) => c.opened));
      await waitFor(
        () => clients.every((c) => c.messages.length >= 3),
        15_000,
        "3 messages on each subscriber",
      );
      const labels = new Set<string>();
      for (const client of clients) {
        const numbers: number[] = [];
        const mine = new Set<string>();
        for (const message of client.messages) {
          const match = DEMO.exec(message);
          assert.ok(match, `malformed message ${JSON.stringify(message)}`);
          numbers.push(Number(match[1]));
          mine.add(match[2]);
        }
        // Each subscriber is on one producer: consecutive numbers from one address.
        assert.equal(mine.size, 1);
        for (let i = 1; i < numbers.length; i++) {
          assert.equal(numbers[i], numbers[i - 1] + 1);
        }
        for (const label of mine) labels.add(label);
      }
      assert.deepEqual(
        [...labels].sort(),
        ports.map((p) => `127.0.0.1:${p}`).sort(),
      );
    } finally {
      for (const client of clients) client.close();
      await nginx.stop();
      await Promise.all(producers.map((p) => p.stop()));
    }
  });

  test("scenario 2: producer -> relay -> relay -> subscriber, messages unchanged and in order", async () => {
    const producer = await startService([
      "-serve-address",
      "127.0.0.1:0",
      "-interval",
      "20",
    ]);
    const relay1 = await startService([
      "-consume-path",
      "events",
      "-consume-address",
      `127.0.0.1:${producer.port}`,
      "-serve-address",
      "127.0.0.1:0",
      "-serve-path",
      "proxy-events",
      "-no-produce",
    ]);
    const relay2 = await startService([
      "-consume-path",
      "proxy-events",
      "-consume-address",
      `127.0.0.1:${relay1.port}`,
      "-serve-address",
      "127.0.0.1:0",
      "-serve-path",
      "the-end",
      "-no-produce",
    ]);
    const atProducer = connectWs(`${producer.url}?format=json`);
    const atEnd = connectWs(
      `ws://127.0.0.1:${relay2.port}/the-end?format=json`,
    );
    const bare = connectWs(`ws://127.0.0.1:${relay2.port}/the-end`);
    try {
      // The end relay starts with its upstream's buffer, older than what the
      // producer's subscriber saw: wait until 20 events were seen at both ends.
      const ids = (messages: string[]): string[] =>
        messages.map((m) => JSON.parse(m).id as string);
      await waitFor(
        () => {
          const seen = new Set(ids(atProducer.messages));
          return ids(atEnd.messages).filter((id) => seen.has(id)).length >=
              20 && bare.messages.length >= 30;
        },
        20_000,
        "20 events at both ends",
      );
      const source = new Map<string, string>();
      for (const m of atProducer.messages) {
        const { id, data } = JSON.parse(m);
        source.set(id, data);
      }
      const end = atEnd.messages.map((m) =>
        JSON.parse(m) as { id: string; data: string }
      );
      for (let i = 1; i < end.length; i++) {
        assert.equal(seqOf(end[i].id), seqOf(end[i - 1].id) + 1);
      }
      let compared = 0;
      for (const { id, data } of end) {
        assert.match(data, DEMO);
        if (source.has(id)) {
          assert.equal(data, source.get(id));
          compared++;
        }
      }
      assert.ok(compared >= 20, `only ${compared} events seen at both ends`);
      const numbers = bare.messages.map((m) => Number(DEMO.exec(m)![1]));
      for (let i = 1; i < numbers.length; i++) {
        assert.equal(numbers[i], numbers[i - 1] + 1);
      }
    } finally {
      for (const c of [atProducer, atEnd, bare]) c.close();
      await Promise.all([producer.stop(), relay1.stop(), relay2.stop()]);
    }
  });

  test("relay reconnects by itself when its producer dies and comes back", async () => {
    const port = await freePort();
    let producer = await startService([
      "-serve-address",
      `127.0.0.1:${port}`,
      "-interval",
      "20",
    ]);
    const relay = await startRelay(`ws://127.0.0.1:${port}/events`);
    const client = connectWs(relay.url);
    try {
      await client.opened;
      await waitFor(
        () => client.messages.length >= 5,
        10_000,
        "events before the failure",
      );
      await producer.stop("SIGKILL");
      const before = client.messages.length;
      // The relay has lost its upstream and scheduled a retry before the
      // producer comes back (an event, not a fixed pause).
      await waitFor(
        () => /retrying in \d+ ms/.test(relay.stderr()),
        10_000,
        "the relay to notice the lost producer and schedule a retry",
      );
      producer = await startService([
        "-serve-address",
        `127.0.0.1:${port}`,
        "-interval",
        "20",
      ]);
      // The restarted producer counts from 0 again.
      await waitFor(
        () =>
          client.messages.slice(before).some((m) => m.startsWith("0: ")) &&
          client.messages.length > before + 5,
        15_000,
        "the restarted producer's events through the relay",
      );
      assert.equal(client.isClosed(), false);
      assert.match(relay.stderr(), /retrying in \d+ ms/);
      assert.equal(relay.proc.exitCode, null);
    } finally {
      client.close();
      await Promise.all([producer.stop(), relay.stop()]);
    }
  });

  test("SIGTERM closes subscribers with 1001 and exits 0", async () => {
    const service = await startService(["-serve-address", "127.0.0.1:0"]);
    const client = connectWs(service.url);
    await client.opened;
    await waitFor(() => client.messages.length >= 1, 5_000, "an event");
    const exit = await service.stop("SIGTERM");
    const closed = await client.closed;
    assert.equal(closed.code, 1001);
    assert.deepEqual(exit, { code: 0, signal: null });
  });

  test("SIGINT also closes subscribers with 1001 and exits 0", async () => {
    const service = await startService(["-serve-address", "127.0.0.1:0"]);
    const client = connectWs(service.url);
    await client.opened;
    await waitFor(() => client.messages.length >= 1, 5_000, "an event");
    const exit = await service.stop("SIGINT");
    const closed = await client.closed;
    assert.equal(closed.code, 1001);
    assert.deepEqual(exit, { code: 0, signal: null });
  });
});
