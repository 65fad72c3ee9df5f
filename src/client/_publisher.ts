/**
 * `publisher()`: many publishes over one WebSocket (`?publish`), each
 * answered in order with its id. Web APIs only.
 *
 * @module
 */

import { PublishError, type PublishResult } from "./_publish.ts";

/** Options of `publisher()`. */
export interface PublisherOptions {
  /**
   * Sent as `?token=` (a browser's WebSocket cannot send headers).
   * @default {undefined}
   */
  token?: string;
  /**
   * Most publishes sent and not yet answered; more wait here, in order
   * (the server closes a connection with 1008 past 1024). Whatever it is,
   * at most 16 MiB of them are sent unanswered (the server's other bound).
   * @default {256}
   */
  maxInFlight?: number;
  /** Closes the publisher, as `close()` without waiting. @default {undefined} */
  signal?: AbortSignal;
}

/** A WebSocket publisher connection. */
export interface Publisher {
  /**
   * Publishes one event: resolves to its id once the server stored it.
   *
   * @throws {PublishError} The server refused this event (with `status`
   *   and `code`, as for a POST); the connection stays open.
   * @throws {PublishUnconfirmedError} The connection dropped before the
   *   answer came: the event may or may not have been stored.
   */
  publish(data: string | Uint8Array): Promise<PublishResult>;
  /** Publishes sent or waiting, not yet answered. */
  readonly pending: number;
  /**
   * Waits for the answers of what was published, then closes the
   * connection; later publishes reject.
   */
  close(): Promise<void>;
}

/**
 * A publish sent over a connection that dropped before its answer: the
 * server may or may not have stored the event, and it is not resent (that
 * could store it twice).
 *
 * @example Usage
 * ```ts ignore
 * import { publisher, PublishUnconfirmedError } from "./client.ts";
 * const events = publisher("ws://localhost:8080/events");
 * try {
 *   await events.publish("hello");
 * } catch (error) {
 *   if (error instanceof PublishUnconfirmedError) console.log(error.message);
 * }
 * ```
 */
export class PublishUnconfirmedError extends Error {
  /** Stable code: `unconfirmed`. */
  readonly code = "unconfirmed";
  /**
   * Creates the error; its message says the event may or may not have
   * been stored.
   *
   * @param why What happened to the connection.
   */
  constructor(why: string) {
    super(
      `Cannot confirm the publish: ${why}; the event may or may not have been stored`,
    );
    this.name = "PublishUnconfirmedError";
  }
}

interface Waiting {
  data: string | Uint8Array;
  resolve(result: PublishResult): void;
  reject(error: Error): void;
}

const DEFAULT_IN_FLIGHT = 256;

/** A server-side bound minus room: what the publisher sends at most. */
const MAX_IN_FLIGHT = 1024;

/**
 * The server's other bound: the size of the messages sent and not yet
 * answered (as it counts them: a string's length, bytes otherwise); past
 * it only one message at a time is sent.
 */
const MAX_IN_FLIGHT_SIZE = 16 << 20;

function sizeOf(data: string | Uint8Array): number {
  return typeof data === "string" ? data.length : data.byteLength;
}

/**
 * Opens a publisher connection to `url` (its `?publish` WebSocket).
 *
 * @param url The stream's ws(s):// URL (http(s):// becomes ws(s)://).
 * @param options See {@link PublisherOptions}.
 * @returns The publisher.
 */
export function openPublisher(
  url: URL,
  options: PublisherOptions,
): Publisher {
  const max = options.maxInFlight ?? DEFAULT_IN_FLIGHT;
  if (!Number.isInteger(max) || max < 1 || max > MAX_IN_FLIGHT) {
    throw new RangeError(
      `Cannot open a publisher: maxInFlight must be an integer from 1 to ${MAX_IN_FLIGHT}, received ${max}`,
    );
  }
  const target = new URL(url);
  target.protocol = target.protocol.replace(/^http/, "ws");
  target.searchParams.set("publish", "");
  if (options.token) target.searchParams.set("token", options.token);
  return new WsPublisher(target.href, max, options.signal);
}

class WsPublisher implements Publisher {
  #url: string;
  #max: number;
  #socket: WebSocket | undefined;
  #open = false;
  #sent: Waiting[] = [];
  #sentSize = 0;
  #queue: Waiting[] = [];
  #closed: string | undefined;
  #idle: (() => void)[] = [];

  constructor(url: string, max: number, signal: AbortSignal | undefined) {
    this.#url = url;
    this.#max = max;
    signal?.addEventListener(
      "abort",
      () => this.#shut("the publisher was aborted"),
      {
        once: true,
      },
    );
    if (signal?.aborted) this.#closed = "the publisher was aborted";
    else this.#connect();
  }

  get pending(): number {
    return this.#sent.length + this.#queue.length;
  }

  publish(data: string | Uint8Array): Promise<PublishResult> {
    if (this.#closed !== undefined) {
      return Promise.reject(
        new TypeError(
          `Cannot publish: the publisher is closed (${this.#closed})`,
        ),
      );
    }
    if (typeof data !== "string" && !(data instanceof Uint8Array)) {
      return Promise.reject(
        new TypeError("Cannot publish: data must be a string or a Uint8Array"),
      );
    }
    return new Promise((resolve, reject) => {
      this.#queue.push({ data, resolve, reject });
      if (this.#socket === undefined) this.#connect();
      else this.#pump();
    });
  }

  close(): Promise<void> {
    if (this.#closed === undefined) this.#closed = "close() was called";
    if (this.pending === 0) {
      this.#socket?.close(1000, "done");
      return Promise.resolve();
    }
    return new Promise((done) => this.#idle.push(done));
  }

  #connect(): void {
    const socket = new WebSocket(this.#url);
    socket.binaryType = "arraybuffer";
    this.#socket = socket;
    this.#open = false;
    socket.onopen = () => {
      this.#open = true;
      this.#pump();
    };
    socket.onmessage = (event) => this.#onAnswer(event.data);
    socket.onclose = (event) => {
      if (this.#socket !== socket) return;
      const why = this.#open
        ? `the connection closed (${event.code}${
          event.reason ? ` ${event.reason}` : ""
        })`
        : "the connection could not be opened (refused, or no server at the URL)";
      this.#dropped(why);
    };
    // A refused handshake: some clients (Node 22's) report only an error,
    // with no close event after it.
    socket.onerror = () => {
      if (this.#socket !== socket || this.#open) return;
      this.#dropped(
        "the connection could not be opened (refused, or no server at the URL)",
      );
    };
  }

  #pump(): void {
    const socket = this.#socket;
    if (socket === undefined || !this.#open) return;
    while (this.#queue.length > 0 && this.#sent.length < this.#max) {
      const next = this.#queue[0];
      const size = sizeOf(next.data);
      if (
        this.#sent.length > 0 && this.#sentSize + size > MAX_IN_FLIGHT_SIZE
      ) break;
      this.#queue.shift();
      this.#sent.push(next);
      this.#sentSize += size;
      socket.send(next.data as string);
    }
  }

  #onAnswer(data: unknown): void {
    const head = this.#sent.shift();
    if (head !== undefined) this.#sentSize -= sizeOf(head.data);
    let answer: {
      id?: unknown;
      error?: unknown;
      code?: unknown;
      status?: unknown;
    };
    try {
      answer = typeof data === "string" ? JSON.parse(data) ?? {} : {};
    } catch {
      answer = {};
    }
    if (head === undefined) {
      this.#socket?.close(1002, "unexpected answer");
      return;
    }
    if (typeof answer.id === "string") head.resolve({ id: answer.id });
    else if (typeof answer.error === "string") {
      head.reject(
        new PublishError(
          typeof answer.status === "number" ? answer.status : 0,
          typeof answer.code === "string" ? answer.code : "",
          answer.error,
        ),
      );
    } else {
      head.reject(
        new PublishUnconfirmedError("the server's answer was not understood"),
      );
      this.#socket?.close(1002, "unexpected answer");
      return;
    }
    this.#pump();
    this.#settled();
  }

  // The connection is gone: what was sent is unconfirmed; what was not
  // yet sent waits for the next connection (opened by the next publish),
  // unless the publisher is closed.
  #dropped(why: string): void {
    this.#socket = undefined;
    this.#open = false;
    const sent = this.#sent;
    this.#sent = [];
    this.#sentSize = 0;
    for (const each of sent) each.reject(new PublishUnconfirmedError(why));
    if (this.#closed !== undefined || sent.length === 0) {
      // Nothing was sent on it (refused at the handshake), or closing:
      // the waiting ones fail too, never sent.
      const queued = this.#queue;
      this.#queue = [];
      for (const each of queued) {
        each.reject(
          new TypeError(`Cannot publish: ${why}; the event was not sent`),
        );
      }
    } else if (this.#queue.length > 0) {
      this.#connect();
    }
    this.#settled();
  }

  #shut(why: string): void {
    this.#closed = why;
    const socket = this.#socket;
    if (socket !== undefined) {
      socket.close(1000, "done");
      this.#dropped(why);
    }
  }

  #settled(): void {
    if (this.pending > 0 || this.#closed === undefined) return;
    this.#socket?.close(1000, "done");
    for (const done of this.#idle.splice(0)) done();
  }
}
