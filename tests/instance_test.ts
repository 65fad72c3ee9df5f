/**
 * createInstance() (src/instance.ts) wired from parsed flags, with the
 * fake WebSocket support of the app tests and no port: the topics and their
 * epoch, the demo producer, the relay, and a stop that closes subscribers
 * and leaves no interval running.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type Config, parseConfig } from "../src/config.ts";
import { createInstance } from "../src/instance.ts";
import { createLogger } from "../src/log.ts";
import { FakeSink } from "./_fake_sink.ts";
import { fakeWebSocket } from "./http/_app_helpers.ts";

function configOf(args: string[]): Config {
  const command = parseConfig(args);
  assert.equal(command.kind, "serve");
  return (command as { config: Config }).config;
}

const quiet = createLogger({ level: "quiet", json: false, write: () => {} });

/** Intervals set and not cleared since the call, until `restore()`. */
function watchIntervals(): { live(): number; restore(): void } {
  const original = {
    set: globalThis.setInterval,
    clear: globalThis.clearInterval,
  };
  const live = new Set<unknown>();
  globalThis.setInterval = ((task: () => void, ms?: number) => {
    const handle: unknown = original.set(task, ms);
    live.add(handle);
    return handle;
  }) as typeof setInterval;
  globalThis.clearInterval = ((handle: Parameters<typeof clearInterval>[0]) => {
    live.delete(handle);
    original.clear(handle);
  }) as typeof clearInterval;
  return {
    live: () => live.size,
    // Clears what is left too, so a failing test does not keep the
    // process alive.
    restore() {
      for (const handle of live) {
        original.clear(handle as Parameters<typeof clearInterval>[0]);
      }
      globalThis.setInterval = original.set;
      globalThis.clearInterval = original.clear;
    },
  };
}

async function until(check: () => boolean, what: string): Promise<void> {
  const deadline = Date.now() + 5000;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`Timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 10));
  }
}

describe("createInstance()", () => {
  test("createInstance() gives each --serve-path a topic of one epoch, produces the original's demo message on each every -interval, and stop() closes subscribers with 1001 and clears every interval", async () => {
    const intervals = watchIntervals();
    let instance: ReturnType<typeof createInstance> | undefined;
    let stopped = false;
    try {
      instance = createInstance(
        configOf([
          "--serve-address",
          "127.0.0.1:8080",
          "--serve-path",
          "a",
          "--serve-path",
          "b",
          "--interval",
          "20",
        ]),
        fakeWebSocket().support,
        quiet,
      );
      assert.deepEqual(instance.hub.topics().map((t) => t.path), ["a", "b"]);
      const sinks = instance.hub.topics().map((topic) => {
        const sink = new FakeSink();
        topic.subscribe(sink);
        return sink;
      });
      await until(
        () => sinks.every((sink) => sink.events.length >= 3),
        "three demo events on each path",
      );
      const epochs = new Set(
        sinks.flatMap((sink) => sink.events.map((e) => e.epoch)),
      );
      assert.equal(epochs.size, 1, "one epoch for the instance");
      for (const sink of sinks) {
        assert.deepEqual(
          sink.events.slice(0, 3).map((e) => e.seq),
          [0, 1, 2],
          "each path counts from 0",
        );
        for (const [i, event] of sink.events.slice(0, 3).entries()) {
          assert.match(
            event.data as string,
            new RegExp(`^${i}: 127\\.0\\.0\\.1:8080: [A-Za-z]{10}\\n$`),
          );
        }
      }
      assert.ok(intervals.live() >= 3, "producers and heartbeat run");
      stopped = true;
      await instance.stop();
      for (const sink of sinks) assert.equal(sink.closed?.code, 1001);
      assert.equal(intervals.live(), 0, "no interval left after stop()");
      assert.throws(() => instance!.hub.topic("a")!.subscribe(new FakeSink()));
    } finally {
      if (!stopped) await instance?.stop();
      intervals.restore();
    }
  });

  test("createInstance() of a relay keeps the upstream's ids, shows the upstream without its token on /readyz, and stop() stops consuming and clears every interval", async () => {
    const original = globalThis.fetch;
    const intervals = watchIntervals();
    const requests: string[] = [];
    let controller: ReadableStreamDefaultController<Uint8Array> | undefined;
    globalThis.fetch = ((input: string | URL | Request) => {
      requests.push(String(input instanceof Request ? input.url : input));
      return Promise.resolve(
        new Response(
          new ReadableStream<Uint8Array>({
            start(c) {
              controller = c;
              c.enqueue(
                new TextEncoder().encode(
                  "retry: 1000\n\nid: up-41\ndata: relayed\n\n",
                ),
              );
            },
          }),
          { headers: { "content-type": "text/event-stream" } },
        ),
      );
    }) as typeof fetch;
    let instance: ReturnType<typeof createInstance> | undefined;
    let stopped = false;
    try {
      instance = createInstance(
        configOf([
          "--consume-url",
          "http://127.0.0.1:9/feed?token=up-s3cret",
          "--no-produce",
        ]),
        fakeWebSocket().support,
        quiet,
      );
      const topic = instance.hub.topic("events")!;
      await until(() => topic.lastId === "up-41", "the relayed event");
      assert.match(requests[0], /^http:\/\/127\.0\.0\.1:9\/feed\?/);
      assert.match(requests[0], /replay=all/);
      const ready = await instance.app.fetch(
        new Request("http://localhost/readyz"),
      );
      assert.equal(ready.status, 200);
      const text = await ready.text();
      assert.ok(!text.includes("up-s3cret"), text);
      stopped = true;
      await instance.stop();
      // The reader was cancelled: the stream is closed to further events.
      assert.throws(() =>
        controller!.enqueue(new TextEncoder().encode("data: late\n\n"))
      );
      assert.equal(requests.length, 1, "no reconnection after stop()");
      assert.equal(intervals.live(), 0, "no interval left after stop()");
    } finally {
      if (!stopped) await instance?.stop();
      intervals.restore();
      globalThis.fetch = original;
    }
  });
});
