import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { formatMetrics, formatProcessMetrics } from "../../src/http/metrics.ts";
import { createHub } from "../../src/hub.ts";
import { FakeSink } from "../_fake_sink.ts";

/** Reads `name{labels} value` samples from Prometheus text. */
function samples(text: string): Map<string, number> {
  const out = new Map<string, number>();
  for (const line of text.split("\n")) {
    if (line === "" || line.startsWith("#")) continue;
    const match = /^([a-z_]+(?:\{.*\})?) (-?[0-9.e+]+)$/.exec(line);
    assert.ok(match, `sample line ${JSON.stringify(line)}`);
    out.set(match[1], Number(match[2]));
  }
  return out;
}

describe("formatMetrics()", () => {
  test("formatMetrics() writes HELP and TYPE before each metric's samples", () => {
    const hub = createHub();
    hub.addTopic("events", "e");
    const text = formatMetrics(hub, [], {});
    assert.ok(text.endsWith("\n"));
    const lines = text.trimEnd().split("\n");
    for (let i = 0; i < lines.length; i++) {
      const type = /^# TYPE (\S+) (counter|gauge)$/.exec(lines[i]);
      if (type === null) continue;
      assert.match(lines[i - 1], new RegExp(`^# HELP ${type[1]} \\S`));
      if (type[2] === "counter") assert.match(type[1], /_total$/);
    }
    samples(text);
  });

  test("formatMetrics() reports hub counters, per-path gauges and subscribers", () => {
    const hub = createHub();
    const topic = hub.addTopic("events", "e");
    topic.subscribe(new FakeSink());
    topic.subscribe(new FakeSink({ transport: "sse" }));
    topic.publish("abc");
    topic.publish("de");
    const got = samples(formatMetrics(hub, [], { unauthorized: 3 }));
    assert.equal(got.get('wsevent_subscribers{transport="websocket"}'), 1);
    assert.equal(got.get('wsevent_subscribers{transport="sse"}'), 1);
    assert.equal(got.get("wsevent_events_published_total"), 2);
    assert.equal(got.get("wsevent_events_delivered_total"), 4);
    assert.equal(got.get("wsevent_events_dropped_total"), 0);
    assert.equal(got.get("wsevent_slow_consumer_disconnects_total"), 0);
    assert.equal(got.get("wsevent_send_errors_total"), 0);
    assert.equal(got.get("wsevent_resume_requests_total"), 0);
    assert.equal(got.get("wsevent_gaps_total"), 0);
    assert.equal(got.get("wsevent_events_coalesced_total"), 0);
    // Coalescing needs time to pass (tests/hub_test.ts); the counter's
    // mapping is what is checked here.
    hub.stats.coalesced = 7;
    assert.equal(
      samples(formatMetrics(hub, [], {})).get("wsevent_events_coalesced_total"),
      7,
    );
    assert.equal(got.get('wsevent_replay_buffer_events{path="events"}'), 2);
    assert.equal(got.get('wsevent_replay_buffer_bytes{path="events"}'), 5);
    assert.equal(got.get('wsevent_path_subscribers{path="events"}'), 2);
    assert.equal(got.get("wsevent_unauthorized_total"), 3);
  });

  test("formatMetrics() reports upstreams and escapes label values", () => {
    const hub = createHub();
    hub.addTopic('we"ird\\path', "e");
    const text = formatMetrics(hub, [
      { url: "ws://up:1/a", path: "events", connected: true, reconnects: 2 },
      { url: 'ws://x/"q"\n', path: "b", connected: false, reconnects: 0 },
    ], {});
    const got = samples(text);
    assert.equal(
      got.get(
        'wsevent_upstream_connected{path="events",upstream="ws://up:1/a"}',
      ),
      1,
    );
    assert.equal(
      got.get(
        'wsevent_upstream_reconnects_total{path="events",upstream="ws://up:1/a"}',
      ),
      2,
    );
    assert.equal(
      got.get(
        'wsevent_upstream_connected{path="b",upstream="ws://x/\\"q\\"\\n"}',
      ),
      0,
    );
    assert.equal(
      got.get('wsevent_replay_buffer_events{path="we\\"ird\\\\path"}'),
      0,
    );
  });
});

describe("formatProcessMetrics()", () => {
  test("formatProcessMetrics() writes each known figure as a gauge in base units", () => {
    const text = formatProcessMetrics({
      rssBytes: 50_000_000,
      heapUsedBytes: 8_000_000,
      heapTotalBytes: 12_000_000,
      externalBytes: 1_000,
      openFds: 17,
      loopDelay: { p50Ms: 1.5, p99Ms: 20, maxMs: 250 },
    });
    const got = samples(text);
    assert.equal(got.get("wsevent_process_resident_memory_bytes"), 50_000_000);
    assert.equal(
      got.get('wsevent_process_heap_bytes{state="used"}'),
      8_000_000,
    );
    assert.equal(
      got.get('wsevent_process_heap_bytes{state="total"}'),
      12_000_000,
    );
    assert.equal(got.get("wsevent_process_external_memory_bytes"), 1_000);
    assert.equal(got.get("wsevent_process_open_fds"), 17);
    assert.equal(
      got.get('wsevent_event_loop_delay_seconds{quantile="0.5"}'),
      0.0015,
    );
    assert.equal(
      got.get('wsevent_event_loop_delay_seconds{quantile="0.99"}'),
      0.02,
    );
    assert.equal(
      got.get('wsevent_event_loop_delay_seconds{quantile="1"}'),
      0.25,
    );
    assert.match(text, /# TYPE wsevent_process_open_fds gauge\n/);
  });

  test("formatProcessMetrics() leaves out what the runtime could not read", () => {
    assert.equal(formatProcessMetrics({}), "");
    const text = formatProcessMetrics({ rssBytes: 1, heapUsedBytes: 2 });
    assert.doesNotMatch(text, /open_fds|loop_delay|external|state="total"/);
    assert.equal(
      samples(text).get('wsevent_process_heap_bytes{state="used"}'),
      2,
    );
  });
});
