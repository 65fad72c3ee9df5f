/**
 * The Redis engine: each path is a Redis stream shared by every instance
 * started with the same URL, prefix and paths, so they serve one log
 * (same ids, same order, publish and subscribe anywhere).
 *
 * How it works (Centrifugo's design, on Redis 6.2+ and its kin):
 * - Append: one Lua script (see `_redis_wire.ts`) numbers the event from
 *   the path's meta hash, adds it to the stream (`XADD`, `MAXLEN ~`
 *   `--buffer`), refreshes `--history-ttl` and publishes it on the path's
 *   channel, atomically. The id (`<epoch>-<seq>`) is answered once Redis
 *   has run it; a failure answers {@link EngineUnavailableError} (503).
 * - Live: one Pub/Sub connection for every path (a `SUBSCRIBE` per path,
 *   added and removed at run time). Each path's reader checks that each
 *   event is the last one plus one; on a hole, after a reconnect, or when
 *   the epoch changed, it reads the stream from its last id (`XRANGE`)
 *   before going on, so every stored event is delivered once, in order.
 *   A loss it cannot fill (trimmed, or Redis lost its data and started a
 *   new epoch) reaches the hub as a gap notice, never as a silent hole.
 *   An instance's own append is delivered as soon as Redis answers it when
 *   it is exactly the next event (its copy on the channel is then a
 *   repeat, dropped by its id and nonce before its payload is read).
 * - History: a resume older than the hub's cache reads the stream
 *   (`XRANGE` after the id; from the start when the id is of another
 *   epoch, and the hub then sends the gap notice first).
 *
 * Blocking reads are not used: `XREAD BLOCK` over thousands of on-demand
 * paths would repeat every key on each call, where Pub/Sub costs nothing
 * per idle path.
 *
 * @module
 */

import { createEpoch, type EventData } from "../event.ts";
import type { Topic } from "../hub.ts";
import type { Logger } from "../log.ts";
import { redactSecretsIn, redactUrl } from "../redact.ts";
import { connectRedis, isRefusal } from "./_redis_client.ts";
import { PAGE, Reader, type Store } from "./_redis_reader.ts";
import {
  APPEND_SCRIPT,
  BUMP_SCRIPT,
  entryIdOf,
  kindOf,
  parseRange,
  type PathKeys,
  pathKeys,
  type WireEvent,
} from "./_redis_wire.ts";
import {
  type Engine,
  type EngineStatus,
  EngineUnavailableError,
} from "./types.ts";

/** Options of {@link createRedisEngine}. */
export interface RedisEngineOptions {
  /** `redis://` or `rediss://`. */
  url: URL;
  /** Key prefix. @default {"wsevent:"} */
  prefix?: string;
  /** Entries kept per stream (approximately). @default {1000} */
  maxLength?: number;
  /** Seconds without a publish after which a path's history expires; 0 keeps it. @default {0} */
  historyTtlSeconds?: number;
  /** Longest wait for one command. @default {5000} */
  commandTimeoutMs?: number;
  /** Where connection changes are logged. */
  log?: Logger;
}

const DECODER = new TextDecoder();
/** A refusal (wrong password, database, ACL) is logged again this often while it lasts. */
const REFUSAL_REPEAT_MS = 60_000;
/** Paths named in warnings of a stream trimmed to another length, at most. */
const MAX_LENGTH_WARNINGS = 100;

/** What to change when Redis refuses the URL (see `isRefusal`). */
function adviceFor(message: string, prefix: string): string {
  if (/^WRONGPASS/.test(message)) {
    return "check the user and password in -engine (WSEVENT_ENGINE), and that the ACL user is on";
  }
  if (/^NOAUTH|without any password configured/.test(message)) {
    return "give the user and password Redis expects in -engine: redis://user:password@host:port";
  }
  if (/^NOPERM/.test(message)) {
    return `the ACL user needs the keys and channels ~${prefix}* &${prefix}* and +@read +@write +@scripting +@pubsub +@connection`;
  }
  return "the database number in -engine (/N) must be below Redis's `databases` (16 by default)";
}

/**
 * Creates the Redis engine. It connects in the background and reports
 * itself disconnected (publishes 503, `/readyz` 503) until it is.
 *
 * @example Usage
 * ```ts ignore
 * import { createHub } from "../../mod.ts";
 * import { createRedisEngine } from "./redis.ts";
 * const engine = createRedisEngine({ url: new URL("redis://127.0.0.1:6379") });
 * const topic = createHub().addTopic("events", "unused");
 * engine.open(topic);
 * console.log(await engine.append(topic, "hello")); // e.g. "mi5x0k2a1b-0"
 * ```
 *
 * @param options Where Redis is and how much history to keep.
 * @returns The engine.
 */
export function createRedisEngine(options: RedisEngineOptions): Engine {
  const prefix = options.prefix ?? "wsevent:";
  const maxLength = String(options.maxLength ?? 1000);
  const ttl = String(options.historyTtlSeconds ?? 0);
  const shown = redactUrl(options.url);
  const why = (error: unknown): string =>
    redactSecretsIn(
      error instanceof Error ? error.message : String(error),
      options.url,
    );
  const readers = new Map<string, Reader>();
  /** Paths opened before the first connection, not yet placed in their log. */
  const starting = new Set<Reader>();
  let everReady = false;
  const byChannel = new Map<string, Reader>();
  const counters = { reconnects: 0, publishErrors: 0 };
  let sha: string | undefined;
  // A fresh epoch, and each event's nonce: one random base per process and
  // a counter, unique like createEpoch() itself, without drawing random
  // bytes for every append.
  const base = createEpoch();
  let minted = 0;
  const fresh = (): string => base + (minted++).toString(36);
  let down = true;
  /** An outage was logged; cleared once connected again. */
  let reported = false;
  /** Why the engine is not ready (redacted), for `/readyz`. */
  let problem: string | undefined;
  let refusalLoggedAt = -Infinity;
  let refusalLogged = "";
  /**
   * Redis refuses the URL's password, user, database or the ACL's
   * permissions: no retry mends that, so it is an error, named with
   * what to change, and logged again while it lasts (the client tries
   * again every few seconds meanwhile, and the instance stays unready).
   */
  const refused = (cause: string): void => {
    const detail = redactSecretsIn(cause, options.url);
    problem = `Redis refuses ${shown}: ${detail}`;
    // Once a minute per kind (WRONGPASS, NOPERM, ...): the wording of one
    // kind varies with the command refused.
    const kind = /^\S+/.exec(cause)?.[0] ?? "";
    const now = Date.now();
    if (kind === refusalLogged && now - refusalLoggedAt < REFUSAL_REPEAT_MS) {
      return;
    }
    refusalLogged = kind;
    refusalLoggedAt = now;
    options.log?.error(
      `engine: Redis refuses ${shown}: ${detail} (${
        adviceFor(cause, prefix)
      }); not ready until that is fixed (trying again every few seconds)`,
    );
  };
  /** A command's failure: a refusal is reported (then thrown on). */
  const noting = (error: unknown): never => {
    const message = error instanceof Error ? error.message : String(error);
    if (isRefusal(message)) refused(message);
    throw error;
  };
  /** A connection's failure, redacted, with a hint where the cause is likely. */
  const describe = (cause: string): string => {
    // A TLS handshake with a plain Redis gets no answer at all; a TLS
    // Redis drops a connection that speaks plain text.
    const hint = everReady
      ? ""
      : options.url.protocol === "rediss:" && /timeout/i.test(cause)
      ? " (rediss:// speaks TLS: is that port a TLS one?)"
      : options.url.protocol === "redis:" &&
          /ECONNRESET|closed unexpectedly/i.test(cause)
      ? " (redis:// is plain text: if that port speaks TLS, use rediss://)"
      : "";
    return redactSecretsIn(cause, options.url) + hint;
  };
  /** Meta keys whose stream another instance trims to another length. */
  const lengthWarned = new Set<string>();
  const link = connectRedis({
    url: options.url,
    commandTimeoutMs: options.commandTimeoutMs ?? 5000,
    onReady() {
      if (!link.ready) return;
      down = false;
      everReady = true;
      reported = false;
      problem = undefined;
      refusalLogged = "";
      options.log?.info(`engine connected to ${shown}`);
      loadScript();
      // Subscriptions are renewed by the client; once in force, read what
      // was missed meanwhile.
      link.settle().then(() => {
        for (const reader of readers.values()) reader.sync();
      }, () => {});
    },
    onLost(cause) {
      const detail = describe(cause);
      const warned = reported;
      reported = true;
      if (isRefusal(cause)) {
        // Logged as an error by refused(), from onError.
        if (!down) counters.reconnects++;
        down = true;
        return;
      }
      problem = `cannot reach ${shown}: ${detail}`;
      if (!down) {
        down = true;
        counters.reconnects++;
        options.log?.warn(
          `engine lost ${shown}: ${detail}; reconnecting with backoff`,
        );
      } else if (!warned) {
        options.log?.warn(
          `engine cannot reach ${shown}: ${detail}; retrying with backoff`,
        );
      }
    },
    onError(cause) {
      if (isRefusal(cause)) refused(cause);
      else problem = `cannot reach ${shown}: ${describe(cause)}`;
    },
    onMessage(channel, message) {
      byChannel.get(channel)?.onLive(message);
    },
  });
  const loadScript = (): void => {
    link.command(["SCRIPT", "LOAD", APPEND_SCRIPT]).then(
      (reply) => (sha = DECODER.decode(reply as Uint8Array)),
      () => {},
    );
  };
  const store: Store = {
    link,
    stats: { lag: 0 },
    async read(keys, start, max) {
      const events: WireEvent[] = [];
      let from = start;
      while (events.length < max) {
        const page = parseRange(
          await link.command([
            "XRANGE",
            keys.log,
            from,
            "+",
            "COUNT",
            String(PAGE),
          ]).catch(noting),
        );
        events.push(...page);
        if (page.length < PAGE) break;
        from = entryIdOf(page[page.length - 1].id.seq + 1);
      }
      return events;
    },
    async bump(keys, epoch) {
      await link.command([
        "EVAL",
        BUMP_SCRIPT,
        "1",
        keys.meta,
        epoch,
        createEpoch(),
      ]).catch(noting);
    },
    async head(keys) {
      const reply = await link.command([
        "HMGET",
        keys.meta,
        "epoch",
        "seq",
        "len",
      ]).catch(noting);
      const [epoch, seq, len] = reply as (Uint8Array | null)[];
      if (len instanceof Uint8Array) checkLength(keys, DECODER.decode(len));
      const next = seq instanceof Uint8Array ? Number(DECODER.decode(seq)) : 0;
      return {
        epoch: epoch instanceof Uint8Array ? DECODER.decode(epoch) : null,
        next: Number.isSafeInteger(next) ? next : 0,
      };
    },
  };
  /**
   * Each append trims the stream to its own instance's `--buffer`: warn
   * (once per path) when the last one to append here had another.
   */
  const checkLength = (keys: PathKeys, len: string): void => {
    if (len === maxLength || lengthWarned.has(keys.meta)) return;
    if (lengthWarned.size >= MAX_LENGTH_WARNINGS) return;
    lengthWarned.add(keys.meta);
    options.log?.warn(
      `engine: ${keys.log} was last trimmed to ${len} events by an instance with -buffer ${len}, this one has -buffer ${maxLength}: each publish trims the stream to its publisher's -buffer, so give every instance the same -buffer`,
    );
  };
  const unavailable = (
    why: string,
    cause?: unknown,
  ): EngineUnavailableError => {
    counters.publishErrors++;
    return new EngineUnavailableError(
      `Cannot publish: the engine's Redis (${shown}) ${why}`,
      { cause },
    );
  };
  const append = async (topic: Topic, data: EventData): Promise<string> => {
    const reader = readers.get(topic.path);
    if (reader === undefined) {
      throw new RangeError(`Cannot publish to /${topic.path}: not open`);
    }
    // The Pub/Sub connection is not needed to store: the readers get what
    // it missed from the stream once it is back.
    if (!link.writable) throw unavailable("is not connected");
    const keys = reader.keys;
    const nonce = fresh();
    const args = [
      data,
      kindOf(data),
      nonce,
      maxLength,
      ttl,
      keys.live,
      String(Date.now()),
    ];
    let reply: unknown;
    // The hub holds what reaches the topic while this is unanswered.
    topic.appendSent();
    try {
      reply = sha === undefined
        ? await link.command([
          "EVAL",
          APPEND_SCRIPT,
          "2",
          keys.meta,
          keys.log,
          ...args,
        ])
        : await link.command([
          "EVALSHA",
          sha,
          "2",
          keys.meta,
          keys.log,
          ...args,
        ])
          .catch((error: Error) => {
            // The script cache was flushed (a restarted Redis): send it whole.
            if (!String(error?.message).startsWith("NOSCRIPT")) throw error;
            loadScript();
            return link.command([
              "EVAL",
              APPEND_SCRIPT,
              "2",
              keys.meta,
              keys.log,
              ...args,
            ]);
          });
    } catch (error) {
      topic.appendDone();
      const message = error instanceof Error ? error.message : String(error);
      if (isRefusal(message)) refused(message);
      // Not "did not store": an append sent before the link failed may
      // still be run by Redis (its answer lost); a retry stores it twice.
      throw unavailable(
        `did not confirm that it stored the event: ${why(error)}`,
        error,
      );
    }
    try {
      const [stored, seq] = reply as [Uint8Array, number];
      const epoch = DECODER.decode(stored);
      // Delivered here at once when it is the log's next event; else, and
      // on every other instance, it comes over the live channel.
      if (readers.get(topic.path) === reader) {
        reader.onStored({ epoch, seq }, data, nonce);
      }
      return `${epoch}-${seq}`;
    } finally {
      topic.appendDone();
    }
  };
  const status: EngineStatus = {
    // Ready once the paths served from the start are subscribed and know
    // where their logs stand: before that, an event published could miss
    // this instance. A topic opened later on demand does not make an
    // instance unready.
    get connected() {
      if (!link.ready) return false;
      for (const reader of starting) {
        if (!reader.synced && !reader.closed) return false;
        starting.delete(reader);
      }
      return true;
    },
    get reconnects() {
      return counters.reconnects;
    },
    get publishErrors() {
      return counters.publishErrors;
    },
    get readLagSeconds() {
      return store.stats.lag;
    },
    get problem() {
      return this.connected ? undefined : problem;
    },
  };
  return {
    name: "redis",
    status,
    open(topic) {
      if (readers.has(topic.path)) return;
      const reader = new Reader(topic, pathKeys(prefix, topic.path), store);
      readers.set(topic.path, reader);
      byChannel.set(reader.keys.live, reader);
      if (!everReady) starting.add(reader);
      topic.useHistory(reader);
      if (link.ready) reader.anchor();
      link.subscribe(reader.keys.live).then(() => reader.sync(), () => {});
    },
    release(topic) {
      const reader = readers.get(topic.path);
      if (reader === undefined) return;
      readers.delete(topic.path);
      byChannel.delete(reader.keys.live);
      reader.closed = true;
      topic.useHistory(undefined);
      link.unsubscribe(reader.keys.live).catch(() => {});
    },
    opened: (topic) => readers.get(topic.path)?.placing,
    append,
    close: () => link.close(),
  };
}
