/**
 * The client module (src/client.ts) against real instances started from
 * cli.ts: both transports, binary payloads, tokens, resume across a relay
 * restart with nothing lost or repeated, gap notices, a slow consumer, and
 * stopping with nothing left running.
 *
 * @module
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  type ClientEvent,
  type GapNotice,
  publish,
  PublishError,
  subscribe,
} from "../../src/client.ts";
import {
  type Child,
  freePort,
  relayConnected,
  ROOT,
  runtimeCommand,
  type Service,
  startChild,
  startHub,
  startHubOn,
  startProducer,
  waitFor,
} from "./_helpers.ts";
import { startRedis } from "./_redis.ts";

const WAIT_MS = 20_000;

/**
 * Takes the next `n` events with `next()`, leaving the subscription open
 * (a `break` out of `for await` would close it); fewer if it ends.
 */
async function take(
  events: AsyncIterator<ClientEvent>,
  n: number,
): Promise<ClientEvent[]> {
  const got: ClientEvent[] = [];
  while (got.length < n) {
    const result = await events.next();
    if (result.done) break;
    got.push(result.value);
  }
  return got;
}

/** Waits until `/readyz` answers 200 (the engine is connected). */
async function waitReady(http: string): Promise<void> {
  let last = "no answer";
  const deadline = Date.now() + WAIT_MS;
  while (Date.now() < deadline) {
    try {
      const response = await fetch(`${http}/readyz`);
      last = `${response.status} ${await response.text()}`;
      if (response.status === 200) return;
    } catch (error) {
      last = String(error);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
  throw new Error(`${http}/readyz never answered 200 (last: ${last})`);
}

function withTimeout<T>(promise: Promise<T>, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error(`Timed out waiting for ${what}`)),
      WAIT_MS,
    );
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(timer));
}

describe("client module against a real instance", { timeout: 120_000 }, () => {
  test("subscribe() over WebSocket and SSE gets text as strings and bytes as Uint8Array, with ids; publish() returns the id", async () => {
    const hub = await startHub();
    // Start both iterations (they connect on the first next()) and wait
    // until both are connected before publishing.
    const open = { ws: false, sse: false };
    const wsOpen = subscribe(hub.url, {
      onState: (s) => (open.ws ||= s === "open"),
    });
    const sseOpen = subscribe(`${hub.http}/events`, {
      onState: (s) => (open.sse ||= s === "open"),
    });
    try {
      const bytes = new Uint8Array([0, 1, 2, 250, 255, 10, 13]);
      const got = Promise.all([take(wsOpen, 2), take(sseOpen, 2)]);
      await waitFor(() => open.ws && open.sse, WAIT_MS, "both connected");
      const text = await publish(`${hub.http}/events`, "héllo\nworld");
      const binary = await publish(hub.url, bytes);
      assert.match(text.id, /^[0-9a-z]+-\d+$/);
      const [overWs, overSse] = await withTimeout(got, "events");
      for (const events of [overWs, overSse]) {
        assert.deepEqual(events.map((e) => e.id), [text.id, binary.id]);
        assert.equal(events[0].data, "héllo\nworld");
        assert.ok(events[1].data instanceof Uint8Array, "bytes stay bytes");
        assert.deepEqual([...events[1].data], [...bytes]);
      }
    } finally {
      // Also after a failed assertion: an open subscription reconnects for
      // ever and would keep the test file running.
      wsOpen.close();
      sseOpen.close();
      await hub.stop();
    }
  });

  test("a URL with a #fragment connects (the fragment is never sent; WebSocket constructors refuse it, which was retried for ever)", async () => {
    const hub = await startHub();
    const states: string[] = [];
    const events = subscribe(`${hub.url}#section`, {
      onState: (_, detail) => states.push(detail),
    });
    try {
      const got = take(events, 1);
      await waitFor(
        () => states.some((s) => s.startsWith("connected to")),
        WAIT_MS,
        `connected; states: ${states.join(" | ")}`,
      );
      const { id } = await publish(`${hub.http}/events#section`, "x");
      assert.deepEqual(
        (await withTimeout(got, "event")).map((e) => e.id),
        [id],
      );
    } finally {
      events.close();
      await hub.stop();
    }
  });

  test("tokens: subscribe() sends them on both transports; publish() refusals are PublishError with status and code", async () => {
    const hub = await startHub([
      "--subscribe-token",
      "sub-secret",
      "--publish-token",
      "pub-secret",
    ]);
    const subscriptions: { close(): void }[] = [];
    try {
      const refused = await publish(`${hub.http}/events`, "x", {
        token: "wrong",
      }).then(() => null, (error: unknown) => error);
      assert.ok(refused instanceof PublishError, String(refused));
      assert.equal(refused.status, 401);
      assert.equal(refused.code, "unauthorized");
      assert.match(refused.message, /^Cannot publish: the server answered 401/);

      const states: string[] = [];
      const denied = subscribe(`${hub.http}/events`, {
        token: "wrong",
        onState: (_, detail) => states.push(detail),
      });
      subscriptions.push(denied);
      const deniedLoop = take(denied, 1);
      await waitFor(
        () => states.some((s) => /answered 401/.test(s)),
        WAIT_MS,
        "a 401 reported through onState",
      );
      denied.close();
      assert.deepEqual(await deniedLoop, [], "a closed subscription ends");

      const opened: string[] = [];
      const onState = (state: string) => state === "open" && opened.push(state);
      const ws = subscribe(hub.url, { token: "sub-secret", onState });
      const sse = subscribe(`${hub.http}/events`, {
        token: "sub-secret",
        onState,
      });
      subscriptions.push(ws, sse);
      const got = Promise.all([take(ws, 1), take(sse, 1)]);
      await waitFor(() => opened.length === 2, WAIT_MS, "both connected");
      const { id } = await publish(`${hub.http}/events`, "ok", {
        token: "pub-secret",
      });
      const [a, b] = await withTimeout(got, "events with tokens");
      assert.equal(a[0].id, id);
      assert.equal(b[0].id, id);
    } finally {
      for (const subscription of subscriptions) subscription.close();
      await hub.stop();
    }
  });

  for (const transport of ["ws", "sse"] as const) {
    test(`${transport}: resumes across a relay restart on the same port with nothing lost or repeated`, async () => {
      let producer: Service | undefined;
      let relay: Service | undefined;
      let events: ReturnType<typeof subscribe> | undefined;
      try {
        // Published by hand, not a demo producer: what arrives after the
        // restart is then sure to come over the new connection, not from
        // the client's queue (a loaded machine can queue a burst).
        producer = await startHub();
        const port = await freePort();
        const relayArgs = ["--consume-url", producer.url];
        relay = await startHubOn(port, relayArgs);
        await relayConnected(relay, WAIT_MS);
        const url = transport === "ws" ? relay.url : `${relay.http}/events`;
        let opens = 0;
        const subscription = subscribe(url, {
          onState: (s) => s === "open" && opens++,
        });
        events = subscription;
        const ids: string[] = [];
        const send = async (n: number) => {
          for (let i = 0; i < n; i++) {
            ids.push((await publish(`${producer!.http}/events`, `e${i}`)).id);
          }
        };
        const first = take(subscription, 10);
        await waitFor(() => opens === 1, WAIT_MS, "connected");
        await send(10);
        assert.equal((await withTimeout(first, "first events")).length, 10);
        // Killed only once the subscriber has all of the first ten: the
        // next ten are published while the relay is down, so they can only
        // come over a new connection.
        await relay.stop("SIGKILL");
        await send(10); // while the relay is down
        relay = await startHubOn(port, relayArgs);
        await send(10);
        const rest = await withTimeout(
          take(subscription, 20),
          "events after restart",
        );
        const all = [...(await first), ...rest];
        assert.deepEqual(
          all.map((e) => e.id),
          ids,
          "every event once, in order",
        );
        assert.ok(opens >= 2, `reconnected (${opens} opens)`);
      } finally {
        // Also after a failure: a subscription left open keeps reconnecting
        // and the test file never ends.
        events?.close();
        await relay?.stop();
        await producer?.stop();
      }
    });
  }

  test("with a Redis engine the origin itself restarts on the same port: both transports resume with nothing lost or repeated and no gap", async () => {
    const redis = await startRedis();
    let origin: Service | undefined;
    let other: Service | undefined;
    const subscriptions: { close(): void }[] = [];
    try {
      const port = await freePort();
      const args = ["--engine", redis.url];
      origin = await startHubOn(port, args);
      await waitReady(origin.http);
      // A second instance on the same Redis takes the publishes, also while
      // the origin is down.
      other = await startHub(args);
      await waitReady(other.http);
      const gaps: GapNotice[] = [];
      const opened = { ws: 0, sse: 0 };
      const ws = subscribe(origin.url, {
        onGap: (gap) => gaps.push(gap),
        onState: (state) => state === "open" && opened.ws++,
      });
      const sse = subscribe(`${origin.http}/events`, {
        onGap: (gap) => gaps.push(gap),
        onState: (state) => state === "open" && opened.sse++,
      });
      subscriptions.push(ws, sse);
      const got = Promise.all([take(ws, 30), take(sse, 30)]);
      await waitFor(() => opened.ws + opened.sse === 2, WAIT_MS, "connected");
      const ids: string[] = [];
      const send = async (n: number) => {
        for (let i = 0; i < n; i++) {
          ids.push(
            (await publish(`${other!.http}/events`, `e${ids.length}`)).id,
          );
        }
      };
      await send(10);
      await origin.stop("SIGKILL");
      await send(10);
      origin = await startHubOn(port, args);
      // "Serving on" comes before the engine is connected to Redis: until
      // then the origin answers 503, so wait for it to be ready.
      await waitReady(origin.http);
      await send(10);
      const [overWs, overSse] = await withTimeout(got, "30 events each");
      assert.deepEqual(overWs.map((e) => e.id), ids);
      assert.deepEqual(overSse.map((e) => e.id), ids);
      assert.ok(opened.ws >= 2 && opened.sse >= 2, "both reconnected");
      assert.deepEqual(gaps, []);
    } finally {
      for (const subscription of subscriptions) subscription.close();
      await origin?.stop();
      await other?.stop();
      await redis.stop();
    }
  });

  test("gap notices: a resume from another epoch, and across an origin restart, calls onGap before the next event", async () => {
    const port = await freePort();
    let hub = await startHubOn(port);
    const controller = new AbortController();
    try {
      const gaps: GapNotice[] = [];
      const opened: number[] = [];
      const events = subscribe(`${hub.http}/events`, {
        lastEventId: "zzzzzz-41",
        signal: controller.signal,
        onGap: (gap) => gaps.push(gap),
        onState: (s) => s === "open" && opened.push(Date.now()),
      });
      const received: ClientEvent[] = [];
      const gapsBefore: number[] = [];
      const loop = (async () => {
        for await (const event of events) {
          gapsBefore.push(gaps.length);
          received.push(event);
        }
      })();
      await waitFor(() => opened.length === 1, WAIT_MS, "connected");
      const before = await publish(`${hub.http}/events`, "before");
      await waitFor(() => received.length === 1, WAIT_MS, "first event");
      assert.equal(gaps.length, 1);
      assert.equal(gaps[0].lastEventId, "zzzzzz-41");
      assert.deepEqual(gapsBefore, [1], "the gap came before the event");

      await hub.stop();
      hub = await startHubOn(port);
      await waitFor(() => opened.length === 2, WAIT_MS, "reconnected");
      const after = await publish(`${hub.http}/events`, "after");
      await waitFor(() => received.length === 2, WAIT_MS, "event after");
      assert.equal(received[1].id, after.id);
      assert.notEqual(after.id.split("-")[0], before.id.split("-")[0]);
      assert.equal(gaps.length, 2, "the restart is a gap too");
      assert.equal(gaps[1].lastEventId, before.id);
      assert.equal(events.lastEventId, after.id);
      controller.abort();
      await withTimeout(loop, "the loop to end on abort");
    } finally {
      controller.abort();
      await hub.stop();
    }
  });

  test("a consumer slower than the stream: the queue pauses the connection and resumes, nothing lost", async () => {
    const hub = await startHub();
    const details: string[] = [];
    let open = false;
    const events = subscribe(hub.url, {
      maxQueue: 8,
      onState: (s, detail) => {
        details.push(detail);
        open ||= s === "open";
      },
    });
    try {
      const got: ClientEvent[] = [];
      const loop = (async () => {
        for await (const event of events) {
          got.push(event);
          // Events still queued are not "seen": a resume starts after this.
          assert.equal(events.lastEventId, event.id);
          if (got.length === 60) break;
          await new Promise((r) => setTimeout(r, 5));
        }
      })();
      await waitFor(() => open, WAIT_MS, "connected");
      const ids: string[] = [];
      for (let i = 0; i < 60; i++) {
        ids.push((await publish(`${hub.http}/events`, `e${i}`)).id);
      }
      await withTimeout(loop, "60 events");
      assert.deepEqual(got.map((e) => e.id), ids);
      assert.ok(
        details.some((d) => /paused .* the consumer is behind/.test(d)),
        `the queue filled and paused: ${details.join(" | ")}`,
      );
    } finally {
      events.close();
      await hub.stop();
    }
  });

  for (const mode of ["abort", "break", "backoff"] as const) {
    test(`stopping by ${mode}: the program exits by itself, no timer or socket left`, async () => {
      const hub = await startProducer(20);
      let url = hub.url;
      if (mode === "backoff") {
        // Nothing listens there: the client waits between retries.
        url = `ws://127.0.0.1:${await freePort()}/events`;
      }
      let started: Child | undefined;
      try {
        const [command, base] = runtimeCommand(
          join(ROOT, "tests/integration/_client_abort.ts"),
        );
        const child = startChild(command, [...base, url, mode]);
        started = child;
        await waitFor(
          () =>
            /stopped after/.test(child.stdout()) ||
            child.proc.exitCode !== null,
          WAIT_MS,
          `"stopped" from the child: ${child.stderr()}`,
        );
        const stoppedAt = Date.now();
        // A socket left open keeps it alive for good, a heartbeat watchdog
        // for 7.5 s, a retry timer (backoff mode) for at least 2 s.
        let timer: ReturnType<typeof setTimeout> | undefined;
        const exited = await Promise.race([
          child.exited,
          new Promise<null>((r) => (timer = setTimeout(() => r(null), 1_500))),
        ]);
        clearTimeout(timer);
        if (exited === null) await child.stop("SIGKILL");
        assert.ok(
          exited !== null,
          `the child still ran 1.5 s after the subscription stopped: ${child.stdout()}${child.stderr()}`,
        );
        assert.equal(exited.code, 0, child.stderr());
        assert.match(
          child.stdout(),
          mode === "backoff"
            ? /stopped after 0 events/
            : /stopped after 3 events/,
        );
        console.log(
          `${mode}: exited ${Date.now() - stoppedAt} ms after stopping`,
        );
      } finally {
        await started?.stop("SIGKILL");
        await hub.stop();
      }
    });
  }
});
