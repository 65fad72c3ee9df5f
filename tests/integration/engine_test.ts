/**
 * Instances on one Redis (--engine redis://...): real redis-server, real
 * nginx, real wsevent processes on this runtime.
 */

import assert from "node:assert/strict";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  assertContiguous,
  type Child,
  connectSse,
  connectWs,
  freePort,
  nginxTemplate,
  publish,
  ROOT,
  runtimeCommand,
  seqOf,
  type Service,
  sseIds,
  startChild,
  startNginx,
  startService,
  startSubscriber,
  waitFor,
  waitForReady,
  type WsClient,
  wsIds,
} from "./_helpers.ts";
import { type RedisServer, startRedis } from "./_redis.ts";

function instanceArgs(redis: RedisServer, port: number): string[] {
  return [
    "--serve-address",
    `127.0.0.1:${port}`,
    "--no-produce",
    "--engine",
    redis.url,
    "--heartbeat",
    "1000",
  ];
}

async function startInstance(
  redis: RedisServer,
  port = 0,
): Promise<Service> {
  const service = await startService(instanceArgs(redis, port));
  await waitForReady(service.http, true);
  return service;
}

async function subscribersOn(service: Service): Promise<number> {
  const text = await (await fetch(`${service.http}/metrics`)).text();
  const match = /wsevent_path_subscribers\{path="events"\} (\d+)/.exec(text);
  return match ? Number(match[1]) : 0;
}

/** Publishes `count` events, one worker per base URL, each in turn. */
async function publishSpread(
  bases: string[],
  count: number,
  label: string,
): Promise<string[]> {
  const ids: string[] = [];
  await Promise.all(bases.map(async (base, worker) => {
    for (let i = worker; i < count; i += bases.length) {
      ids.push(await publish(base, "events", `${label} ${i}`));
    }
  }));
  return ids.sort((a, b) => seqOf(a) - seqOf(b));
}

describe("engine: instances on one Redis behind nginx", {
  timeout: 90_000,
}, () => {
  let redis: RedisServer;
  let instances: Service[] = [];
  let ports: number[] = [];
  let nginx: Awaited<ReturnType<typeof startNginx>>;
  const nginxHttp = (): string => `http://127.0.0.1:${nginx.port}`;

  before(async () => {
    redis = await startRedis();
    ports = await Promise.all([freePort(), freePort(), freePort()]);
    instances = await Promise.all(ports.map((p) => startInstance(redis, p)));
    nginx = await startNginx(nginxTemplate(), ports);
  });
  after(async () => {
    await nginx?.stop();
    await Promise.all(instances.map((i) => i.stop()));
    await redis?.stop();
  });

  test("publishes spread over every instance reach WebSocket, SSE and resuming subscribers on every instance once, in one order, with the same ids", async () => {
    const live: { name: string; ids: () => string[]; close(): void }[] = [];
    for (const [n, instance] of instances.entries()) {
      const ws = connectWs(`${instance.url}?format=json`);
      const sse = connectSse(`${instance.http}/events`);
      await ws.opened;
      await sse.headers;
      live.push({ name: `ws@${n}`, ids: () => wsIds(ws), close: ws.close });
      live.push({ name: `sse@${n}`, ids: () => sseIds(sse), close: sse.close });
    }
    const bases = [...instances.map((i) => i.http), nginxHttp()];
    const first = await publishSpread(bases, 20, "first");
    assertContiguous(first, "ids given to publishers");
    // Resume from the 6th event, mid-stream: on each instance and through nginx.
    const from = first[5];
    const resumed = [
      ...instances.map((instance, n) => {
        const sse = connectSse(`${instance.http}/events`, {
          "Last-Event-ID": from,
        });
        return {
          name: `resume@${n}`,
          ids: () => sseIds(sse),
          close: sse.close,
        };
      }),
      (() => {
        const ws = connectWs(
          `ws://127.0.0.1:${nginx.port}/events?format=json&lastEventId=${from}`,
        );
        return { name: "resume@nginx", ids: () => wsIds(ws), close: ws.close };
      })(),
    ];
    const second = await publishSpread(bases, 40, "second");
    const all = [...first, ...second];
    assertContiguous(all, "ids given to publishers");
    try {
      for (const client of live) {
        await waitFor(
          () => client.ids().length >= all.length,
          20_000,
          `${all.length} events at ${client.name}`,
        );
        assert.deepEqual(client.ids(), all, client.name);
      }
      for (const client of resumed) {
        await waitFor(
          () => client.ids().length >= all.length - 6,
          20_000,
          `${all.length - 6} events at ${client.name}`,
        );
        assert.deepEqual(client.ids(), all.slice(6), client.name);
      }
    } finally {
      for (const client of [...live, ...resumed]) client.close();
    }
  });

  test("SIGKILL the instance a subscriber is on, mid-stream: it resumes on another through nginx with no loss and no duplicate; restarted, the instance answers a resume from before exactly", async () => {
    const client = startSubscriber(`ws://127.0.0.1:${nginx.port}/events`);
    const published: string[] = [];
    let publishing = true;
    // Publishes through nginx, which may pick the instance being killed:
    // a failed publish is retried (it may have been stored: a new id).
    const publisher = (async () => {
      while (publishing) {
        try {
          published.push(await publish(nginxHttp(), "events", "steady"));
        } catch {
          await new Promise((r) => setTimeout(r, 20));
        }
        await new Promise((r) => setTimeout(r, 10));
      }
    })();
    try {
      await waitFor(
        () => client.lines().length >= 20,
        20_000,
        "20 events through nginx",
      );
      const counts = await Promise.all(instances.map(subscribersOn));
      const victim = counts.indexOf(1);
      assert.notEqual(
        victim,
        -1,
        `subscriber found on one instance (${counts})`,
      );
      await instances[victim].stop("SIGKILL");
      const before = client.lines().length;
      await waitFor(
        () => client.lines().length >= before + 40,
        20_000,
        "40 more events after the kill",
      );
      publishing = false;
      await publisher;
      const last = published.at(-1)!;
      await waitFor(
        () => client.lines().some((l) => l.id === last),
        20_000,
        "the last event published",
      );
      const ids = client.lines().map((l) => l.type === "gap" ? "gap" : l.id!);
      assertContiguous(ids, "subscriber across the kill");
      // Every event published once the subscriber was on, whatever the
      // instance it was published to.
      for (const id of published) {
        if (seqOf(id) > seqOf(ids[0])) {
          assert.ok(ids.includes(id), `${id} received`);
        }
      }

      // Restart it (empty cache): a resume from an id before the kill gets
      // exactly what followed, from Redis.
      instances[victim] = await startInstance(redis, ports[victim]);
      const from = ids[10];
      const sse = connectSse(`${instances[victim].http}/events`, {
        "Last-Event-ID": from,
      });
      try {
        await waitFor(
          () => sse.messages.length >= ids.length - 11,
          20_000,
          `${ids.length - 11} events resumed`,
        );
        assert.deepEqual(sseIds(sse), ids.slice(11));
      } finally {
        sse.close();
      }
    } finally {
      publishing = false;
      // Its failure is reported by the `await publisher` above; here the
      // subscriber child must be stopped whatever happened.
      await publisher.catch(() => {});
      await client.stop();
    }
  });
});

describe("engine: Redis faults", { timeout: 90_000 }, () => {
  test("Redis stopped: publishes 503, /readyz 503, subscribers stay; back with AOF: nothing lost; back without its data: a gap notice, live and on resume", async () => {
    const redis = await startRedis({ aof: true });
    const instances = await Promise.all([
      startInstance(redis),
      startInstance(redis),
    ]);
    const ws = connectWs(`${instances[0].url}?format=json`);
    const sse = connectSse(`${instances[1].http}/events`);
    try {
      await ws.opened;
      await sse.headers;
      const before = await publishSpread(
        instances.map((i) => i.http),
        6,
        "before",
      );

      await redis.kill();
      for (const instance of instances) {
        await waitForReady(instance.http, false);
        const response = await fetch(`${instance.http}/events`, {
          method: "POST",
          body: "refused",
        });
        assert.equal(response.status, 503);
        const body = await response.json() as { code: string; error: string };
        assert.equal(body.code, "engine_unavailable");
        assert.match(body.error, /Cannot publish/);
      }
      assert.equal(ws.isClosed(), false, "the WebSocket subscriber stays");
      assert.match(
        await (await fetch(`${instances[0].http}/metrics`)).text(),
        /wsevent_engine_connected\{engine="redis"\} 0/,
      );

      await redis.restart({ aof: true });
      for (const instance of instances) await waitForReady(instance.http, true);
      const after = await publishSpread(
        instances.map((i) => i.http),
        6,
        "after",
      );
      const all = [...before, ...after];
      assertContiguous(all, "ids across an AOF restart");
      await waitFor(() => wsIds(ws).length >= 12, 15_000, "12 events on ws");
      await waitFor(() => sseIds(sse).length >= 12, 15_000, "12 events on sse");
      assert.deepEqual(wsIds(ws), all);
      assert.deepEqual(sseIds(sse), all);
      const metrics = await (await fetch(`${instances[0].http}/metrics`))
        .text();
      assert.match(
        metrics,
        /wsevent_engine_reconnects_total\{engine="redis"\} [1-9]/,
      );
      assert.match(
        metrics,
        /wsevent_engine_publish_errors_total\{engine="redis"\} [1-9]/,
      );
      assert.match(
        metrics,
        /wsevent_engine_read_lag_seconds\{engine="redis"\} \d+(\.\d+)?(e-\d+)?\n/,
      );

      // Without persistence: the log is gone, a new epoch starts.
      await redis.kill();
      await redis.restart({ aof: false, fresh: true });
      for (const instance of instances) await waitForReady(instance.http, true);
      const fresh = await publish(instances[0].http, "events", "fresh");
      assert.notEqual(fresh.split("-")[0], all[0].split("-")[0], "new epoch");
      await waitFor(() => wsIds(ws).includes(fresh), 15_000, "fresh on ws");
      await waitFor(() => sseIds(sse).includes(fresh), 15_000, "fresh on sse");
      assert.deepEqual(wsIds(ws).slice(12), ["gap", fresh]);
      assert.deepEqual(sseIds(sse).slice(12), ["gap", fresh]);
      // A resume from before the loss, on an instance that never had it cached.
      const late = await startInstance(redis);
      instances.push(late);
      const resume = connectSse(`${late.http}/events`, {
        "Last-Event-ID": all.at(-1)!,
      });
      try {
        await waitFor(() => resume.messages.length >= 2, 15_000, "resume");
        assert.deepEqual(sseIds(resume), ["gap", fresh]);
      } finally {
        resume.close();
      }
    } finally {
      ws.close();
      sse.close();
      await Promise.all(instances.map((i) => i.stop()));
      await redis.stop();
    }
  });
});

describe("engine: command line", { timeout: 30_000 }, () => {
  test("a bad -engine URL exits 2 with a usage error that does not show the password", async () => {
    const [command, base] = runtimeCommand(join(ROOT, "cli.ts"));
    const child = startChild(command, [
      ...base,
      "--engine",
      "redis://app:hunter2@cache.example:6379/db",
    ]);
    try {
      const { code } = await child.exited;
      assert.equal(code, 2);
      assert.match(child.stderr(), /error: Cannot parse flag -engine/);
      assert.match(child.stderr(), /redis:\/\/app:\*\*\*@cache\.example/);
      assert.doesNotMatch(child.stderr() + child.stdout(), /hunter2/);
    } finally {
      // Should it run on (the flag accepted), the test's timeout ends the
      // test; the child must not keep the file alive.
      await child.stop("SIGKILL");
    }
  });
});

describe("engine: the edge entry", { timeout: 60_000 }, () => {
  test("two `deno serve mod.ts` edges with WSEVENT_ENGINE share one log without an origin (spawns Deno on every runtime: deno serve is Deno's)", async () => {
    const redis = await startRedis();
    const edges: Child[] = [];
    const ports = await Promise.all([freePort(), freePort()]);
    let ws: WsClient | undefined;
    try {
      for (const port of ports) {
        edges.push(startChild(join(ROOT, "node_modules", ".bin", "deno"), [
          "serve",
          "--allow-net",
          "--allow-env",
          "--host",
          "127.0.0.1",
          "--port",
          String(port),
          "mod.ts",
        ], { WSEVENT_ENGINE: redis.url, WSEVENT_NO_PRODUCE: "true" }));
      }
      // The edge instance starts on its first request.
      for (const port of ports) {
        await waitForReady(`http://127.0.0.1:${port}`, true);
      }
      ws = connectWs(`ws://127.0.0.1:${ports[1]}/events?format=json`);
      await ws.opened;
      const id = await publish(
        `http://127.0.0.1:${ports[0]}`,
        "events",
        "edge",
      );
      await waitFor(() => wsIds(ws!).includes(id), 15_000, "the event");
      assert.deepEqual(wsIds(ws), [id]);
      assert.equal(JSON.parse(ws.messages[0]).data, "edge");
    } finally {
      ws?.close();
      await Promise.all(edges.map((e) => e.stop()));
      await redis.stop();
    }
  });
});

describe("engine: relays", { timeout: 60_000 }, () => {
  test("a relay of an engine-backed instance keeps its ids, forwards publishes into Redis, and resumes from Redis when that instance restarts", async () => {
    const redis = await startRedis();
    const port = await freePort();
    let origin = await startInstance(redis, port);
    const other = await startInstance(redis);
    const relay = await startService([
      "--serve-address",
      "127.0.0.1:0",
      "--no-produce",
      "--consume-url",
      `ws://127.0.0.1:${port}/events`,
      "--forward-publish",
    ]);
    const onRelay = connectWs(`${relay.url}?format=json`);
    const onOther = connectWs(`${other.url}?format=json`);
    try {
      await onRelay.opened;
      await onOther.opened;
      await waitForReady(relay.http, true);
      const ids = [
        await publish(relay.http, "events", "via the relay"),
        await publish(other.http, "events", "via the other instance"),
      ];
      await waitFor(() => wsIds(onRelay).length >= 2, 15_000, "2 on the relay");
      // The instance the relay consumes restarts, empty: the relay resumes
      // from its last id, answered from Redis; meanwhile events go on.
      await origin.stop("SIGKILL");
      for (let i = 0; i < 5; i++) {
        ids.push(await publish(other.http, "events", `while away ${i}`));
      }
      origin = await startInstance(redis, port);
      ids.push(await publish(origin.http, "events", "after"));
      await waitFor(() => wsIds(onRelay).length >= 8, 20_000, "8 on the relay");
      await waitFor(() => wsIds(onOther).length >= 8, 15_000, "8 on the other");
      assertContiguous(ids, "ids given to publishers");
      assert.deepEqual(wsIds(onRelay), ids);
      assert.deepEqual(wsIds(onOther), ids);
    } finally {
      onRelay.close();
      onOther.close();
      await Promise.all([origin.stop(), other.stop(), relay.stop()]);
      await redis.stop();
    }
  });
});
