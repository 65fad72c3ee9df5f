/**
 * The Redis client behind the engine, reduced to what the engine uses: a
 * command connection and a Pub/Sub connection, each reconnecting with
 * backoff. This file is the only one that knows the client library
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
 * @param options The URL and the callbacks.
 * @returns The link.
 */
export function connectRedis(options: RedisLinkOptions): RedisLink {
  const socket = { connectTimeout: 2000, reconnectStrategy: backoff };
  // No Redis Enterprise maintenance notices: their handshake looks the
  // URL's host up in DNS with its brackets, so redis://[::1]:6379 never
  // connected (ENOTFOUND [::1]).
  const maintNotifications = "disabled";
  const connect = (offline: boolean) =>
    createClient({
      url: options.url.href,
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
  // and the link is not ready until Redis answers again (a late reply) or
  // the connection is made again.
  const pending = new Set<(error: Error) => void>();
  let answered = 0;
  let stalled = false;
  let watchdog: ReturnType<typeof setTimeout> | undefined;
  const check = (): void => {
    watchdog = undefined;
    if (pending.size === 0 || closed) return;
    const idle = Date.now() - answered;
    if (idle < options.commandTimeoutMs) {
      watchdog = setTimeout(check, options.commandTimeoutMs - idle);
      return;
    }
    const error = new Error(
      `Redis did not answer within ${options.commandTimeoutMs} ms`,
    );
    for (const reject of pending) reject(error);
    pending.clear();
    if (!stalled) {
      stalled = true;
      options.onLost(error.message);
    }
  };
  const listener = (message: Buffer, channel: Buffer): void =>
    options.onMessage(String(channel), message);
  const watch = (client: typeof commands): void => {
    let reported = false;
    // node-redis' connectTimeout ends once TCP connects: a server (or a
    // proxy, a balancer) that accepts and never answers the handshake
    // would hold the connection for ever, and never be tried again.
    let handshake: ReturnType<typeof setTimeout> | undefined;
    client.on("connect", () => {
      clearTimeout(handshake);
      handshake = setTimeout(
        () => replace(client),
        options.commandTimeoutMs,
      );
    });
    client.on("ready", () => {
      clearTimeout(handshake);
      reported = false;
      if (client === commands) stalled = false;
      // A SUBSCRIBE cut off before its answer is forgotten by node-redis
      // (and not renewed after a reconnect): ask again for every channel;
      // those in force cost nothing.
      else if (channels.size > 0) {
        client.subscribe([...channels], listener, true).catch(() => {});
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
  /** Gives up a connection whose handshake got no answer, for a new one. */
  const replace = (client: typeof commands): void => {
    if (closed) return;
    const fresh = connect(client === live);
    if (client === commands) commands = fresh;
    else live = fresh;
    client.removeAllListeners();
    client.on("error", () => {});
    client.destroy();
    options.onLost(
      `Redis did not answer the handshake within ${options.commandTimeoutMs} ms`,
    );
    watch(fresh);
  };
  watch(commands);
  watch(live);
  // The watchdog needs a command waiting: an instance that sends Redis
  // nothing (subscribers only) would stay ready through a partition. A
  // PING once the link was idle for the timeout (none while it is busy).
  const probe = setInterval(() => {
    if (
      pending.size === 0 && commands.isReady && !stalled &&
      Date.now() - answered >= options.commandTimeoutMs
    ) link.command(["PING"]).catch(() => {});
  }, options.commandTimeoutMs);
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
        const settle = (): boolean => {
          answered = Date.now();
          if (stalled) {
            stalled = false;
            options.onReady();
          }
          return pending.delete(reject);
        };
        commands.sendCommand(args.map(toBuffer), OPTIONS)
          .then((reply) => {
            if (settle()) resolve(reply);
          }, (error) => {
            if (settle()) reject(error);
          });
        watchdog ??= setTimeout(check, options.commandTimeoutMs);
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
      clearInterval(probe);
      for (const client of [commands, live]) {
        if (client.isReady) await client.close().catch(() => {});
        else client.destroy();
      }
    },
  };
  return link;
}
