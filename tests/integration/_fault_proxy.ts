/**
 * A small TCP fault proxy for the integration tests, in the manner of
 * Toxiproxy: it listens on 127.0.0.1, forwards every connection to one
 * target on 127.0.0.1, and applies a fault that can be switched while
 * traffic flows. Kernel shaping (`tc qdisc ... netem`) is not available
 * on our machines, so faults are made here, per chunk:
 *
 * - `latency`: each chunk waits `ms` ± `jitterMs` (order kept).
 * - `bandwidth`: at most `bytesPerSecond` each way per connection.
 * - `stall`: a partition. Nothing is forwarded and nothing is closed
 *   (no FIN, no RST), new connections included; reading stops so TCP
 *   backpressure bounds what waits. Healing (any other fault) delivers
 *   what waited and the closes that waited, as TCP would retransmit.
 * - `reset`: each connection is cut with an RST on both sides after a
 *   random 1..`maxBytes` more bytes downstream, which lands mid-frame.
 * - `slice`: bytes leave in segments of 1..`maxSegment` bytes, one write
 *   (and with no Nagle, one segment) each.
 * - `blackhole`: new connections are accepted and never answered (their
 *   bytes are read and dropped; nothing reaches the target), even after
 *   the fault is switched off; those already open carry on.
 *
 * {@link FaultProxy.cut} resets every open connection at once.
 *
 * A fault applies to every connection, or to those a {@link Selection}
 * picks: the ones whose first bytes from the client contain a string (a
 * Redis client's name, sent in its handshake), and/or only those open when
 * the fault is set (a NAT or firewall that drops one connection: the next
 * one goes through).
 *
 * @module
 */

import type { Buffer } from "node:buffer";
import { connect, createServer, type Server, type Socket } from "node:net";

/** A fault, switchable at any time with {@link FaultProxy.set}. */
export type Fault =
  | { kind: "none" }
  | { kind: "latency"; ms: number; jitterMs: number }
  | { kind: "bandwidth"; bytesPerSecond: number }
  | { kind: "stall" }
  | { kind: "reset"; maxBytes: number }
  | { kind: "slice"; maxSegment: number }
  | { kind: "blackhole" };

/** Which connections a fault applies to (see {@link FaultProxy.set}). */
export interface Selection {
  /**
   * Those whose first {@link GREETING_BYTES} bytes from the client contain
   * this (as latin1 text); a connection that has not sent them yet is not
   * picked until it does.
   */
  match?: string;
  /** Only the connections open now: new ones are not faulted. */
  openOnly?: boolean;
}

/** Bytes from the client kept to match a {@link Selection} against. */
export const GREETING_BYTES = 1024;

/** What the proxy did, for assertions. */
export interface ProxyStats {
  /** Connections accepted. */
  accepted: number;
  /** Connections open now (either side). */
  open: number;
  /** Connections cut by the `reset` fault. */
  resets: number;
  /** Connections accepted into the black hole. */
  blackholed: number;
  /** Largest number of bytes that ever waited in the proxy for one direction. */
  maxQueuedBytes: number;
  /** Writes to either side, and the bytes they carried. */
  writes: number;
  bytes: number;
}

/** A running proxy. */
export interface FaultProxy {
  /** The port it listens on (127.0.0.1). */
  readonly port: number;
  /**
   * Switches the fault; open connections follow at once. With `only`, it
   * applies to the connections picked (the others carry on unfaulted);
   * `blackhole` takes no selection (it acts before a client speaks).
   */
  set(fault: Fault, only?: Selection): void;
  /** The current fault. */
  readonly fault: Fault;
  readonly stats: ProxyStats;
  /** Cuts every open connection now, with an RST each way. */
  cut(): void;
  /** Open connections whose first bytes from the client contain `text`. */
  count(text: string): number;
  /** Stops listening and destroys every connection. */
  close(): Promise<void>;
}

/** Bytes a pipe holds before it stops reading its source. */
const HIGH_WATER_BYTES = 64 * 1024;

/** One direction of a connection: from `source` to `sink`. */
class Pipe {
  queue: Buffer[] = [];
  queued = 0;
  /** A FIN from the source, waiting to be passed on after the queue. */
  ended = false;
  #busy = false;
  #source: Socket;
  #sink: Socket;
  #link: Link;
  readonly downstream: boolean;

  constructor(source: Socket, sink: Socket, link: Link, downstream: boolean) {
    this.#source = source;
    this.#sink = sink;
    this.#link = link;
    this.downstream = downstream;
    source.on("data", (chunk: Buffer) => this.#push(chunk));
    source.on("end", () => {
      this.ended = true;
      this.pump();
    });
  }

  #push(chunk: Buffer): void {
    if (!this.downstream) this.#link.greet(chunk);
    this.queue.push(chunk);
    this.queued += chunk.byteLength;
    const stats = this.#link.proxy.stats;
    stats.maxQueuedBytes = Math.max(stats.maxQueuedBytes, this.queued);
    if (this.queued > HIGH_WATER_BYTES) this.#source.pause();
    this.pump();
  }

  /** Nothing waits here and nothing is on its way. */
  get idle(): boolean {
    return !this.#busy && this.queue.length === 0;
  }

  /** Forwards what waits, one chunk at a time, as the fault says. */
  pump(): void {
    if (this.#busy || this.#link.dead) return;
    this.#busy = true;
    void this.#drain().finally(() => {
      this.#busy = false;
    });
  }

  async #drain(): Promise<void> {
    const link = this.#link;
    while (!link.dead) {
      if (link.fault.kind === "stall") return; // set() pumps again on heal
      const chunk = this.queue.shift();
      if (chunk === undefined) break;
      this.queued -= chunk.byteLength;
      if (this.queued <= HIGH_WATER_BYTES) this.#source.resume();
      await this.#forward(chunk);
    }
    if (this.ended && this.queue.length === 0 && !link.dead) {
      if (link.fault.kind !== "stall") this.#sink.end();
    }
  }

  async #forward(chunk: Buffer): Promise<void> {
    const link = this.#link;
    const fault = link.fault;
    switch (fault.kind) {
      case "latency": {
        const delay = Math.max(
          0,
          fault.ms + (Math.random() * 2 - 1) * fault.jitterMs,
        );
        await sleep(delay);
        return this.#write(chunk);
      }
      case "bandwidth": {
        // In slices of at most a tenth of a second's worth.
        const slice = Math.max(1, Math.floor(fault.bytesPerSecond / 10));
        for (let at = 0; at < chunk.byteLength && !link.dead; at += slice) {
          const part = chunk.subarray(at, at + slice);
          await this.#write(part);
          await sleep(part.byteLength / fault.bytesPerSecond * 1000);
        }
        return;
      }
      case "slice":
        for (let at = 0; at < chunk.byteLength && !link.dead;) {
          const size = 1 + Math.floor(Math.random() * fault.maxSegment);
          await this.#write(chunk.subarray(at, at + size));
          at += size;
          await new Promise((r) => setImmediate(r));
        }
        return;
      case "reset": {
        if (!this.downstream) return this.#write(chunk);
        link.budget ??= 1 + Math.floor(Math.random() * fault.maxBytes);
        if (chunk.byteLength < link.budget) {
          link.budget -= chunk.byteLength;
          return this.#write(chunk);
        }
        // Part of the chunk, then an RST each way: mid-frame.
        await this.#write(chunk.subarray(0, link.budget));
        link.proxy.stats.resets++;
        link.reset();
        return;
      }
      default:
        return this.#write(chunk);
    }
  }

  /** Writes and waits for the sink to take it (backpressure). */
  #write(part: Buffer): Promise<void> {
    if (this.#link.dead || this.#sink.destroyed) return Promise.resolve();
    const stats = this.#link.proxy.stats;
    stats.writes++;
    stats.bytes += part.byteLength;
    if (this.#sink.write(part)) return Promise.resolve();
    return new Promise((resolve) => {
      const done = () => {
        this.#sink.off("drain", done);
        this.#sink.off("close", done);
        resolve();
      };
      this.#sink.once("drain", done);
      this.#sink.once("close", done);
    });
  }
}

/** A proxied connection: the client's socket and the target's. */
class Link {
  dead = false;
  /** Bytes left before a `reset` cuts this link. */
  budget: number | undefined;
  readonly proxy: Proxy;
  readonly client: Socket;
  readonly target: Socket;
  readonly up: Pipe;
  readonly down: Pipe;
  /** A close from either side, waiting out a stall. */
  #closing = false;
  /** The first bytes from the client (latin1), for a {@link Selection}. */
  greeting = "";

  constructor(proxy: Proxy, client: Socket, targetPort: number) {
    this.proxy = proxy;
    this.client = client;
    this.target = connect({ host: "127.0.0.1", port: targetPort });
    for (const socket of [client, this.target]) {
      socket.setNoDelay(true);
      // An error is an RST (what waits is lost, as in TCP); a close
      // without one came after a FIN, which TCP delivers after the bytes
      // before it.
      socket.on("error", () => this.#onClose(true));
      socket.on("close", () => this.#onClose(false));
    }
    this.up = new Pipe(client, this.target, this, false);
    this.down = new Pipe(this.target, client, this, true);
  }

  /** The fault that applies to this connection. */
  get fault(): Fault {
    const { chosen, only } = this.proxy;
    if (chosen !== undefined && !chosen.has(this)) return NONE;
    if (only?.match !== undefined && !this.greeting.includes(only.match)) {
      return NONE;
    }
    return this.proxy.fault;
  }

  /** Keeps the first bytes from the client. */
  greet(chunk: Buffer): void {
    if (this.greeting.length >= GREETING_BYTES) return;
    this.greeting += chunk.subarray(0, GREETING_BYTES - this.greeting.length)
      .toString("latin1");
  }

  #onClose(failed: boolean): void {
    if (this.dead) return;
    this.#closing = true;
    if (this.fault.kind === "stall") return; // closes nothing now
    if (failed) this.destroy();
    else this.#destroyWhenDrained();
  }

  /**
   * Destroys the link once both pipes have forwarded what waits in them
   * (a delayed chunk included), or after 10 s: a close frame that waits
   * out a latency still arrives before the FIN, as it would over TCP.
   */
  #destroyWhenDrained(deadline = Date.now() + 10_000): void {
    if (this.dead) return;
    if ((this.up.idle && this.down.idle) || Date.now() > deadline) {
      this.destroy();
      return;
    }
    setTimeout(() => this.#destroyWhenDrained(deadline), 10);
  }

  /** After a stall: deliver what waited, then a close that waited. */
  heal(): void {
    this.up.pump();
    this.down.pump();
    if (this.#closing) this.#destroyWhenDrained();
  }

  reset(): void {
    if (this.dead) return;
    this.dead = true;
    this.client.resetAndDestroy();
    this.target.resetAndDestroy();
    this.proxy.links.delete(this);
  }

  destroy(): void {
    if (this.dead) return;
    this.dead = true;
    // Half-written queues do not matter any more: the peer is gone.
    this.client.end();
    this.target.end();
    setTimeout(() => {
      this.client.destroy();
      this.target.destroy();
    }, 1000).unref?.();
    this.proxy.links.delete(this);
  }
}

const NONE: Fault = { kind: "none" };

/** The proxy's state, shared by its links. */
class Proxy {
  fault: Fault = NONE;
  /** The fault's selection, if any. */
  only: Selection | undefined;
  /** With `openOnly`: the connections open when the fault was set. */
  chosen: Set<Link> | undefined;
  links = new Set<Link>();
  holes = new Set<Socket>();
  stats: ProxyStats = {
    accepted: 0,
    open: 0,
    resets: 0,
    blackholed: 0,
    maxQueuedBytes: 0,
    writes: 0,
    bytes: 0,
  };
}

function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/**
 * Starts a proxy on 127.0.0.1 in front of `127.0.0.1:targetPort`.
 *
 * @param targetPort Where connections go.
 * @returns The running proxy.
 */
export async function startFaultProxy(targetPort: number): Promise<FaultProxy> {
  const proxy = new Proxy();
  const server: Server = createServer((client) => {
    proxy.stats.accepted++;
    if (proxy.fault.kind === "blackhole") {
      proxy.stats.blackholed++;
      proxy.holes.add(client);
      client.on("data", () => {});
      client.on("error", () => {});
      client.on("close", () => proxy.holes.delete(client));
      return;
    }
    proxy.links.add(new Link(proxy, client, targetPort));
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const address = server.address();
  if (address === null || typeof address !== "object") {
    throw new Error("Cannot read the fault proxy's port");
  }
  return {
    port: address.port,
    get fault() {
      return proxy.fault;
    },
    get stats() {
      proxy.stats.open = proxy.links.size + proxy.holes.size;
      return proxy.stats;
    },
    set(fault: Fault, only?: Selection) {
      if (only !== undefined && fault.kind === "blackhole") {
        throw new TypeError(
          "The blackhole fault takes no selection: it acts before a client speaks",
        );
      }
      const links = [...proxy.links];
      const was = links.map((link) => link.fault.kind);
      proxy.fault = fault;
      proxy.only = only;
      proxy.chosen = only?.openOnly
        ? new Set(links.filter((link) => link.fault !== NONE))
        : undefined;
      for (const [n, link] of links.entries()) {
        link.budget = undefined;
        if (was[n] === "stall" && link.fault.kind !== "stall") link.heal();
        else {
          link.up.pump();
          link.down.pump();
        }
      }
      // The black hole's connections never get an answer, even after
      // it heals: their clients have to give them up.
    },
    cut() {
      for (const link of [...proxy.links]) link.reset();
    },
    count(text: string) {
      return [...proxy.links].filter((link) => link.greeting.includes(text))
        .length;
    },
    close() {
      for (const link of [...proxy.links]) link.reset();
      for (const hole of proxy.holes) hole.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
