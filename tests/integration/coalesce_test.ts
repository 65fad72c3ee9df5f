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
  seqOf,
  startHub,
  waitFor,
} from "./_helpers.ts";
import { metric, publishMany } from "./_raw_ws.ts";

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
    const hub = await startHub(["--coalesce", "1000"]);
    const live = connectWs(`${hub.url}?format=json`);
    const sse = connectSse(`${hub.http}/events`);
    let resumed: ReturnType<typeof connectWs> | undefined;
    try {
      await live.opened;
      await sse.headers;
      // The hold of the events below ends 1000 ms after the turn that
      // fanned out "first" ended, so at least 1000 ms after this instant.
      const firstPublished = performance.now();
      const first = await publish(hub.http, "events", "first");
      await waitFor(() => live.messages.length === 1, 5_000, "the first event");
      const held = [
        await publish(hub.http, "events", "held-0"),
        await publish(hub.http, "events", "held-1"),
      ];
      // In one synchronous step: they have not left (the live subscriber
      // has only "first"), and the resume starts.
      const liveAtResume = live.messages.length;
      resumed = connectWs(
        `${hub.url}?format=json&lastEventId=${encodeURIComponent(first)}`,
      );
      assert.equal(liveAtResume, 1, "held events had not left at the resume");
      await resumed.opened;
      // The server subscribed it before its upgrade completed: if that was
      // within 1000 ms of publishing "first", the events were still held
      // then (the wide margin is for the loaded machine; a fail here means
      // this run could not test the case, not that coalescing is wrong).
      const resumedAfterMs = performance.now() - firstPublished;
      assert.ok(
        resumedAfterMs < 900,
        `the resume completed ${
          resumedAfterMs.toFixed(0)
        } ms after the first publish: the hold may have ended before it`,
      );
      // Subscribing sends held events first, so the replay meets the live
      // stream at the same seam; "later" comes after all of them.
      const later = await publish(hub.http, "events", "later");
      const all = [first, ...held, later];
      await waitFor(
        () =>
          live.messages.length >= 4 && resumed!.messages.length >= 3 &&
          sse.messages.length >= 4,
        5_000,
        "every event on every subscriber",
      );
      // Each subscriber's messages up to "later", the last event: once each
      // and in order (a held event sent twice would come before "later").
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

  for (const coalesce of ["0", "default"] as const) {
    test(
      `-coalesce ${coalesce}: a burst of 1,000 events over 16 connections ${
        coalesce === "0"
          ? "never holds an event (wsevent_events_coalesced_total stays 0)"
          : "(1 ms) holds some (wsevent_events_coalesced_total > 0)"
      }; every event arrives once, in order`,
      async () => {
        const hub = await startHub(
          coalesce === "0" ? ["-coalesce", "0"] : [],
        );
        const live = connectWs(`${hub.url}?format=json`);
        try {
          await live.opened;
          await publishMany(hub.port, "events", 1000, (i) => `e${i}`, 16);
          await waitFor(
            () => live.messages.length >= 1000,
            10_000,
            "every event",
          );
          const seqs = ids(live.messages).map(seqOf);
          assert.deepEqual(seqs, seqs.map((_, i) => i));
          const held = await metric(hub.http, "wsevent_events_coalesced_total");
          if (coalesce === "0") assert.equal(held, 0);
          else assert.ok(held > 0, "the default 1 ms held none of the burst");
        } finally {
          live.close();
          await hub.stop();
        }
      },
    );
  }
});
