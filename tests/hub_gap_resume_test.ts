/**
 * A gap reported after the newest event (an upstream's gap notice, or an
 * engine that found its store lost data) is kept for the next event, so a
 * later resume across it is told. A subscriber that resumes before that
 * next event comes must be told too: it replays up to the newest event and
 * then goes on live, where nothing would tell it.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { createHub } from "../src/hub.ts";
import { FakeSink } from "./_fake_sink.ts";

function reported() {
  const hub = createHub();
  const topic = hub.addTopic("events", "unused");
  const live = new FakeSink();
  topic.subscribe(live);
  topic.ingest({ epoch: "r", seq: 0 }, "a");
  topic.ingest({ epoch: "r", seq: 1 }, "b");
  topic.notifyGap({ lastEventId: "r-1", reason: "lost" });
  return { topic, live };
}

describe("Topic: a gap reported before the next event", () => {
  test("a subscriber resuming from a buffered id before the next event gets the gap notice after the replay, then the next event", () => {
    const { topic, live } = reported();
    const older = new FakeSink();
    topic.subscribe(older, { lastEventId: "r-0" });
    const newest = new FakeSink();
    topic.subscribe(newest, { lastEventId: "r-1" });
    const all = new FakeSink();
    topic.subscribe(all, { replayAll: true });
    topic.ingest({ epoch: "s", seq: 0 }, "c");
    assert.deepEqual(live.log, ["r-0", "r-1", "gap:r-1", "s-0"]);
    assert.deepEqual(older.log, ["r-1", "gap:r-1", "s-0"]);
    assert.deepEqual(newest.log, ["gap:r-1", "s-0"]);
    assert.deepEqual(all.log, ["r-0", "r-1", "gap:r-1", "s-0"]);
    // After the next event, the gap is replayed before it, once.
    const later = new FakeSink();
    topic.subscribe(later, { lastEventId: "r-0" });
    assert.deepEqual(later.log, ["r-1", "gap:r-1", "s-0"]);
  });

  test("a subscriber without a resume point is not told (it missed nothing); one resuming from another epoch's id gets the buffer after its notice, then this one; one from an id ahead of the buffer gets a single notice", () => {
    const { topic } = reported();
    const fresh = new FakeSink();
    topic.subscribe(fresh);
    const other = new FakeSink();
    topic.subscribe(other, { lastEventId: "q-7" });
    const ahead = new FakeSink();
    topic.subscribe(ahead, { lastEventId: "r-5" });
    topic.ingest({ epoch: "s", seq: 0 }, "c");
    assert.deepEqual(fresh.log, ["s-0"]);
    assert.deepEqual(other.log, ["gap:q-7", "r-0", "r-1", "gap:r-1", "s-0"]);
    assert.deepEqual(ahead.log, ["gap:r-5", "s-0"]);
  });
});
