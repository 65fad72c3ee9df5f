import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  freePort,
  nginxTemplate,
  seqOf,
  type Service,
  startNginx,
  startService,
  startSubscriber,
  type SubscriberLine,
  waitFor,
} from "./_helpers.ts";

function assertContiguous(lines: SubscriberLine[]): void {
  const gaps = lines.filter((l) => l.type === "gap");
  assert.deepEqual(gaps, [], "no gap notice");
  const ids = lines.map((l) => l.id!);
  assert.equal(new Set(ids).size, ids.length, "no duplicate");
  for (let i = 1; i < ids.length; i++) {
    assert.equal(
      seqOf(ids[i]),
      seqOf(ids[i - 1]) + 1,
      `no gap between ${ids[i - 1]} and ${ids[i]}`,
    );
    assert.equal(ids[i].split("-")[0], ids[0].split("-")[0], "one epoch");
  }
}

function relayArgs(
  upstreamPort: number,
  port: number | string,
  from = "events",
  to = "events",
): string[] {
  return [
    "--consume-url",
    `ws://127.0.0.1:${upstreamPort}/${from}`,
    "--no-produce",
    "--serve-address",
    `127.0.0.1:${port}`,
    "--serve-path",
    to,
  ];
}

async function subscribersOn(relay: Service): Promise<number> {
  const text = await (await fetch(`${relay.http}/metrics`)).text();
  const match = /wsevent_path_subscribers\{path="events"\} (\d+)/.exec(text);
  return match ? Number(match[1]) : 0;
}

describe("failover and restarts", { timeout: 90_000 }, () => {
  test("behind nginx: the relay a subscriber is on dies; it resumes on the other with no gap and no duplicate", async () => {
    const producer = await startService([
      "--serve-address",
      "127.0.0.1:0",
      "--interval",
      "20",
    ]);
    const relays = await Promise.all([
      startService(relayArgs(producer.port, 0)),
      startService(relayArgs(producer.port, 0)),
    ]);
    const nginx = await startNginx(nginxTemplate(), relays.map((r) => r.port));
    const client = startSubscriber(`ws://127.0.0.1:${nginx.port}/events`);
    try {
      await waitFor(
        () => client.lines().length >= 20,
        15_000,
        "20 events through nginx",
      );
      const counts = await Promise.all(relays.map(subscribersOn));
      const victim = counts.indexOf(1);
      assert.notEqual(victim, -1, `subscriber found on one relay (${counts})`);
      await relays[victim].stop("SIGKILL");
      const before = client.lines().length;
      await waitFor(
        () => client.lines().length >= before + 30,
        20_000,
        "30 more events after failover",
      );
      assert.equal(await subscribersOn(relays[1 - victim]), 1);
      assertContiguous(client.lines());
    } finally {
      await client.stop();
      await nginx.stop();
      await Promise.all([producer.stop(), ...relays.map((r) => r.stop())]);
    }
  });

  test("chain of three hops: the middle relay is killed and restarted; the end sees no gap", async () => {
    const producer = await startService([
      "--serve-address",
      "127.0.0.1:0",
      "--interval",
      "20",
    ]);
    const middlePort = await freePort();
    let middle = await startService(
      relayArgs(producer.port, middlePort, "events", "proxy-events"),
    );
    const end = await startService(
      relayArgs(middlePort, 0, "proxy-events", "the-end"),
    );
    const client = startSubscriber(`ws://127.0.0.1:${end.port}/the-end`);
    try {
      await waitFor(
        () => client.lines().length >= 20,
        15_000,
        "20 events at the end",
      );
      await middle.stop("SIGKILL");
      await new Promise((r) => setTimeout(r, 300));
      middle = await startService(
        relayArgs(producer.port, middlePort, "events", "proxy-events"),
      );
      const before = client.lines().length;
      await waitFor(
        () => client.lines().length >= before + 40,
        20_000,
        "40 more events after the restart",
      );
      assertContiguous(client.lines());
      assert.match(end.stderr(), /retrying in/);
    } finally {
      await client.stop();
      await Promise.all([producer.stop(), middle.stop(), end.stop()]);
    }
  });
});
