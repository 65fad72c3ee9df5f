import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  connectSse,
  connectWs,
  freePort,
  publish,
  startHub,
  startHubOn,
  waitFor,
} from "./_helpers.ts";

interface Received {
  id?: string;
  data?: string;
  type?: string;
}

async function publishMany(
  base: string,
  count: number,
  tag: string,
): Promise<string[]> {
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    ids.push(await publish(base, "events", `${tag}-${i}`));
  }
  return ids;
}

describe("resume across a disconnect", { timeout: 60_000 }, () => {
  for (const transport of ["websocket", "sse"] as const) {
    for (const k of [5, 30]) {
      const beyond = k > 20;
      test(`${transport}: ${k} events published while away ${beyond ? "(beyond the buffer: gap notice)" : "(within the buffer)"}`, async () => {
        const hub = await startHub(["--buffer", "20"]);
        try {
          const first = await subscribeOnce(hub, transport, undefined);
          const seen = await publishMany(hub.http, 3, "before");
          await waitFor(
            () => first.received().length >= 3,
            5_000,
            "3 live events",
          );
          first.close();
          const lastSeen = first.received()[2].id!;
          assert.equal(lastSeen, seen[2]);
          const missed = await publishMany(hub.http, k, "away");
          const again = await subscribeOnce(hub, transport, lastSeen);
          const expected = beyond ? missed.slice(k - 20) : missed;
          await waitFor(
            () => again.events().length >= expected.length,
            5_000,
            "the replay",
          );
          const live = await publishMany(hub.http, 2, "live");
          await waitFor(
            () => again.events().length >= expected.length + 2,
            5_000,
            "live events after the replay",
          );
          const events = again.events();
          assert.deepEqual(events.map((e) => e.id), [...expected, ...live]);
          assert.equal(events[0].data, `away-${beyond ? k - 20 : 0}`);
          const gaps = again.received().filter((m) => m.type === "gap");
          assert.equal(gaps.length, beyond ? 1 : 0);
          if (beyond) assert.equal(again.received()[0].type, "gap");
          again.close();
        } finally {
          await hub.stop();
        }
      });
    }
  }

  test("resume against a restarted origin (old epoch) gets a gap notice, then the new events", async () => {
    const port = await freePort();
    let hub = await startHubOn(port);
    const oldId = await publish(hub.http, "events", "old");
    await hub.stop();
    hub = await startHubOn(port);
    try {
      const newId = await publish(hub.http, "events", "new");
      assert.notEqual(oldId.split("-")[0], newId.split("-")[0]);
      const sse = connectSse(`${hub.http}/events`, { "Last-Event-ID": oldId });
      await waitFor(() => sse.messages.length >= 2, 5_000, "gap and replay");
      assert.equal(sse.messages[0].event, "gap");
      assert.equal(JSON.parse(sse.messages[0].data).lastEventId, oldId);
      assert.deepEqual(sse.messages[1], {
        event: "message",
        data: "new",
        id: newId,
      });
      sse.close();
    } finally {
      await hub.stop();
    }
  });

  test("a malformed Last-Event-ID gets a gap notice and the buffer, and the instance keeps serving", async () => {
    const hub = await startHub();
    try {
      const id = await publish(hub.http, "events", "x");
      // Over 128 characters the answer is 400 instead (issue 16).
      for (const bad of ["garbage", "-1", "a-b-c", "%00", "x".repeat(128)]) {
        const sse = connectSse(
          `${hub.http}/events?lastEventId=${encodeURIComponent(bad)}`,
        );
        await waitFor(
          () => sse.messages.length >= 2,
          5_000,
          `gap for ${bad.slice(0, 20)}`,
        );
        assert.equal(sse.messages[0].event, "gap");
        assert.equal(sse.messages[1].id, id);
        sse.close();
      }
      assert.equal((await fetch(`${hub.http}/healthz`)).status, 200);
    } finally {
      await hub.stop();
    }
  });
});

interface Subscriber {
  received(): Received[];
  events(): Received[];
  close(): void;
}

async function subscribeOnce(
  hub: { http: string; port: number },
  transport: "websocket" | "sse",
  lastEventId: string | undefined,
): Promise<Subscriber> {
  if (transport === "websocket") {
    const query = lastEventId
      ? `&lastEventId=${encodeURIComponent(lastEventId)}`
      : "";
    const ws = connectWs(
      `ws://127.0.0.1:${hub.port}/events?format=json${query}`,
    );
    await ws.opened;
    const received = (): Received[] =>
      ws.messages.map((m) => JSON.parse(m) as Received);
    return {
      received,
      events: () => received().filter((m) => m.id !== undefined),
      close: () => ws.close(),
    };
  }
  const sse = connectSse(
    `${hub.http}/events`,
    lastEventId ? { "Last-Event-ID": lastEventId } : {},
  );
  await sse.headers;
  const received = (): Received[] =>
    sse.messages.map((
      m,
    ) => (m.event === "gap" ? { type: "gap" } : { id: m.id, data: m.data }));
  return {
    received,
    events: () => received().filter((m) => m.id !== undefined),
    close: () => sse.close(),
  };
}
