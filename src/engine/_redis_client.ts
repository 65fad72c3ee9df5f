/**
 * The Redis client behind the engine, reduced to what the engine uses: a
 * command connection and a Pub/Sub connection, each reconnecting with
 * backoff, and each given up for a new one when it stops answering (see
 * {@link connectRedis}). This file is the only one that knows the client library
 * (node-redis, the client Redis maintains; it runs on Deno, Bun and Node),
 * so another client can take its place behind {@link RedisLink}.
 *
 * @module
 */

import { Buffer } from "node:buffer";
import { createClient, RESP_TYPES } from "redis";

/** An argument of a command: text, or bytes sent as they are. */
export type RedisArg = string | Uint8Array;

/** Options of {@link connectRedis}. */
export interface RedisLinkOptions {
  /** `redis://` or `rediss://`, with user, password and db. */
  url: URL;
  /** Longest wait for one command's answer. */
  commandTimeoutMs: number;
  /** A connection became ready (both are, when `link.ready`). */
  onReady(): void;
  /**
   * A ready connection was lost, or a connection failed before it was
   * ever ready (once per outage); it reconnects by itself.
   */
  onLost(cause: string): void;
  /** Each failed attempt to connect (with its cause) while not ready. */
  onError?(cause: string): void;
  /** A live message on a subscribed channel. */
  onMessage(channel: string, message: Uint8Array): void;
}

/** The two connections. */
export interface RedisLink {
  /** True while both connections are ready. */
  readonly ready: boolean;
  /** True while the command connection is ready (appends can be stored). */
  readonly writable: boolean;
  /**
   * Sends a command on the command connection. Fails at once while it is
   * not connected (no offline queue: an append is never held and resent).
   *
   * @param args The command and its arguments.
   * @returns The reply, bulk strings as bytes.
   */
  command(args: readonly RedisArg[]): Promise<unknown>;
  /** Subscribes to a channel (kept across reconnects). */
  subscribe(channel: string): Promise<void>;
  /** Unsubscribes from a channel. */
  unsubscribe(channel: string): Promise<void>;
  /** A round trip on the Pub/Sub connection: every subscription sent before it is in force. */
  settle(): Promise<void>;
  /** Closes both connections. */
  close(): Promise<void>;
}

const BYTES = { [RESP_TYPES.BLOB_STRING]: Buffer };
/**
 * Bulk strings as bytes. `timeout: 0` turns off node-redis' default
 * per-command timeout (5 s), which builds an `AbortSignal.timeout()` for
 * every command (about 2% of the CPU of a publish in a profile) and stops
 * once the command is written anyway; the watchdog below does the work.
 */
const OPTIONS = { typeMapping: BYTES, timeout: 0 };
const MAX_DELAY_MS = 2000;

/**
 * The connections' names at Redis (`CLIENT SETNAME`, sent in the
 * handshake's `HELLO`): `CLIENT LIST` tells an instance's two apart.
 */
export const COMMAND_CONNECTION_NAME = "wsevent-cmd";
export const PUBSUB_CONNECTION_NAME = "wsevent-pubsub";

/** Wait between attempts while Redis refuses the URL (see {@link isRefusal}). */
export const REFUSED_RETRY_MS = 5000;

/**
 * True for an error that no retry will mend until someone changes the
 * URL or Redis's configuration: a wrong password or user (`WRONGPASS`), a
 * password missing (`NOAUTH`), an ACL without a permission the engine
 * needs (`NOPERM`), a database number beyond Redis's `databases`.
 *
 * @param message The error's message.
 * @returns Whether Redis refused what the URL asks for.
 */
export function isRefusal(message: string): boolean {
  return /^(WRONGPASS|NOAUTH|NOPERM)\b|DB index is out of range|invalid DB index|without any password configured/
    .test(message);
}

/**
 * Exponential backoff with jitter: 50 ms, 100 ms, ... up to 2 s; about
 * {@link REFUSED_RETRY_MS} while Redis refuses the URL, so a wrong password
 * does not open connections as fast as a Redis restart is waited for.
 */
function backoff(retries: number, cause?: unknown): number {
  const delay = isRefusal(String((cause as Error | undefined)?.message))
    ? REFUSED_RETRY_MS
    : Math.min(MAX_DELAY_MS, 50 * 2 ** Math.min(retries, 6));
  return Math.round(delay / 2 + Math.random() * delay / 2);
}

function toBuffer(arg: RedisArg): string | Buffer {
  if (typeof arg === "string") return arg;
  return Buffer.from(arg.buffer, arg.byteOffset, arg.byteLength);
}

/**
 * Opens the two connections; they connect in the background and keep
 * reconnecting until closed.
 *
 * A connection that goes silent (a partition, a firewall or NAT that
 * dropped it without a word, a hung Redis) is noticed and replaced, each
 * with its own watch, in bounds of `commandTimeoutMs` (T):
 * - commands: no reply for T while one waits fails every waiting command
 *   and makes the link not ready; a late reply makes it ready again, and
 *   after a further T without one the connection is destroyed and a new
 *   one connected. Idle for T, it is asked a `PING`, so that a silent
 *   connection is noticed without appends.
 * - Pub/Sub: nothing received for T (no message, no reply) sends it a
 *   `PING` (allowed while subscribed); no answer within T makes the link
 *   not ready, destroys it and connects a new one, which subscribes again
 *   (then `onReady()`: the engine reads what it missed from the streams).
 *
 * @param options The URL and the callbacks.
 * @returns The link.
 */
export function connectRedis(options: RedisLinkOptions): RedisLink {
  const timeout = options.commandTimeoutMs;
  const socket = { connectTimeout: 2000, reconnectStrategy: backoff };
  // No Redis Enterprise maintenance notices: their handshake looks the
  // URL's host up in DNS with its brackets, so redis://[::1]:6379 never
  // connected (ENOTFOUND [::1]).
  const maintNotifications = "disabled";
  const connect = (offline: boolean) =>
    createClient({
      url: options.url.href,
      name: offline ? PUBSUB_CONNECTION_NAME : COMMAND_CONNECTION_NAME,
      socket,
      disableOfflineQueue: !offline,
      maintNotifications,
    });
  // No offline queue for commands: an append is never held and resent.
  let commands = connect(false);
  // The Pub/Sub connection queues its SUBSCRIBEs while offline; the client
  // subscribes again to every channel after a reconnect.
  let live = connect(true);
  /** Channels subscribed to, or being. */
  const channels = new Set<string>();
  let closed = false;
  // node-redis' own per-command `timeout` stops once a command is written:
  // a command sent to a Redis that hangs (paused, or the network drops
  // packets) would wait for ever. Replies come in order, so when none came
  // for commandTimeoutMs while commands wait, every waiting command fails
  // and the link is not ready until Redis answers again (a late reply), or
  // until the connection, silent for one more timeout, is replaced.
  const pending = new Set<(error: Error) => void>();
  let answered = 0;
  let stalled = false;
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  /** Replaces a stalled command connection that stays silent. */
  let giveUp: ReturnType<typeof setTimeout> | undefined;
  const check = (): void => {
    watchdog = undefined;
    if (pending.size === 0 || closed) return;
    const idle = Date.now() - answered;
    if (idle < timeout) {
      watchdog = setTimeout(check, timeout - idle);
      return;
    }
    const error = new Error(`Redis did not answer within ${timeout} ms`);
    // Each waiting append is answered 503 now, for good: a reply that
    // comes later, or the connection's end, finds it gone from `pending`.
    for (const reject of pending) reject(error);
    pending.clear();
    if (!stalled) {
      stalled = true;
      options.onLost(error.message);
      const client = commands;
      clearTimeout(giveUp);
      giveUp = setTimeout(() => {
        if (stalled && client === commands) {
          replace(
            client,
            `Redis did not answer on the command connection for ${
              2 * timeout
            } ms; connecting a new one`,
          );
        }
      }, timeout);
    }
  };
  /** When the Pub/Sub connection last received anything. */
  let heard = Date.now();
  const listener = (message: Buffer, channel: Buffer): void => {
    heard = Date.now();
    options.onMessage(String(channel), message);
  };
  const watch = (client: typeof commands): void => {
    let reported = false;
    // node-redis' connectTimeout ends once TCP connects: a server (or a
    // proxy, a balancer) that accepts and never answers the handshake
    // would hold the connection for ever, and never be tried again.
    let handshake: ReturnType<typeof setTimeout> | undefined;
    client.on("connect", () => {
      clearTimeout(handshake);
      handshake = setTimeout(
        () =>
          replace(
            client,
            `Redis did not answer the handshake within ${timeout} ms`,
          ),
        timeout,
      );
    });
    client.on("ready", () => {
      clearTimeout(handshake);
      reported = false;
      if (client === commands) stalled = false;
      else {
        heard = Date.now();
        // A SUBSCRIBE cut off before its answer is forgotten by node-redis
        // (and not renewed after a reconnect): ask again for every
        // channel; those in force cost nothing.
        if (channels.size > 0) {
          client.subscribe([...channels], listener, true).catch(() => {});
        }
      }
      options.onReady();
    });
    const lost = (cause: string): void => {
      if (reported || closed) return;
      reported = true;
      options.onLost(cause);
    };
    client.on("error", (error: Error) => {
      // The attempt failed and node-redis tries again after its backoff.
      clearTimeout(handshake);
      if (!closed && !client.isReady) options.onError?.(error.message);
      lost(error.message);
    });
    client.on("reconnecting", () => lost("reconnecting"));
    client.on("end", () => {
      clearTimeout(handshake);
      lost("connection closed");
    });
    // connect() retries by itself; its failure is reported through "error".
    client.connect().catch(() => {});
  };
  /**
   * Gives up a silent connection (destroyed: what it still had to send or
   * receive is dropped with it) and connects a new one in its place.
   */
  const replace = (client: typeof commands, cause: string): void => {
    if (closed) return;
    const fresh = connect(client === live);
    if (client === commands) {
      commands = fresh;
      clearTimeout(giveUp);
    } else live = fresh;
    client.removeAllListeners();
    client.on("error", () => {});
    client.destroy();
    options.onLost(cause);
    watch(fresh);
  };
  watch(commands);
  watch(live);
  // The Pub/Sub connection only receives: one that went silent (a NAT or
  // firewall dropped it, the command connection still fine) would leave
  // the instance ready with no live events for ever. A PING once nothing
  // came for the timeout; no answer within the timeout replaces it.
  let listening: ReturnType<typeof setTimeout> | undefined;
  const listen = (): void => {
    listening = undefined;
    if (closed) return;
    const idle = Date.now() - heard;
    if (!live.isReady || idle < timeout) {
      listening = setTimeout(listen, live.isReady ? timeout - idle : timeout);
      return;
    }
    const client = live;
    const silent = setTimeout(() => {
      if (client === live) {
        replace(
          client,
          `Redis did not answer a PING on the Pub/Sub connection within ${timeout} ms; connecting a new one`,
        );
      }
      listen();
    }, timeout);
    client.ping().then(() => {
      if (client !== live || closed) return;
      heard = Date.now();
      clearTimeout(silent);
      listen();
    }, () => {
      // Lost meanwhile: node-redis reconnects it, or it was replaced.
      if (client !== live || closed) return;
      clearTimeout(silent);
      listening = setTimeout(listen, timeout);
    });
    listening = silent;
  };
  listen();
  // The watchdog needs a command waiting: an instance that sends Redis
  // nothing (subscribers only) would stay ready through a partition. A
  // PING once the link was idle for the timeout (none while it is busy).
  const probe = setInterval(() => {
    if (
      pending.size === 0 && commands.isReady && !stalled &&
      Date.now() - answered >= timeout
    ) link.command(["PING"]).catch(() => {});
  }, timeout);
  const link: RedisLink = {
    get ready() {
      return commands.isReady && live.isReady && !stalled;
    },
    get writable() {
      return commands.isReady && !stalled;
    },
    command: (args) =>
      new Promise((resolve, reject) => {
        if (pending.size === 0) answered = Date.now();
        pending.add(reject);
        const client = commands;
        const settle = (): boolean => {
          // Only the connection in use speaks for the link: one replaced
          // ends its commands with errors that are no answer from Redis.
          if (client === commands) {
            answered = Date.now();
            if (stalled) {
              stalled = false;
              clearTimeout(giveUp);
              options.onReady();
            }
          }
          return pending.delete(reject);
        };
        client.sendCommand(args.map(toBuffer), OPTIONS)
          .then((reply) => {
            if (settle()) resolve(reply);
          }, (error) => {
            if (settle()) reject(error);
          });
        watchdog ??= setTimeout(check, timeout);
      }),
    subscribe: (channel) => {
      channels.add(channel);
      return live.subscribe(channel, listener, true);
    },
    unsubscribe: (channel) => {
      channels.delete(channel);
      return live.unsubscribe(channel, listener, true);
    },
    settle: async () => {
      await live.ping();
    },
    async close() {
      closed = true;
      clearTimeout(watchdog);
      clearTimeout(giveUp);
      clearTimeout(listening);
      clearInterval(probe);
      for (const client of [commands, live]) {
        if (client.isReady) await client.close().catch(() => {});
        else client.destroy();
      }
    },
  };
  return link;
}
