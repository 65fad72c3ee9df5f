/**
 * Redis client micro-benchmark: which client should the Redis engine use on
 * each runtime? Starts its own `redis-server` on a free loopback port in a
 * temporary directory (`lib/redis.ts`; no persistence, no pub/sub output
 * limit) and measures, for each client that loads on the runtime it runs on:
 *
 * - append: `EVALSHA` of the engine's kind of Lua script (HINCRBY of a meta
 *   hash, XADD with MAXLEN ~, PUBLISH of the event) with 16 calls in flight;
 * - pubsub: messages received per second on one subscriber connection, with
 *   Buffer payloads where the client offers them; the messages are sent by
 *   `redis-benchmark` in another process so that only receiving is counted;
 * - xrange: `XRANGE key - + COUNT 1000` of a 1000-entry stream, one call at a
 *   time (what a resume from Redis does).
 *
 * Each figure is the median of `--trials` runs (default 3), with this
 * process's CPU (process.cpuUsage) and redis-server's CPU (/proc) per 1000
 * events. Run it with each runtime:
 *
 * ```sh
 * nice -n 10 node_modules/.bin/bun bench/redis_clients.ts
 * nice -n 10 node_modules/node/bin/node bench/redis_clients.ts
 * nice -n 10 node_modules/.bin/deno run --allow-net=127.0.0.1 --allow-env \
 *   --allow-read --allow-write --allow-run=redis-server,redis-benchmark \
 *   --allow-sys bench/redis_clients.ts
 * ```
 *
 * Options: `--clients ioredis,node-redis,bun`, `--trials N`, `--scale F`
 * (multiplies the event counts), `--json` (one JSON line per result).
 *
 * @module
 */

import { spawn } from "node:child_process";
import process from "node:process";
import { Buffer } from "node:buffer";
import { procCpuSeconds, type RedisProcess, startRedis } from "./lib/redis.ts";

const IN_FLIGHT = 16;
const PAYLOAD_BYTES = 128;
const XRANGE_ENTRIES = 1000;

/** The append script: what the Redis engine does per published event. */
const APPEND_LUA = `
local seq = redis.call('HINCRBY', KEYS[2], 'seq', 1)
local id = redis.call('XADD', KEYS[1], 'MAXLEN', '~', ARGV[2], '*', 'd', ARGV[1])
redis.call('PUBLISH', KEYS[3], id .. ' ' .. seq .. ' ' .. ARGV[1])
return id
`;

type Runtime = "bun" | "deno" | "node";

/** A bad option: exit code 2. */
class UsageError extends Error {
  override name = "UsageError";
}

function runtimeName(): Runtime {
  if ("Bun" in globalThis) return "bun";
  if ("Deno" in globalThis) return "deno";
  return "node";
}

/** The few operations measured, over one client library. */
interface Driver {
  name: string;
  /** Loads a script, returns its sha1. */
  scriptLoad(source: string): Promise<string>;
  evalsha(sha: string, keys: string[], args: string[]): Promise<unknown>;
  /** XRANGE key - + COUNT n; returns the number of entries. */
  xrange(key: string, count: number): Promise<number>;
  del(key: string): Promise<void>;
  /** Subscribes on a second connection; `onMessage` gets each payload. */
  subscribe(
    channel: string,
    onMessage: (payload: Uint8Array | string) => void,
  ): Promise<() => Promise<void>>;
  /** Whether subscribe hands out Buffers (false: strings). */
  buffers: boolean;
  close(): Promise<void>;
}

async function ioredisDriver(url: string): Promise<Driver> {
  const { Redis } = await import("ioredis");
  const client = new Redis(url, { lazyConnect: true, maxRetriesPerRequest: 1 });
  await client.connect();
  return {
    name: "ioredis",
    buffers: true,
    scriptLoad: async (source) => String(await client.script("LOAD", source)),
    evalsha: (sha, keys, args) =>
      client.evalsha(sha, keys.length, ...keys, ...args),
    xrange: async (key, count) =>
      (await client.xrangeBuffer(key, "-", "+", "COUNT", count)).length,
    del: async (key) => {
      await client.del(key);
    },
    subscribe: async (channel, onMessage) => {
      const sub = client.duplicate();
      sub.on(
        "messageBuffer",
        (_ch: Buffer, message: Buffer) => onMessage(message),
      );
      await sub.subscribe(channel);
      return async () => {
        await sub.quit();
      };
    },
    close: async () => {
      await client.quit();
    },
  };
}

async function nodeRedisDriver(url: string): Promise<Driver> {
  const { createClient, RESP_TYPES } = await import("redis");
  const client = createClient({ url });
  client.on("error", () => {});
  await client.connect();
  // Bulk strings as Buffers, as the engine would read payloads.
  const raw = client.withTypeMapping({ [RESP_TYPES.BLOB_STRING]: Buffer });
  return {
    name: "node-redis",
    buffers: true,
    scriptLoad: (source) => client.scriptLoad(source),
    evalsha: (sha, keys, args) =>
      client.evalSha(sha, { keys, arguments: args }),
    xrange: async (key, count) =>
      ((await raw.sendCommand([
        "XRANGE",
        key,
        "-",
        "+",
        "COUNT",
        String(count),
      ])) as unknown[])
        .length,
    del: async (key) => {
      await client.del(key);
    },
    subscribe: async (channel, onMessage) => {
      const sub = client.duplicate();
      sub.on("error", () => {});
      await sub.connect();
      await sub.subscribe(
        channel,
        (message: Buffer) => onMessage(message),
        true,
      );
      return async () => {
        await sub.quit();
      };
    },
    close: async () => {
      await client.quit();
    },
  };
}

/** Bun's built-in client (`Bun.RedisClient`); strings only for pub/sub. */
async function bunDriver(url: string): Promise<Driver> {
  // deno-lint-ignore no-explicit-any
  const { RedisClient } = (globalThis as any).Bun as {
    RedisClient: new (url: string) => {
      connect(): Promise<void>;
      send(command: string, args: string[]): Promise<unknown>;
      duplicate(): Promise<
        {
          subscribe(
            ch: string,
            fn: (m: string, ch: string) => void,
          ): Promise<unknown>;
          close(): void;
        }
      >;
      close(): void;
    };
  };
  const client = new RedisClient(url);
  await client.connect();
  return {
    name: "bun",
    buffers: false,
    scriptLoad: async (source) =>
      String(await client.send("SCRIPT", ["LOAD", source])),
    evalsha: (sha, keys, args) =>
      client.send("EVALSHA", [sha, String(keys.length), ...keys, ...args]),
    xrange: async (key, count) =>
      ((await client.send("XRANGE", [
        key,
        "-",
        "+",
        "COUNT",
        String(count),
      ])) as unknown[])
        .length,
    del: async (key) => {
      await client.send("DEL", [key]);
    },
    subscribe: async (channel, onMessage) => {
      const sub = await client.duplicate();
      await sub.subscribe(channel, (message) => onMessage(message));
      return () => {
        sub.close();
        return Promise.resolve();
      };
    },
    close: () => {
      client.close();
      return Promise.resolve();
    },
  };
}

const DRIVERS: Record<string, (url: string) => Promise<Driver>> = {
  ioredis: ioredisDriver,
  "node-redis": nodeRedisDriver,
  bun: bunDriver,
};

interface Sample {
  events: number;
  seconds: number;
  cpuSeconds: number;
  redisCpuSeconds: number;
}

async function measure(
  redisPid: number,
  work: () => Promise<number>,
): Promise<Sample> {
  const cpu0 = process.cpuUsage();
  const redis0 = procCpuSeconds(redisPid);
  const t0 = performance.now();
  const events = await work();
  const seconds = (performance.now() - t0) / 1000;
  const cpu = process.cpuUsage(cpu0);
  return {
    events,
    seconds,
    cpuSeconds: (cpu.user + cpu.system) / 1e6,
    redisCpuSeconds: procCpuSeconds(redisPid) - redis0,
  };
}

function payload(i: number): string {
  const head = `{"n":${i},"text":"`;
  return head + "x".repeat(PAYLOAD_BYTES - head.length - 2) + `"}`;
}

async function appendRun(
  driver: Driver,
  sha: string,
  tag: string,
  n: number,
): Promise<number> {
  const keys = [
    `wsevent:{${tag}}:s`,
    `wsevent:{${tag}}:m`,
    `wsevent:{${tag}}:p`,
  ];
  let next = 0;
  const worker = async () => {
    while (next < n) {
      const i = next++;
      await driver.evalsha(sha, keys, [payload(i), "1000"]);
    }
  };
  await Promise.all(Array.from({ length: IN_FLIGHT }, worker));
  return n;
}

/** Sends `n` PUBLISHes from redis-benchmark (another process). */
function publishFromOutside(
  port: number,
  channel: string,
  n: number,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn("redis-benchmark", [
      "-h",
      "127.0.0.1",
      "-p",
      String(port),
      "-c",
      "2",
      "-P",
      "64",
      "-n",
      String(n),
      "-q",
      "PUBLISH",
      channel,
      payload(0),
    ], { stdio: ["ignore", "ignore", "inherit"] });
    child.once("error", reject);
    child.once(
      "exit",
      (code) =>
        code === 0
          ? resolve()
          : reject(new Error(`redis-benchmark exited ${code}`)),
    );
  });
}

async function pubsubRun(
  driver: Driver,
  redis: RedisProcess,
  n: number,
): Promise<Sample & { bytes: number }> {
  const channel = `wsevent:bench:ch:${Math.random().toString(36).slice(2)}`;
  let received = 0;
  let bytes = 0;
  let t1 = 0;
  let cpuAtEnd = { user: 0, system: 0 };
  let redisAtEnd = 0;
  let done: () => void = () => {};
  const all = new Promise<void>((resolve) => (done = resolve));
  let first: {
    cpu: ReturnType<typeof process.cpuUsage>;
    t: number;
    redis: number;
  } | undefined;
  const unsubscribe = await driver.subscribe(channel, (message) => {
    if (first === undefined) {
      first = {
        cpu: process.cpuUsage(),
        t: performance.now(),
        redis: procCpuSeconds(redis.pid),
      };
    }
    received++;
    bytes += message.length;
    if (received === n) {
      t1 = performance.now();
      cpuAtEnd = process.cpuUsage(first!.cpu);
      redisAtEnd = procCpuSeconds(redis.pid);
      done();
    }
  });
  const publishing = publishFromOutside(redis.port, channel, n);
  const timeout = setTimeout(() => done(), 120_000);
  await all;
  clearTimeout(timeout);
  await publishing;
  const f = first!;
  const sample = {
    events: n,
    seconds: (t1 - f.t) / 1000,
    cpuSeconds: (cpuAtEnd.user + cpuAtEnd.system) / 1e6,
    redisCpuSeconds: redisAtEnd - f.redis,
    bytes,
  };
  await unsubscribe();
  if (received < n) {
    throw new Error(`${driver.name}: received ${received} of ${n} messages`);
  }
  return sample;
}

interface Result {
  runtime: Runtime;
  client: string;
  test: "append" | "pubsub" | "xrange";
  eventsPerSecond: number;
  /** This process's CPU ms per 1000 events. */
  cpuMsPer1k: number;
  /** CPU share of one core while running. */
  cpuShare: number;
  /** redis-server's CPU ms per 1000 events. */
  redisCpuMsPer1k: number;
  note: string;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)];
}

function summarize(
  runtime: Runtime,
  client: string,
  test: Result["test"],
  samples: Sample[],
  note: string,
): Result {
  const rates = samples.map((s) => s.events / s.seconds);
  const best = samples[rates.indexOf(median(rates))];
  return {
    runtime,
    client,
    test,
    eventsPerSecond: best.events / best.seconds,
    cpuMsPer1k: (best.cpuSeconds * 1e6) / best.events,
    cpuShare: best.cpuSeconds / best.seconds,
    redisCpuMsPer1k: (best.redisCpuSeconds * 1e6) / best.events,
    note,
  };
}

function parseArgs(argv: string[]) {
  const options = { clients: [] as string[], trials: 3, scale: 1, json: false };
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    const value = (): string => {
      const v = argv[++i];
      if (v === undefined) {
        throw new UsageError(`Cannot parse ${arg}: it needs a value`);
      }
      return v;
    };
    if (arg === "--clients") options.clients = value().split(",");
    else if (arg === "--trials") {
      const text = value();
      options.trials = /^[0-9]+$/.test(text) ? Number(text) : NaN;
      if (!(options.trials >= 1)) {
        throw new UsageError(
          `Cannot parse --trials: expected a positive integer, received "${text}"`,
        );
      }
    } else if (arg === "--scale") {
      const text = value();
      options.scale = Number(text);
      if (!(options.scale > 0) || !Number.isFinite(options.scale)) {
        throw new UsageError(
          `Cannot parse --scale: expected a positive number, received "${text}"`,
        );
      }
    } else if (arg === "--json") options.json = true;
    else {
      throw new UsageError(
        `Unknown option "${arg}": expected --clients, --trials, --scale or --json`,
      );
    }
  }
  for (const c of options.clients) {
    if (!(c in DRIVERS)) {
      throw new UsageError(
        `Cannot parse --clients: expected some of ${
          Object.keys(DRIVERS).join(",")
        }, received "${c}"`,
      );
    }
    if (c === "bun" && runtimeName() !== "bun") {
      throw new UsageError(
        "Cannot use --clients bun: Bun.RedisClient exists on Bun only",
      );
    }
  }
  return options;
}

async function main(): Promise<void> {
  const options = parseArgs(process.argv.slice(2));
  const runtime = runtimeName();
  const names = options.clients.length > 0
    ? options.clients
    : Object.keys(DRIVERS).filter((c) => c !== "bun" || runtime === "bun");
  const appendN = Math.round(20_000 * options.scale);
  const pubsubN = Math.round(100_000 * options.scale);
  const xrangeCalls = Math.max(1, Math.round(100 * options.scale));
  const redis = await startRedis({
    aof: false,
    args: ["--client-output-buffer-limit", "pubsub 0 0 0"],
  });
  const results: Result[] = [];
  try {
    for (const name of names) {
      const driver = await DRIVERS[name](redis.url);
      try {
        const sha = await driver.scriptLoad(APPEND_LUA);
        const appendSamples: Sample[] = [];
        const pubsubSamples: Sample[] = [];
        const xrangeSamples: Sample[] = [];
        // Warm-up: loads code paths and JIT before the measured runs.
        await appendRun(driver, sha, `/warm-${name}`, 2_000);
        for (let t = 0; t < options.trials; t++) {
          const tag = `/append-${name}-${t}`;
          appendSamples.push(
            await measure(
              redis.pid,
              () => appendRun(driver, sha, tag, appendN),
            ),
          );
          pubsubSamples.push(await pubsubRun(driver, redis, pubsubN));
          // A stream of exactly XRANGE_ENTRIES entries (no trimming).
          const key = `wsevent:{/xrange-${name}-${t}}:s`;
          await driver.del(key);
          const fill = `/fill-${name}-${t}`;
          await appendRun(driver, sha, fill, XRANGE_ENTRIES);
          const source = `wsevent:{${fill}}:s`;
          xrangeSamples.push(
            await measure(redis.pid, async () => {
              let entries = 0;
              for (let i = 0; i < xrangeCalls; i++) {
                const got = await driver.xrange(source, XRANGE_ENTRIES);
                if (got < XRANGE_ENTRIES) throw new Error(`xrange got ${got}`);
                entries += got;
              }
              return entries;
            }),
          );
        }
        results.push(
          summarize(
            runtime,
            name,
            "append",
            appendSamples,
            `${IN_FLIGHT} in flight`,
          ),
        );
        results.push(
          summarize(
            runtime,
            name,
            "pubsub",
            pubsubSamples,
            driver.buffers ? "Buffer payloads" : "string payloads",
          ),
        );
        results.push(
          summarize(
            runtime,
            name,
            "xrange",
            xrangeSamples,
            `${XRANGE_ENTRIES} per call, 1 in flight`,
          ),
        );
      } finally {
        await driver.close();
      }
    }
  } finally {
    await redis.stop();
  }
  const version = runtime === "bun"
    // deno-lint-ignore no-explicit-any
    ? (globalThis as any).Bun.version
    : runtime === "deno"
    // deno-lint-ignore no-explicit-any
    ? (globalThis as any).Deno.version.deno
    : process.versions.node;
  if (options.json) {
    for (const r of results) console.log(JSON.stringify({ ...r, version }));
    return;
  }
  console.log(`${runtime} ${version}, median of ${options.trials}`);
  console.log(
    "| runtime | client | test | events/s | CPU ms / 1k | CPU share | redis CPU ms / 1k | note |",
  );
  console.log("| --- | --- | --- | ---: | ---: | ---: | ---: | --- |");
  for (const r of results) {
    console.log(
      `| ${r.runtime} | ${r.client} | ${r.test} | ${
        Math.round(r.eventsPerSecond).toLocaleString("en-US")
      } | ${r.cpuMsPer1k.toFixed(1)} | ${(r.cpuShare * 100).toFixed(0)}% | ${
        r.redisCpuMsPer1k.toFixed(1)
      } | ${r.note} |`,
    );
  }
}

try {
  await main();
  process.exit(0);
} catch (error) {
  console.error(`error: ${error instanceof Error ? error.message : error}`);
  process.exit(error instanceof UsageError ? 2 : 1);
}
