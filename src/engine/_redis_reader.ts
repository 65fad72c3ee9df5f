/**
 * The Redis engine's reader of one path: it feeds the hub's topic from the
 * path's live channel in order, fills holes from the stream, notices lost
 * data, and answers the topic's history. See `redis.ts` for the design.
 *
 * @module
 */

import type { EventData, EventIdParts } from "../event.ts";
import type { Topic } from "../hub.ts";
import type { RedisLink } from "./_redis_client.ts";
import {
  entryIdOf,
  liveData,
  parseLiveHead,
  type PathKeys,
  type WireEvent,
} from "./_redis_wire.ts";
import type { HistoryRange, TopicHistory } from "./types.ts";

/** Entries read per `XRANGE`. */
export const PAGE = 1000;
/** Wait before reading again after a read failed with Redis connected. */
const RETRY_MS = 500;
/** Nonces of the newest events delivered, kept to tell a repeat from a reused id. */
const RECENT = 4096;

/** The engine's connection, shared by its readers. */
export interface Store {
  readonly link: RedisLink;
  readonly stats: { lag: number };
  /** Reads the stream of `keys` from `start` (inclusive), at most `max` entries. */
  read(keys: PathKeys, start: string, max: number): Promise<WireEvent[]>;
  /** Where a path's log stands now. */
  head(keys: PathKeys): Promise<Head>;
  /** Starts a new epoch if the log is still in `epoch` (it went back in time). */
  bump(keys: PathKeys, epoch: string): Promise<void>;
}

/** A live message waiting for a sync, and when it arrived (a count). */
interface Queued {
  readonly event: WireEvent;
  readonly arrival: number;
}

/** Where a path's log stands: its epoch (null when there is none) and its next seq. */
export interface Head {
  readonly epoch: string | null;
  readonly next: number;
}

/**
 * Feeds one topic from its stream: live events in order, holes filled
 * from the stream, and the topic's history for resumes.
 */
export class Reader implements TopicHistory {
  readonly topic: Topic;
  readonly keys: PathKeys;
  closed = false;
  #store: Store;
  /** The last event delivered; undefined until the first sync. */
  #last: EventIdParts | undefined;
  /** Where the log stood when the topic opened. */
  #anchor: Head | undefined;
  #placing: Promise<void> | undefined;
  /** True once synced: the next epoch seen is the log's first, no gap. */
  #fresh = false;
  #syncing = false;
  #again = false;
  /** Live messages waiting for a sync, with their arrival numbers. */
  #queue: Queued[] = [];
  /** Live messages queued so far. */
  #arrived = 0;
  /** Nonces of the newest events delivered, by seq. */
  #recent = new Map<number, string>();

  /** True once the first sync placed this reader in the log. */
  get synced(): boolean {
    return this.#last !== undefined;
  }

  constructor(topic: Topic, keys: PathKeys, store: Store) {
    this.topic = topic;
    this.keys = keys;
    this.#store = store;
  }

  /** A live message arrived. */
  onLive(message: Uint8Array): void {
    const head = parseLiveHead(message);
    if (head === undefined || this.closed) return;
    const { id, time, nonce } = head;
    if (Number.isFinite(time)) {
      this.#store.stats.lag = Math.max(0, Date.now() - time) / 1000;
    }
    const last = this.#last;
    if (
      !this.#syncing && last !== undefined && id.epoch === last.epoch &&
      id.seq <= last.seq
    ) {
      // Delivered already (mostly this instance's own events, see
      // onStored()): its payload is not even read.
      this.#repeat(id.seq, nonce);
      return;
    }
    const event: WireEvent = {
      id,
      data: liveData(message, head),
      time,
      nonce,
    };
    if (this.#syncing || last === undefined) {
      this.#queue.push({ event, arrival: ++this.#arrived });
      return;
    }
    if (!this.#deliverNext(event)) {
      this.#queue.push({ event, arrival: ++this.#arrived });
      this.sync();
    }
  }

  /**
   * This instance's append of `data` was stored as `id`: when it is exactly
   * the next event of the log (same epoch, the last seq plus one, no sync
   * under way), it is delivered now, in the turn that answers the publish,
   * a stage sooner than its copy on the live channel, which then arrives as
   * a repeat (same id and nonce) and is dropped. Anything else is left to
   * the live channel and the syncs, as for every other instance's events:
   * this never starts a sync.
   *
   * @param id The id Redis gave the event.
   * @param data The payload, as appended.
   * @param nonce The nonce it was appended with.
   */
  onStored(id: EventIdParts, data: EventData, nonce: string): void {
    const last = this.#last;
    if (
      this.closed || this.#syncing || last === undefined ||
      id.epoch !== last.epoch || id.seq !== last.seq + 1 ||
      !this.#store.link.ready
    ) return;
    this.#fresh = false;
    this.#deliver({ id, data, time: NaN, nonce });
  }

  /** Seq `seq` of the current epoch came again, with `nonce`. */
  #repeat(seq: number, nonce: string): void {
    // A repeat, or a new event under an id already delivered: Redis lost
    // its latest writes and numbers again from before them.
    const known = this.#recent.get(seq);
    if (known && nonce && known !== nonce) this.#wentBack();
  }

  /** Delivers `event` when it is the next one (or drops a repeat). @returns false on a hole. */
  #deliverNext(event: WireEvent): boolean {
    const last = this.#last;
    const { epoch, seq } = event.id;
    if (last !== undefined && epoch === last.epoch) {
      if (seq <= last.seq) {
        this.#repeat(seq, event.nonce);
        return true;
      }
      if (seq !== last.seq + 1) return false;
    } else if (!this.#fresh || seq !== 0) {
      return false;
    }
    this.#fresh = false;
    this.#deliver(event);
    return true;
  }

  #deliver(event: WireEvent): void {
    this.#last = event.id;
    const recent = this.#recent;
    const { seq } = event.id;
    recent.set(seq, event.nonce);
    // Seqs come in order, so the oldest is usually seq - RECENT: deleted by
    // key. Taking the first key instead, on every event, cost Bun 15% of an
    // append's CPU (its map iterator walks past the deleted entries).
    if (recent.size > RECENT && !recent.delete(seq - RECENT)) {
      recent.delete(recent.keys().next().value!);
    }
    this.topic.ingest(event.id, event.data);
  }

  /**
   * The log went back in time within its epoch: a new epoch keeps its ids
   * from being handed out twice; the sync that follows tells subscribers.
   */
  #wentBack(): void {
    const epoch = this.#last?.epoch;
    if (epoch === undefined) return;
    this.#store.bump(this.keys, epoch).then(() => this.sync(), () => {});
  }

  /**
   * Reads from the stream what this instance has not delivered, then the
   * live messages that came meanwhile. Runs once at a time; a failure
   * (Redis down) waits for the next reconnect, which syncs again.
   */
  sync(): void {
    if (this.#syncing) {
      this.#again = true;
      return;
    }
    this.#syncing = true;
    this.#catchUp().then(
      () => {
        this.#syncing = false;
        if (this.#again) {
          this.#again = false;
          this.sync();
        }
      },
      () => {
        this.#syncing = false;
        this.#again = false;
        // Redis down: the reconnect syncs again. Up (a command timed out):
        // try again shortly, so the reader does not stay behind.
        if (this.#store.link.ready && !this.closed) {
          setTimeout(() => this.sync(), RETRY_MS);
        }
      },
    );
  }

  async #catchUp(): Promise<void> {
    do {
      this.#again = false;
      if (this.closed) return;
      // Every message that arrived before the head is asked for was
      // published before Redis answers it.
      const asked = this.#arrived;
      const head = await this.#store.head(this.keys);
      const { epoch } = head;
      const last = this.#last ?? this.#startAt(this.#anchor ?? head);
      if (epoch !== null && epoch === last.epoch && head.next <= last.seq) {
        // Redis numbers from before events this instance delivered.
        await this.#store.bump(this.keys, epoch);
        this.#again = true;
        continue;
      }
      if (epoch !== null && epoch === last.epoch) {
        await this.#readAfter(last);
      } else if (epoch !== null || !this.#fresh) {
        this.#epochChanged(last, epoch);
        if (epoch !== null) await this.#readFrom(epoch);
      }
      this.#drain(asked);
    } while (this.#again);
  }

  /**
   * Notes where the log stands as the topic opens, before its channel is
   * subscribed: the first sync delivers everything after it, so a
   * subscriber that came with the topic misses nothing published while
   * the subscription was on its way.
   */
  anchor(): void {
    this.#placing = this.#store.head(this.keys).then((head) => {
      if (this.#last === undefined) this.#anchor ??= head;
    }, () => {}).finally(() => {
      this.#placing = undefined;
    });
  }

  /** While the anchor is read: a subscriber let in after it misses nothing. */
  get placing(): Promise<void> | undefined {
    return this.#placing;
  }

  // First sync: start where the log stood when the topic opened (or now),
  // or at the first event published since the channel was subscribed,
  // whichever is older. Older events are history, read on resume.
  #startAt(head: Head): EventIdParts {
    const { epoch, next } = head;
    if (epoch === null) {
      this.#fresh = true;
      return this.#last = { epoch: "", seq: -1 };
    }
    const first = this.#queue[0]?.event;
    const seq = first !== undefined && first.id.epoch === epoch &&
        first.id.seq < next
      ? first.id.seq - 1
      : next - 1;
    return this.#last = { epoch, seq };
  }

  async #readAfter(last: EventIdParts): Promise<void> {
    const events = await this.#store.read(
      this.keys,
      entryIdOf(last.seq + 1),
      Number.MAX_SAFE_INTEGER,
    );
    let expected = last.seq + 1;
    for (const event of events) {
      if (event.id.epoch !== last.epoch) continue;
      // Trimmed before this instance read them, or deleted from the middle
      // of the stream (XDEL by hand): never a silent hole.
      if (event.id.seq > expected) {
        this.topic.notifyGap({
          lastEventId: `${last.epoch}-${expected - 1}`,
          reason:
            "events were removed from the engine's history before this instance read them",
        });
      }
      this.#deliver(event);
      expected = event.id.seq + 1;
    }
  }

  // Redis lost this path's log (restarted without persistence, flushed,
  // expired): events stored after the last one read here may be gone, so
  // subscribers are told, and a later resume across this point too. A log
  // seen for the first time starts without a gap.
  #epochChanged(last: EventIdParts, epoch: string | null): void {
    if (!this.#fresh) {
      this.topic.notifyGap({
        lastEventId: `${last.epoch}-${last.seq}`,
        reason:
          "the engine lost its history (Redis restarted without its data, or the history expired)",
      });
    }
    this.#fresh = true;
    this.#last = { epoch: epoch ?? "", seq: -1 };
    this.#recent.clear();
  }

  async #readFrom(epoch: string): Promise<void> {
    const events = await this.#store.read(
      this.keys,
      "-",
      Number.MAX_SAFE_INTEGER,
    );
    this.#fresh = false;
    let delivered = false;
    for (const event of events) {
      if (event.id.epoch !== epoch) continue;
      const previous = this.#last;
      if (delivered && previous && event.id.seq !== previous.seq + 1) {
        // Deleted from the middle of the stream (XDEL by hand).
        this.topic.notifyGap({
          lastEventId: `${previous.epoch}-${previous.seq}`,
          reason: "events were removed from the engine's history",
        });
      }
      this.#deliver(event);
      delivered = true;
    }
    // A new epoch after a bump goes on with the sequence: its first event
    // follows the stream's last entry, whatever that entry's epoch.
    const end = events.at(-1);
    if (!delivered && end !== undefined) {
      this.#last = { epoch, seq: end.id.seq };
    }
  }

  /**
   * Goes on with the live messages that arrived during the sync. One of
   * another epoch than the log's, that arrived before the head was read, is
   * stale: its epoch had been replaced when Redis answered (the sync told
   * subscribers of the loss), so it is dropped; kept, it would fail every
   * round and the sync would read the stream again and again for ever.
   *
   * @param asked Arrivals before the head was read.
   */
  #drain(asked: number): void {
    const queue = this.#queue;
    this.#queue = [];
    for (let i = 0; i < queue.length; i++) {
      const { event, arrival } = queue[i];
      if (this.#deliverNext(event)) continue;
      if (arrival <= asked && event.id.epoch !== this.#last?.epoch) continue;
      // Another hole: keep the rest for the next round.
      this.#queue = queue.slice(i).concat(this.#queue);
      this.#again = true;
      return;
    }
  }

  async range(after: EventIdParts | undefined): Promise<HistoryRange> {
    let { epoch, next } = await this.#store.head(this.keys);
    const max = 2 * Number(this.topic.capacity) + PAGE;
    if (epoch !== null && after?.epoch === epoch && after.seq >= next) {
      const last = this.#last;
      if (last === undefined || last.epoch !== epoch || last.seq < after.seq) {
        // An id the log never reached, as far as this instance knows. The
        // client's word alone does not start a new epoch (one forged id
        // would give every subscriber everywhere a gap notice): this
        // subscriber gets one, then the log.
        const entries = await this.#store.read(this.keys, "-", max);
        return { epoch, entries, unknown: true };
      }
      // This instance delivered that id and the log has not reached it:
      // Redis lost it. A new epoch, so that the resume gets a gap notice
      // and the id is not handed out again.
      await this.#store.bump(this.keys, epoch);
      ({ epoch, next } = await this.#store.head(this.keys));
    }
    if (epoch === null) return { epoch, entries: [] };
    const start = after !== undefined && after.epoch === epoch
      ? entryIdOf(after.seq + 1)
      : "-";
    const events = await this.#store.read(this.keys, start, max);
    if (after !== undefined && after.epoch !== epoch) {
      // The stream kept entries of the resume's epoch after it was
      // replaced (a new epoch after Redis went back in time): past the id,
      // they may be new events under ids already handed out, not the rest.
      // Left out, the hub gives the gap notice at the new epoch.
      return {
        epoch,
        entries: events.filter((event) =>
          event.id.epoch !== after.epoch || event.id.seq <= after.seq
        ),
      };
    }
    return { epoch, entries: events };
  }
}
