/**
 * Metrics and readiness (issue 4): the counters and gauges of /metrics
 * change as a scenario says, and /readyz follows a relay's upstream.
 * Slow-consumer disconnects and skipped events are asserted in
 * slow_consumer_test.ts (the heavy scenario is not run twice).
 */

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import {
  connectSse,
  connectWs,
  freePort,
  type Service,
  type SseClient,
  startHub,
  startRelay,
  startService,
  waitFor,
  type WsClient,
} from "./_helpers.ts";
import { metricIn, rawConnect, rawSse } from "./_raw_ws.ts";

const TOKEN = "metrics-token";

async function scrape(hub: Service): Promise<string> {
  const response = await fetch(`${hub.http}/metrics`);
  assert.equal(response.status, 200);
  assert.match(response.headers.get("content-type") ?? "", /^text\/plain/);
  return await response.text();
}

/** Reads the samples this test cares about. */
async function read(hub: Service): Promise<Record<string, number>> {
  const text = await scrape(hub);
  const path = '{path="events"}';
  return {
    ws: metricIn(text, "wsevent_subscribers", '{transport="websocket"}'),
    sse: metricIn(text, "wsevent_subscribers", '{transport="sse"}'),
    pathSubscribers: metricIn(text, "wsevent_path_subscribers", path),
    published: metricIn(text, "wsevent_events_published_total"),
    delivered: metricIn(text, "wsevent_events_delivered_total"),
    dropped: metricIn(text, "wsevent_events_dropped_total"),
    slow: metricIn(text, "wsevent_slow_consumer_disconnects_total"),
    resumes: metricIn(text, "wsevent_resume_requests_total"),
    gaps: metricIn(text, "wsevent_gaps_total"),
    bufferEvents: metricIn(text, "wsevent_replay_buffer_events", path),
    bufferBytes: metricIn(text, "wsevent_replay_buffer_bytes", path),
    unauthorized: metricIn(text, "wsevent_unauthorized_total"),
    forbidden: metricIn(text, "wsevent_forbidden_origin_total"),
    limit: metricIn(text, "wsevent_subscriber_limit_total"),
    badRequest: metricIn(text, "wsevent_bad_request_total"),
  };
}

async function waitForValues(
  hub: Service,
  want: Record<string, number>,
  what: string,
): Promise<Record<string, number>> {
  const deadline = Date.now() + 5000;
  while (true) {
    const now = await read(hub);
    if (Object.entries(want).every(([k, v]) => now[k] === v)) return now;
    if (Date.now() > deadline) {
      assert.deepEqual(
        Object.fromEntries(Object.keys(want).map((k) => [k, now[k]])),
        want,
        what,
      );
    }
    await new Promise((r) => setTimeout(r, 20));
  }
}

async function post(hub: Service, body: string): Promise<string> {
  const response = await fetch(`${hub.http}/events`, {
    method: "POST",
    body,
    headers: { "Content-Type": "text/plain" },
  });
  assert.equal(response.status, 202);
  return ((await response.json()) as { id: string }).id;
}

describe("metrics", { timeout: 90_000 }, () => {
  test("/metrics is Prometheus text: HELP and TYPE before every sample, counters end in _total", async () => {
    const hub = await startHub([
      "--serve-path",
      "events",
      "--serve-path",
      "other",
    ]);
    try {
      const text = await scrape(hub);
      const typed = new Map<string, string>();
      const helped = new Set<string>();
      for (const line of text.trimEnd().split("\n")) {
        const type = /^# TYPE (\S+) (counter|gauge)$/.exec(line);
        if (type) {
          assert.ok(helped.has(type[1]), `${type[1]} has no HELP before TYPE`);
          assert.ok(!typed.has(type[1]), `${type[1]} has a second TYPE`);
          typed.set(type[1], type[2]);
          continue;
        }
        const help = /^# HELP ([a-z_]+) (\S.*)$/.exec(line);
        if (help) {
          assert.ok(!helped.has(help[1]), `${help[1]} has a second HELP`);
          helped.add(help[1]);
          continue;
        }
        const sample = /^([a-z_]+)(\{[^}]*\})? (-?[0-9.e+]+|NaN)$/.exec(line);
        assert.ok(sample, `not a sample line: ${JSON.stringify(line)}`);
        assert.ok(typed.has(sample[1]), `${sample[1]} has no TYPE before it`);
        if (typed.get(sample[1]) === "counter") {
          assert.match(sample[1], /_total$/);
        }
      }
      for (
        const name of [
          "wsevent_subscribers",
          "wsevent_events_published_total",
          "wsevent_events_delivered_total",
          "wsevent_events_dropped_total",
          "wsevent_slow_consumer_disconnects_total",
          "wsevent_resume_requests_total",
          "wsevent_gaps_total",
          "wsevent_replay_buffer_events",
          "wsevent_replay_buffer_bytes",
          "wsevent_unauthorized_total",
          "wsevent_forbidden_origin_total",
          "wsevent_subscriber_limit_total",
          "wsevent_bad_request_total",
        ]
      ) assert.ok(typed.has(name), `${name} is exported`);
      assert.equal(
        metricIn(text, "wsevent_replay_buffer_events", '{path="other"}'),
        0,
      );
    } finally {
      await hub.stop();
    }
  });

  test("subscribers by transport, published and delivered, replay buffer events and bytes, resumes and gaps, refused requests: each moves as the scenario says", async () => {
    const hub = await startHub([
      "--buffer",
      "5",
      "--max-subscribers",
      "4",
      "--max-body",
      "100",
      "--subscribe-token",
      TOKEN,
      "--allow-origin",
      "http://ok.example",
    ]);
    const ws: WsClient[] = [];
    const sse: SseClient[] = [];
    try {
      const zero = await read(hub);
      for (const [name, value] of Object.entries(zero)) {
        assert.equal(value, 0, `${name} starts at 0`);
      }
      // Three subscribers: 2 WebSocket, 1 SSE.
      ws.push(connectWs(`${hub.url}?token=${TOKEN}`));
      ws.push(connectWs(`${hub.url}?format=json&token=${TOKEN}`));
      sse.push(connectSse(`${hub.http}/events?token=${TOKEN}`));
      await Promise.all([...ws.map((c) => c.opened), sse[0].headers]);
      await waitForValues(
        hub,
        { ws: 2, sse: 1, pathSubscribers: 3 },
        "3 subscribers",
      );
      // A broken handshake (checked once there is room).
      const noKey = await rawConnect(`${hub.url}?token=${TOKEN}`, {
        headers: { "Sec-WebSocket-Key": null },
      });
      noKey.destroy();
      assert.equal(noKey.status, 400);

      // 3 events of 10, 20 and 30 bytes: published 3, delivered 3 x 3.
      const ids: string[] = [];
      for (const size of [10, 20, 30]) {
        ids.push(await post(hub, "a".repeat(size)));
      }
      await waitFor(() => ws[0].messages.length === 3, 5000, "3 events");
      const after3 = await waitForValues(hub, {
        published: 3,
        delivered: 9,
        bufferEvents: 3,
      }, "after 3 events");
      // The payloads, and the wire forms made for the subscribers (JSON,
      // SSE, UTF-8): -buffer-bytes counts what is held (issue 16).
      assert.ok(
        after3.bufferBytes >= 60 && after3.bufferBytes <= 60 + 3 * 300,
        `bufferBytes ${after3.bufferBytes}`,
      );

      // 4 more of 5 bytes: the buffer keeps the last 5 (30 + 4 x 5 bytes).
      for (let i = 0; i < 4; i++) ids.push(await post(hub, `b${i}xyz`));
      const after7 = await waitForValues(hub, {
        published: 7,
        delivered: 21,
        bufferEvents: 5,
      }, "after 7 events, buffer of 5");
      assert.ok(
        after7.bufferBytes >= 30 + 4 * 5 &&
          after7.bufferBytes <= 30 + 4 * 5 + 5 * 300,
        `bufferBytes ${after7.bufferBytes}`,
      );

      // Resumes: one exact (no gap), one from before the buffer (gap), one
      // malformed (gap). Each replays what it needs.
      sse.shift()!.close();
      await waitForValues(hub, { sse: 0 }, "SSE gone");
      const exact = connectSse(`${hub.http}/events?token=${TOKEN}`, {
        "Last-Event-ID": ids[4],
      });
      sse.push(exact);
      await waitFor(() => exact.messages.length === 2, 5000, "exact replay");
      let now = await waitForValues(hub, {
        resumes: 1,
        gaps: 0,
        delivered: 23,
        sse: 1,
      }, "an exact resume");
      exact.close();
      sse.pop();
      await waitForValues(hub, { sse: 0 }, "SSE gone");
      const old = connectWs(
        `${hub.url}?format=json&token=${TOKEN}&lastEventId=${ids[0]}`,
      );
      ws.push(old);
      await waitFor(() => old.messages.length === 6, 5000, "gap + 5 replayed");
      assert.equal(JSON.parse(old.messages[0]).type, "gap");
      now = await waitForValues(hub, {
        resumes: 2,
        gaps: 1,
        delivered: now.delivered + 5,
      }, "a resume from before the buffer");
      const bad = connectSse(`${hub.http}/events?token=${TOKEN}`, {
        "Last-Event-ID": "not-an-id",
      });
      sse.push(bad);
      await waitFor(() => bad.messages.length === 6, 5000, "gap + 5 replayed");
      now = await waitForValues(hub, {
        resumes: 3,
        gaps: 2,
        delivered: now.delivered + 5,
        ws: 3,
        sse: 1,
      }, "a malformed resume");

      // Refusals, each counted once under its reason.
      const noToken = await rawConnect(hub.url);
      noToken.destroy();
      assert.equal(noToken.status, 401);
      const badOrigin = await rawSse(hub.port, `/events?token=${TOKEN}`, {
        Origin: "http://evil.example",
      });
      badOrigin.close();
      assert.equal(badOrigin.status, 403);
      const full = await rawConnect(`${hub.url}?token=${TOKEN}`);
      full.destroy();
      assert.equal(full.status, 503, "the 5th subscriber is over the limit");
      const tooBig = await fetch(`${hub.http}/events`, {
        method: "POST",
        body: "x".repeat(101),
      });
      assert.equal(tooBig.status, 413);
      await tooBig.body?.cancel();
      await waitForValues(hub, {
        unauthorized: 1,
        forbidden: 1,
        limit: 1,
        badRequest: 2,
        published: 7,
      }, "refusals");

      // Everyone leaves: the gauges go back to 0, counters stay.
      for (const c of ws) c.close();
      for (const c of sse) c.close();
      await waitForValues(hub, {
        ws: 0,
        sse: 0,
        pathSubscribers: 0,
        published: 7,
        resumes: 3,
        gaps: 2,
        slow: 0,
        dropped: 0,
      }, "all gone");
    } finally {
      for (const c of ws) c.close();
      for (const c of sse) c.close();
      await hub.stop();
    }
  });

  test("a relay's upstream gauge, reconnects counter and /readyz follow its upstream going down and up", async () => {
    const port = await freePort();
    const upstreamUrl = `ws://127.0.0.1:${port}/events`;
    const label = `{path="events",upstream="${upstreamUrl}"}`;
    const relay = await startRelay(upstreamUrl);
    let upstream: Service | undefined;
    type State = { ready: number; connected: number; reconnects: number };
    const state = async (): Promise<State> => {
      const ready = await fetch(`${relay.http}/readyz`);
      await ready.body?.cancel();
      const text = await scrape(relay);
      return {
        ready: ready.status,
        connected: metricIn(text, "wsevent_upstream_connected", label),
        reconnects: metricIn(text, "wsevent_upstream_reconnects_total", label),
      };
    };
    const waitForState = async (want: State, what: string): Promise<void> => {
      // The relay's retry delay grows to 5 s while its upstream is down.
      const deadline = Date.now() + 9000;
      while (true) {
        const now = await state();
        if (JSON.stringify(now) === JSON.stringify(want)) return;
        if (Date.now() > deadline) assert.deepEqual(now, want, what);
        await new Promise((r) => setTimeout(r, 50));
      }
    };
    const startUpstream = (): Promise<Service> =>
      startService([
        "--serve-address",
        `127.0.0.1:${port}`,
        "--no-produce",
      ]);
    try {
      await waitForState(
        { ready: 503, connected: 0, reconnects: 0 },
        "no upstream yet",
      );
      const readyz = await (await fetch(`${relay.http}/readyz`)).json() as {
        ready: boolean;
        upstreams: { connected: boolean }[];
      };
      assert.equal(readyz.ready, false);
      assert.equal(readyz.upstreams[0].connected, false);
      // Each step, then the state the relay must reach after it.
      const start = async (): Promise<void> => {
        upstream = await startUpstream();
      };
      const steps: [() => Promise<unknown>, State, string][] = [
        [start, { ready: 200, connected: 1, reconnects: 0 }, "connected"],
        [
          () => upstream!.stop("SIGKILL"),
          { ready: 503, connected: 0, reconnects: 1 },
          "upstream killed",
        ],
        [start, { ready: 200, connected: 1, reconnects: 1 }, "reconnected"],
        [
          () => upstream!.stop("SIGTERM"),
          { ready: 503, connected: 0, reconnects: 2 },
          "upstream stopped",
        ],
      ];
      for (const [step, want, what] of steps) {
        await step();
        await waitForState(want, what);
      }
      assert.equal((await fetch(`${relay.http}/healthz`)).status, 200);
    } finally {
      await upstream?.stop();
      await relay.stop();
    }
  });
});
