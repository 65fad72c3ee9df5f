/**
 * Batching per event-loop turn, shared by every transport that writes
 * bytes itself (SSE outputs, Node's WebSocket frames): what one
 * destination is sent in a turn leaves as one chunk once the turn's I/O
 * callbacks have run, so the fan-outs of every POST read in that turn
 * merge. Destinations sent the same chunks (caught-up subscribers of one
 * format) share one joined copy.
 *
 * @module
 */

// setImmediate where the runtime has it, a zero timeout otherwise.
const later: (task: () => void) => unknown =
  (globalThis as { setImmediate?: (task: () => void) => unknown })
    .setImmediate ?? ((task) => setTimeout(task, 0));

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

/** Chunks per destination, sent joined after the turn they were added in. */
export class TurnBatch<K> {
  #pending = new Map<K, Pending>();
  #scheduled = false;
  #sink: TurnSink<K>;

  /** @param sink Where the joined chunks go. */
  constructor(sink: TurnSink<K>) {
    this.#sink = sink;
  }

  /** Adds a chunk for `key`; it leaves, joined, after this turn. */
  add(key: K, chunk: Uint8Array): void {
    const pending = this.#pending.get(key);
    if (pending === undefined) {
      this.#pending.set(key, { parts: [chunk], bytes: chunk.byteLength });
    } else {
      pending.parts.push(chunk);
      pending.bytes += chunk.byteLength;
    }
    if (!this.#scheduled) {
      this.#scheduled = true;
      later(this.#flushAll);
    }
  }

  /** Bytes added for `key` and not yet handed on. */
  queued(key: K): number {
    return this.#pending.get(key)?.bytes ?? 0;
  }

  /** Hands `key` its chunks now, if it is ready. */
  flush(key: K): void {
    const pending = this.#pending.get(key);
    if (pending === undefined || !this.#sink.ready(key)) return;
    this.#pending.delete(key);
    this.#sink.send(key, joinChunks(pending.parts));
  }

  /** Forgets `key`'s chunks. */
  drop(key: K): void {
    this.#pending.delete(key);
  }

  #flushAll = (): void => {
    this.#scheduled = false;
    for (const key of this.#pending.keys()) this.flush(key);
  };
}
