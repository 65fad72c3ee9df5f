import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  assertContiguous,
  freePort,
  nginxTemplate,
  type Service,
  startHubOn,
  startNginx,
  startProducer,
  startSubscriber,
  type SubscriberLine,
  waitFor,
} from "./_helpers.ts";

/** The ids a `cli.ts subscribe --json` got, and its gap notices as `gap`. */
function ids(lines: SubscriberLine[]): string[] {
  return lines.map((l) => l.type === "gap" ? "gap" : l.id!);
}

/** A relay on `port` of `ws://127.0.0.1:${upstreamPort}/${from}`, serving `to`. */
function startRelayOn(
  upstreamPort: number,
  port: number,
  from = "events",
  to = "events",
): Promise<Service> {
  return startHubOn(port, [
    "--consume-url",
    `ws://127.0.0.1:${upstreamPort}/${from}`,
    "--serve-path",
    to,
  ]);
}

async function subscribersOn(relay: Service): Promise<number> {
  const text = await (await fetch(`${relay.http}/metrics`)).text();
  const match = /wsevent_path_subscribers\{path="events"\} (\d+)/.exec(text);
  return match ? Number(match[1]) : 0;
}

describe("failover and restarts", { timeout: 90_000 }, () => {
  test("behind nginx: the relay a subscriber is on dies; it resumes on the other with no gap and no duplicate", async () => {
    const producer = await startProducer(20);
    const relays = await Promise.all([
      startRelayOn(producer.port, 0),
      startRelayOn(producer.port, 0),
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
      assertContiguous(ids(client.lines()), "the subscriber across failover");
    } finally {
      await client.stop();
      await nginx.stop();
      await Promise.all([producer.stop(), ...relays.map((r) => r.stop())]);
    }
  });

  test("chain of three hops: the middle relay is killed and restarted; the end sees no gap", async () => {
    const producer = await startProducer(20);
    const middlePort = await freePort();
    const startMiddle = () =>
      startRelayOn(producer.port, middlePort, "events", "proxy-events");
    let middle = await startMiddle();
    const end = await startRelayOn(middlePort, 0, "proxy-events", "the-end");
    const client = startSubscriber(`ws://127.0.0.1:${end.port}/the-end`);
    try {
      await waitFor(
        () => client.lines().length >= 20,
        15_000,
        "20 events at the end",
      );
      await middle.stop("SIGKILL");
      await new Promise((r) => setTimeout(r, 300));
      middle = await startMiddle();
      const before = client.lines().length;
      await waitFor(
        () => client.lines().length >= before + 40,
        20_000,
        "40 more events after the restart",
      );
      assertContiguous(ids(client.lines()), "the subscriber at the end");
      assert.match(end.stderr(), /retrying in/);
    } finally {
      await client.stop();
      await Promise.all([producer.stop(), middle.stop(), end.stop()]);
    }
  });
});
