/**
 * Batching per event-loop turn, shared by every transport that writes
 * bytes itself (SSE outputs, Node's WebSocket frames): what one
 * destination is sent in a turn leaves as one chunk once the turn's I/O
 * callbacks have run, so the fan-outs of every POST read in that turn
 * merge. Destinations sent the same chunks (caught-up subscribers of one
 * format) share one joined copy.
 *
 * Caught-up subscribers can also join a {@link TurnGroup}: a chunk sent to
 * the group costs one array push however many members it has, and after
 * the turn every member is handed the group's one joined chunk. That is
 * the JavaScript counterpart of Bun's native publish.
 *
 * @module
 */

import type { ChannelSend } from "../hub.ts";
import { afterTurn } from "../_turn.ts";

// Subscribers that are caught up get the same chunks in a turn: the first
// one's join is reused by the rest (compared part by part).
let lastParts: Uint8Array[] = [];
let lastJoined: Uint8Array = new Uint8Array(0);

/**
 * Joins what one destination was sent in one turn into one chunk; a run of
 * destinations sent the same chunks shares one join.
 *
 * @param parts The chunks, in order (not changed afterwards).
 * @returns One chunk with all of them.
 */
function joinChunks(parts: Uint8Array[]): Uint8Array {
  if (parts.length === 1) return parts[0];
  if (
    parts.length === lastParts.length &&
    parts.every((part, i) => part === lastParts[i])
  ) return lastJoined;
  let size = 0;
  for (const part of parts) size += part.byteLength;
  const chunk = new Uint8Array(size);
  let at = 0;
  for (const part of parts) {
    chunk.set(part, at);
    at += part.byteLength;
  }
  lastParts = parts;
  lastJoined = chunk;
  return chunk;
}

/** A destination's chunks of this turn. */
interface Pending {
  parts: Uint8Array[];
  bytes: number;
}

/** What a {@link TurnBatch} hands its chunks to. */
export interface TurnSink<K> {
  /**
   * Whether `key` can take a chunk now; if not, its chunks wait for
   * {@link TurnBatch.flush} or {@link TurnBatch.drop}, which the owner must
   * call (the batch holds them until then).
   */
  ready(key: K): boolean;
  /** Hands `key` one chunk. */
  send(key: K, chunk: Uint8Array): void;
}

/**
 * Destinations sent the same chunks: each chunk is stored once, and after
 * the turn every member gets the turn's chunks joined once. A member that
 * joined mid-turn gets only what was sent after it joined.
 */
export class TurnGroup<K> {
  /** Current members. */
  readonly members: Set<K> = new Set();
  /** This turn's chunks. */
  parts: Uint8Array[] = [];
  /** Their size. */
  bytes = 0;
  /** Members that already have `parts` up to an index (joined mid-turn, or took their share early). */
  taken: Map<K, number> = new Map();
}

/** Chunks per destination, sent joined after the turn they were added in. */
export class TurnBatch<K> {
  #pending = new Map<K, Pending>();
  #groupOf = new Map<K, TurnGroup<K>>();
  /** Named groups (one per path and format) and how to send to each. */
  #channels = new Map<string, { group: TurnGroup<K>; send: ChannelSend }>();
  #dirty = new Set<TurnGroup<K>>();
  #scheduled = false;
  #sink: TurnSink<K>;

  /** @param sink Where the joined chunks go. */
  constructor(sink: TurnSink<K>) {
    this.#sink = sink;
  }

  /** Adds a chunk for `key`; it leaves, joined, after this turn. */
  add(key: K, chunk: Uint8Array): void {
    // After what its group was sent so far this turn, in order.
    if (this.#groupOf.size > 0) this.#takeShare(key);
    this.#append(key, chunk);
    this.#schedule();
  }

  /**
   * Makes `key` a member of `group`: from now on it gets what the group is
   * sent, and nothing sent to the group before.
   */
  join(key: K, group: TurnGroup<K>): void {
    this.#leave(key);
    group.members.add(key);
    this.#groupOf.set(key, group);
    if (group.parts.length > 0) group.taken.set(key, group.parts.length);
  }

  /**
   * Makes `key` a member of the channel `name` (a {@link TurnGroup} made on
   * first use) and returns how to send to it: each frame the hub sends is
   * turned into a chunk by `toChunk`, once for all members.
   */
  joinChannel(
    key: K,
    name: string,
    toChunk: (frame: string | Uint8Array) => Uint8Array,
  ): ChannelSend {
    let channel = this.#channels.get(name);
    if (channel === undefined) {
      const group = new TurnGroup<K>();
      const send: ChannelSend = (frame) =>
        this.broadcast(group, toChunk(frame));
      channel = { group, send };
      this.#channels.set(name, channel);
    }
    this.join(key, channel.group);
    return channel.send;
  }

  /** Sends a chunk to every member of `group`, joined after this turn. */
  broadcast(group: TurnGroup<K>, chunk: Uint8Array): void {
    group.parts.push(chunk);
    group.bytes += chunk.byteLength;
    this.#dirty.add(group);
    this.#schedule();
  }

  #append(key: K, chunk: Uint8Array): void {
    const pending = this.#pending.get(key);
    if (pending === undefined) {
      this.#pending.set(key, { parts: [chunk], bytes: chunk.byteLength });
    } else {
      pending.parts.push(chunk);
      pending.bytes += chunk.byteLength;
    }
  }

  #schedule(): void {
    if (this.#scheduled) return;
    this.#scheduled = true;
    afterTurn(this.#flushAll);
  }

  /** Moves what `key`'s group was sent this turn, and `key` lacks, to `key`'s own chunks. */
  #takeShare(key: K): void {
    const group = this.#groupOf.get(key);
    if (group === undefined) return;
    const from = group.taken.get(key) ?? 0;
    const parts = group.parts;
    if (from >= parts.length) return;
    group.taken.set(key, parts.length);
    // A copy: the group's array grows during the turn, and joinChunks
    // remembers the arrays it joined.
    this.#append(key, joinChunks(parts.slice(from)));
  }

  /** Bytes added for `key` (itself or through its group) and not yet handed on. */
  queued(key: K): number {
    const own = this.#pending.get(key)?.bytes ?? 0;
    return this.#groupOf.size === 0
      ? own
      : own + (this.#groupOf.get(key)?.bytes ?? 0);
  }

  /** Hands `key` its chunks now (its group's included), if it is ready. */
  flush(key: K): void {
    if (this.#groupOf.size > 0) this.#takeShare(key);
    const pending = this.#pending.get(key);
    if (pending === undefined || !this.#sink.ready(key)) return;
    this.#pending.delete(key);
    this.#sink.send(key, joinChunks(pending.parts));
  }

  /** Forgets `key`'s chunks and takes it out of its group. */
  drop(key: K): void {
    this.#pending.delete(key);
    this.#leave(key);
  }

  #leave(key: K): void {
    const group = this.#groupOf.get(key);
    if (group === undefined) return;
    this.#groupOf.delete(key);
    group.members.delete(key);
    group.taken.delete(key);
  }

  /** Hands every member of `group` what the group was sent this turn. */
  #deliver(group: TurnGroup<K>): void {
    const { parts, taken } = group;
    group.parts = [];
    group.bytes = 0;
    group.taken = new Map();
    if (parts.length === 0) return;
    const joined = joinChunks(parts);
    const sink = this.#sink;
    for (const key of group.members) {
      const from = taken.get(key) ?? 0;
      if (from >= parts.length) continue;
      const chunk = from === 0 ? joined : joinChunks(parts.slice(from));
      if (this.#pending.has(key) || !sink.ready(key)) this.#append(key, chunk);
      else sink.send(key, chunk);
    }
  }

  #flushAll = (): void => {
    this.#scheduled = false;
    if (this.#dirty.size > 0) {
      const groups = [...this.#dirty];
      this.#dirty.clear();
      for (const group of groups) this.#deliver(group);
    }
    for (const key of this.#pending.keys()) this.flush(key);
  };
}
