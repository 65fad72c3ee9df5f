/**
 * Coalescing under load (`-coalesce`) in a real process on each runtime:
 * events published right after a fan-out wait for the gap's end, then reach
 * every subscriber once and in order, and a subscriber that resumes while
 * they wait gets each of them once too.
 *
 * @module
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  connectSse,
  connectWs,
  publish,
  startService,
  waitFor,
} from "./_helpers.ts";

interface Envelope {
  id?: string;
  data?: string;
}

function ids(messages: string[]): string[] {
  return messages.map((m) => (JSON.parse(m) as Envelope).id ?? m);
}

describe("coalescing under load (-coalesce)", { timeout: 60_000 }, () => {
  test("events held after a fan-out arrive once each and in order, also for a subscriber that resumed while they were held", async () => {
    // The longest gap allowed, so a slow machine cannot end it between steps.
    const hub = await startService([
      "--serve-address",
      "127.0.0.1:0",
      "--no-produce",
      "--coalesce",
      "1000",
    ]);
    const live = connectWs(`${hub.url}?format=json`);
    const sse = connectSse(`${hub.http}/events`);
    let resumed: ReturnType<typeof connectWs> | undefined;
    try {
      await live.opened;
      await sse.headers;
      const first = await publish(hub.http, "events", "first");
      await waitFor(() => live.messages.length === 1, 5_000, "the first event");
      // Published within a second of that fan-out: held.
      const started = performance.now();
      const held = [
        await publish(hub.http, "events", "held-0"),
        await publish(hub.http, "events", "held-1"),
      ];
      const publishMs = performance.now() - started;
      assert.ok(publishMs < 900, `publishing took ${publishMs} ms`);
      assert.equal(live.messages.length, 1, "held events have not left yet");
      // Subscribing sends them first, so the replay meets the live stream
      // at the same seam.
      resumed = connectWs(
        `${hub.url}?format=json&lastEventId=${encodeURIComponent(first)}`,
      );
      await resumed.opened;
      const later = await publish(hub.http, "events", "later");
      const all = [first, ...held, later];
      await waitFor(
        () =>
          live.messages.length >= 4 && resumed!.messages.length >= 3 &&
          sse.messages.length >= 4,
        5_000,
        "every event on every subscriber",
      );
      // Nothing more arrives after the hold would have ended.
      await new Promise((resolve) => setTimeout(resolve, 1_200));
      assert.deepEqual(ids(live.messages), all);
      assert.deepEqual(ids(resumed.messages), all.slice(1));
      assert.deepEqual(sse.messages.map((m) => m.id), all);
      assert.deepEqual(sse.messages.map((m) => m.data), [
        "first",
        "held-0",
        "held-1",
        "later",
      ]);
    } finally {
      live.close();
      resumed?.close();
      sse.close();
      await hub.stop();
    }
  });

  test("-coalesce 0 sends every event at once (each within 500 ms, where a 1 s gap would hold it)", async () => {
    const hub = await startService([
      "--serve-address",
      "127.0.0.1:0",
      "--no-produce",
      "-coalesce",
      "0",
    ]);
    const live = connectWs(`${hub.url}?format=json`);
    try {
      await live.opened;
      const sent: string[] = [];
      for (let i = 0; i < 5; i++) {
        sent.push(await publish(hub.http, "events", `e${i}`));
        await waitFor(
          () => live.messages.length === i + 1,
          500,
          `event ${i} without a hold`,
        );
      }
      assert.deepEqual(ids(live.messages), sent);
    } finally {
      live.close();
      await hub.stop();
    }
  });
});
