/**
 * The hub: paths (topics), their replay buffers, their subscribers and the
 * fan-out of each event. Pure: it knows nothing of runtimes, sockets or Hono;
 * a transport hands it a {@link Sink}.
 *
 * @module
 */

import {
  type EventData,
  type EventIdParts,
  formatEventId,
  type GapNotice,
  parseEventId,
  StreamEvent,
} from "./event.ts";
import { EventBuffer } from "./_buffer.ts";
import type { HistoryRange, TopicHistory } from "./engine/types.ts";
import { afterTurn, cancelAfterTurn } from "./_turn.ts";

/** How a subscriber wants its events. */
export type Format = "raw" | "json" | "sse";

/** The transport of a subscriber, for limits and metrics. */
export type Transport = "websocket" | "sse";

/** Where the hub writes one subscriber's events. Implemented by transports. */
export interface Sink {
  /** The wire format the sink sends. */
  readonly format: Format;
  /** The transport, for metrics. */
  readonly transport: Transport;
  /**
   * Sends one event without waiting.
   *
   * @returns The bytes still queued for this subscriber after the send.
   */
  send(event: StreamEvent): number;
  /** Bytes still queued for this subscriber. */
  queued(): number;
  /** Tells the subscriber that events may be missing. */
  notify(notice: GapNotice): void;
  /**
   * Joins a broadcast channel: Bun's native pub/sub, or a group of SSE
   * outputs that share one write per turn. The hub then sends this
   * subscriber's live events with one call per channel instead of one send
   * per subscriber, and checks its queue in sweeps.
   *
   * @param channel The channel's name: one per path and format.
   * @returns How to send to the channel, or undefined when the sink cannot
   * join.
   */
  join?(channel: string): ChannelSend | undefined;
  /** Closes the subscriber's connection with a WebSocket close code. */
  close(code: number, reason: string): void;
}

/**
 * Sends one frame to every sink that joined a channel (see
 * {@link Sink.join}).
 *
 * @example A channel that hands each frame to its members
 * ```ts
 * import type { ChannelSend } from "../mod.ts";
 * const members: string[][] = [[], []];
 * const send: ChannelSend = (frame) => {
 *   for (const member of members) member.push(String(frame));
 * };
 * send("hello");
 * console.log(members); // [["hello"], ["hello"]]
 * ```
 */
export type ChannelSend = (frame: string | Uint8Array) => void;

/** Options of {@link createHub}. */
export interface HubOptions {
  /** Events kept per path for resume. @default {1000} */
  bufferSize?: number;
  /** Bytes of payload kept per path for resume. @default {1048576} */
  bufferBytes?: number;
  /** Bytes queued for one subscriber past which it counts as slow. @default {4194304} */
  maxQueueBytes?: number;
  /** Subscribers on the whole instance. @default {10000} */
  maxSubscribers?: number;
  /**
   * What happens to a slow subscriber: `"close"` disconnects it with 1008;
   * `"skip"` drops the events it cannot take and sends a gap notice once it
   * has caught up. @default {"close"}
   */
  slowPolicy?: "close" | "skip";
  /**
   * Coalescing under load, in milliseconds: an event published within this
   * long after the end of the turn that fanned out the previous ones waits
   * until then and goes out together with the others that came meanwhile,
   * so each socket gets one write for all of them. An event after a quiet
   * spell goes out at once, and so does every further event of the same
   * turn. 0 sends every event as it is published. @default {0}
   */
  coalesceMs?: number;
}

/** Options of {@link Topic.subscribe}. */
export interface SubscribeOptions {
  /** Resume after this id (as given by the client, unchecked). */
  lastEventId?: string;
  /** Replay the whole buffer first, without a gap notice (relays filling up). */
  replayAll?: boolean;
}

/** Counters kept by the hub, read by `/metrics`. */
export interface HubStats {
  /** Events that entered a path. */
  published: number;
  /** Event frames handed to subscriber transports. */
  delivered: number;
  /** Events skipped for slow subscribers (skip policy). */
  dropped: number;
  /** Subscribers closed for falling behind. */
  slowDisconnects: number;
  /** Subscribers closed because a send threw. */
  sinkErrors: number;
  /** Subscriptions that resumed from an id. */
  resumes: number;
  /** Gap notices sent. */
  gaps: number;
  /** Events that waited to go out with later ones (coalescing under load). */
  coalesced: number;
}

/** One subscriber of one topic. */
export interface Subscription {
  /** The sink events go to. */
  readonly sink: Sink;
  /** The topic. */
  readonly topic: Topic;
  /** Stops delivery; the caller closes its own connection. */
  cancel(): void;
}

type Timer = ReturnType<typeof setTimeout>;

/**
 * The longest an event waits in a hold for this instance's appends (see
 * `Topic.appendSent`), e.g. when Redis stalls.
 */
export const HOLD_MAX_MS = 5;
/**
 * A hold waits for one generation more only when this instance's
 * publishers sent their next append within this long after the last busy
 * round was answered (or after the end of the turn that fanned it out):
 * a closed loop, not events that come at intervals.
 */
export const HOLD_RETURN_MS = 2;
/**
 * A hold waits for one generation more only when it gathered at least this
 * many events: about the appends in flight at once, so a rate of about this
 * many events per round trip to the engine.
 */
export const HOLD_EXTEND_MIN = 8;
/**
 * How long a hold waits for one generation more when nothing has been sent
 * yet (the publishers may have stopped).
 */
export const HOLD_IDLE_MS = 2;

/** Payload bytes held for coalescing past which they go out at once. */
function holdLimit(maxQueueBytes: number): number {
  return Math.min(32 * 1024, maxQueueBytes / 8);
}

// Set by Topic's static block: lets a Member reach Topic's private #remove.
let removeMember: (topic: Topic, member: Member) => void;

// A class, not an object with a closure: idle subscribers are what an
// instance holds most of, and a closure costs its scope per subscriber.
class Member implements Subscription {
  readonly sink: Sink;
  readonly topic: Topic;
  pending: EventIdParts | undefined = undefined;
  skipping = false;
  lastSent: string | null = null;
  removed = false;
  native = false;
  /** Waiting for history from the engine: gets no live events yet. */
  backfilling = false;

  constructor(sink: Sink, topic: Topic) {
    this.sink = sink;
    this.topic = topic;
  }

  cancel(): void {
    removeMember(this.topic, this);
  }
}

/** Thrown when a topic or hub is used after close. */
export class HubClosedError extends Error {
  /** Stable code for clients. */
  readonly code = "hub_closed";
  /**
   * Creates the error.
   *
   * @param message What was attempted.
   */
  constructor(message: string) {
    super(message);
    this.name = "HubClosedError";
  }
}

/** One served path: its ids, replay buffer and subscribers. */
export class Topic {
  /** The path, without a leading slash. */
  readonly path: string;
  /** The epoch of events that enter the system here. */
  readonly epoch: string;
  #nextSeq = 0;
  /** Names of this path's broadcast channels, one per format. */
  #channels: Record<Format, string>;
  #buffer: EventBuffer;
  #members = new Set<Member>();
  /** Members sent to one by one; the others joined a channel. */
  #direct = new Set<Member>();
  /** Members per channel, and how to send to it. */
  #native: Record<Format, number> = { raw: 0, json: 0, sse: 0 };
  #senders: Partial<Record<Format, ChannelSend>> = {};
  /** Bytes broadcast natively since the joined sinks' queues were checked. */
  #unchecked = 0;
  #counts: Record<Transport, number> = { websocket: 0, sse: 0 };
  #hub: HubCore;
  #lastIngested: EventIdParts | undefined;
  #upstreamGap: GapNotice | undefined;
  /** Gaps reported upstream, by the first event after them. */
  #gapsBefore = new WeakMap<StreamEvent, GapNotice>();
  /** Events published but not yet fanned out (coalescing). */
  #held: StreamEvent[] = [];
  #heldBytes = 0;
  #release: Timer | undefined;
  /** Set while the turn that fanned out events has not ended. */
  #turnEnd: unknown;
  /** When the last turn that fanned out events ended. */
  #quietSince = -Infinity;
  /** The engine's history older than the buffer, when an engine keeps one. */
  #history: TopicHistory | undefined;
  /** This instance's appends to the engine's log: sent, and answered. */
  #appendsSent = 0;
  #appendsDone = 0;
  /**
   * Holding for appends (see {@link Topic.appendSent}): the held events go
   * out once this many appends are answered; -1 while not holding.
   */
  #holdUntil = -1;
  /** The hold waits one generation more: its target is set by its first answer. */
  #holdNext = false;
  /** The hold was extended by one generation already. */
  #holdExtended = false;
  #holdTimer: Timer | undefined;
  /** When the hold began, for its cap. */
  #holdSince = 0;
  /** Extended, and waiting (briefly) for the next generation to begin. */
  #holdIdle = false;
  /** When the appends a hold waited for were all answered; -1 once the next one is sent. */
  #roundEnd = -1;
  /** The next append after the last such round came within {@link HOLD_RETURN_MS}. */
  #quickReturn = false;

  /** @internal Use {@link Hub.addTopic}. */
  constructor(path: string, epoch: string, hub: HubCore) {
    this.path = path;
    this.epoch = epoch;
    this.#hub = hub;
    this.#channels = {
      raw: `raw:${path}`,
      json: `json:${path}`,
      sse: `sse:${path}`,
    };
    this.#buffer = new EventBuffer(
      hub.options.bufferSize,
      hub.options.bufferBytes,
    );
  }

  /** Events in the replay buffer. */
  get buffered(): number {
    return this.#buffer.length;
  }

  /** Payload bytes in the replay buffer. */
  get bufferedBytes(): number {
    return this.#buffer.bytes;
  }

  /** The buffer's capacity in events. */
  get capacity(): number {
    return this.#buffer.capacity;
  }

  /** Current subscribers. */
  get subscribers(): number {
    return this.#members.size;
  }

  /** Current subscribers of this path by transport. */
  get counts(): Readonly<Record<Transport, number>> {
    return this.#counts;
  }

  /**
   * Lets resumes older than the buffer read the engine's history: the
   * buffer becomes a cache of the newest events, and a resume from an id
   * it does not hold is answered from the engine first.
   *
   * @param history The engine's reader for this topic, or undefined to stop.
   */
  useHistory(history: TopicHistory | undefined): void {
    this.#history = history;
  }

  /** The id of the newest event, or null. */
  get lastId(): string | null {
    return this.#buffer.newest()?.id ?? null;
  }

  /**
   * Publishes an event that enters the system here: it gets this topic's
   * epoch and the next sequence number. This is the memory engine's append;
   * a topic fed by another engine (Redis) takes events through that
   * engine's `append`, which gives the ids, never through this method.
   *
   * @param data The payload.
   * @returns The event with its id.
   */
  publish(data: EventData): StreamEvent {
    const event = new StreamEvent(
      { epoch: this.epoch, seq: this.#nextSeq++ },
      data,
    );
    this.#fanOut(event);
    return event;
  }

  /**
   * Publishes an event that already has an id (from an upstream), keeping
   * the id. An event at or before the last one ingested from the same epoch
   * is a duplicate of a replay and is dropped.
   *
   * @param id The id's parts.
   * @param data The payload.
   * @returns The event, or `undefined` for a duplicate.
   */
  ingest(id: EventIdParts, data: EventData): StreamEvent | undefined {
    const last = this.#lastIngested;
    if (last !== undefined && last.epoch === id.epoch && id.seq <= last.seq) {
      return undefined;
    }
    this.#lastIngested = id;
    const event = new StreamEvent(id, data);
    if (this.#upstreamGap !== undefined) {
      this.#gapsBefore.set(event, this.#upstreamGap);
      this.#upstreamGap = undefined;
    }
    this.#fanOut(event);
    return event;
  }

  /**
   * Tells every live subscriber that events may be missing (an upstream
   * reported a gap).
   *
   * @param notice The gap.
   */
  notifyGap(notice: GapNotice): void {
    this.#flush();
    // Remembered on the next event, so a later resume across it is told too.
    this.#upstreamGap = notice;
    for (const member of this.#members) {
      // A member reading history learns of the gap from the history itself.
      if (!member.backfilling) {
        this.#gap(member, notice.lastEventId, notice.reason);
      }
    }
  }

  /**
   * Adds a subscriber. With `lastEventId`, it first gets every buffered event
   * after that id, then live ones, with nothing lost or repeated at the seam;
   * where that cannot be exact it gets a gap notice first.
   *
   * @param sink Where to send.
   * @param options Resume options.
   * @returns The subscription.
   * @throws {HubClosedError} When the hub is closed.
   * @throws {RangeError} When the instance is at its subscriber limit.
   */
  subscribe(sink: Sink, options: SubscribeOptions = {}): Subscription {
    this.#hub.admit();
    // Held events are in the buffer already: send them first, so a replay
    // and the live events after it meet at the same seam as without them.
    this.#flush();
    const member = new Member(sink, this);
    this.#hub.counts[sink.transport]++;
    this.#counts[sink.transport]++;
    this.#members.add(member);
    this.#direct.add(member);
    if (options.lastEventId !== undefined) {
      this.#resume(member, options.lastEventId);
    } else if (options.replayAll && this.#history !== undefined) {
      this.#backfill(member, undefined);
    } else if (options.replayAll) {
      this.#replay(member, 0);
    }
    this.#joinNative(member);
    return member;
  }

  // Once caught up (nothing pending), a sink that can join a channel for
  // its format leaves the per-subscriber loop. Replay and join happen in
  // the same tick, so no event falls between them. Skipping events for a
  // slow subscriber needs the loop, so the skip policy never joins.
  #joinNative(member: Member): void {
    const format = member.sink.format;
    if (
      member.sink.join === undefined || member.removed ||
      member.backfilling || member.pending !== undefined ||
      this.#hub.options.slowPolicy !== "close"
    ) return;
    const send = member.sink.join(this.#channels[format]);
    if (send === undefined) return;
    this.#senders[format] = send;
    member.native = true;
    this.#direct.delete(member);
    this.#native[format]++;
  }

  #resume(member: Member, lastEventId: string): void {
    const { stats } = this.#hub;
    stats.resumes++;
    const parts = parseEventId(lastEventId);
    if (parts === undefined) {
      this.#gap(member, lastEventId, "the last event id is not one of ours");
      this.#replay(member, 0);
      return;
    }
    const index = this.#buffer.indexOf(lastEventId);
    if (index >= 0) {
      this.#replay(member, index + 1);
      return;
    }
    if (this.#history !== undefined) {
      this.#backfill(member, parts);
      return;
    }
    // Not buffered: decide at the first event whether anything was missed.
    // The id may be older than the buffer, from another epoch, or ahead of
    // us (a relay still filling up after a restart).
    member.pending = parts;
    this.#replay(member, 0);
  }

  // Reads the engine's history after `after` (or all of it), then goes on
  // from the buffer and live. Meanwhile the member gets no live events: it
  // is counted but in no send list, so nothing reaches it out of order.
  #backfill(member: Member, after: EventIdParts | undefined): void {
    member.backfilling = true;
    this.#direct.delete(member);
    this.#history!.range(after).then(
      (range) => this.#backfilled(member, after, range),
      () => {
        if (member.removed) return;
        // Never a silent hole: the client resumes again later.
        this.#drop(member, 1011, "the event history is unavailable");
      },
    );
  }

  #backfilled(
    member: Member,
    after: EventIdParts | undefined,
    range: HistoryRange,
  ): void {
    if (member.removed) return;
    member.backfilling = false;
    this.#flush();
    member.pending = range.unknown ? undefined : after;
    if (
      range.unknown && after !== undefined &&
      !this.#gap(
        member,
        formatEventId(after.epoch, after.seq),
        "the event stream never reached that id",
      )
    ) return;
    let previous: EventIdParts | undefined;
    for (const entry of range.entries) {
      // Never a silent hole: an entry deleted from the middle of the log.
      if (
        previous !== undefined && member.pending === undefined &&
        entry.id.seq !== previous.seq + 1 &&
        !this.#gap(
          member,
          formatEventId(previous.epoch, previous.seq),
          "events were removed from the engine's history",
        )
      ) return;
      previous = entry.id;
      this.#send(member, new StreamEvent(entry.id, entry.data));
      if (member.removed) return;
    }
    // Where the history ended for this member: its last entry once one was
    // sent, else still the resume point. Go on from the buffer just after
    // it where the buffer holds it; else replay the buffer skipping up to it
    // (the live reader may not have brought those events here yet).
    const end = member.lastSent !== null
      ? range.entries.at(-1)?.id
      : range.unknown
      ? undefined
      : after;
    const index = end === undefined
      ? -1
      : this.#buffer.indexOf(formatEventId(end.epoch, end.seq));
    member.pending = index >= 0 ? undefined : end;
    this.#replay(member, index + 1);
    if (member.removed) return;
    this.#direct.add(member);
    this.#joinNative(member);
  }

  #replay(member: Member, from: number): void {
    this.#buffer.forEach((event) => {
      const gap = this.#gapsBefore.get(event);
      if (
        gap !== undefined && !this.#gap(member, gap.lastEventId, gap.reason)
      ) return;
      this.#send(member, event);
    }, from);
    // A gap reported after the newest event waits for the next one (see
    // notifyGap); one that replayed up to it meanwhile is told now, or never.
    const gap = this.#upstreamGap;
    if (gap !== undefined && member.pending === undefined && !member.removed) {
      this.#gap(member, gap.lastEventId, gap.reason);
    }
  }

  /** @returns false when the sink failed and was removed. */
  #gap(member: Member, lastEventId: string | null, reason: string): boolean {
    this.#hub.stats.gaps++;
    try {
      member.sink.notify({ lastEventId, reason });
      return true;
    } catch {
      this.#fail(member);
      return false;
    }
  }

  // A failing subscriber never reaches the publisher: count it, drop it,
  // close its connection.
  #fail(member: Member): void {
    this.#hub.stats.sinkErrors++;
    this.#drop(member, 1011, "send failed");
  }

  /** Removes a member and closes its connection; a throwing close stays here. */
  #drop(member: Member, code: number, reason: string): void {
    this.#remove(member);
    try {
      member.sink.close(code, reason);
    } catch {
      // The connection is already gone, or the runtime refused the close.
    }
  }

  #fanOut(event: StreamEvent): void {
    const hub = this.#hub;
    hub.stats.published++;
    this.#buffer.push(event);
    // Only an engine's appends count: the memory engine never holds.
    if (this.#holdUntil >= 0 || this.#appendsSent > this.#appendsDone) {
      if (this.#holdUntil < 0) this.#startHold();
      this.#hold(event);
    } else if (!(hub.options.coalesceMs > 0)) {
      this.#deliver(event);
    } else if (this.#mayGo()) {
      this.#deliver(event);
      this.#watchTurn();
    } else {
      hub.stats.coalesced++;
      this.#hold(event);
    }
  }

  /** Keeps `event` for the next flush (a hold, or coalescing). */
  #hold(event: StreamEvent): void {
    this.#held.push(event);
    this.#heldBytes += event.size;
    // Large events gain little from sharing a write, and a socket must not
    // be handed more at once than its queue bound allows.
    if (this.#heldBytes >= holdLimit(this.#hub.options.maxQueueBytes)) {
      this.#flush();
    }
  }

  // Coalescing: true when an event may go out in this turn. Otherwise a
  // release is due at the end of the gap since the last busy turn ended.
  #mayGo(): boolean {
    if (this.#release !== undefined) return false;
    if (this.#turnEnd !== undefined) return true;
    const wait = this.#quietSince + this.#hub.options.coalesceMs -
      performance.now();
    if (wait > 0) {
      this.#release = setTimeout(() => {
        this.#release = undefined;
        this.#flush();
      }, wait);
      return false;
    }
    return true;
  }

  // Notes when this turn ends. Called after a fan-out, so that the
  // transports' own end-of-turn writes (queued while it ran) come first
  // and the gap starts once they are done.
  #watchTurn(): void {
    if (this.#turnEnd !== undefined) return;
    this.#turnEnd = afterTurn(() => {
      this.#turnEnd = undefined;
      this.#quietSince = performance.now();
    });
  }

  /**
   * @internal An engine sent an append to this topic's log (on behalf of
   * this instance); {@link Topic.appendDone} follows once it is answered,
   * stored or not. While any is unanswered, the events that reach the topic
   * are held and go out together once those appends are answered, so under
   * load each subscriber gets one write for many events. When the hold
   * gathered {@link HOLD_EXTEND_MIN} events or more and this instance's
   * publishers came back quickly last time (their next append within
   * {@link HOLD_RETURN_MS} of the answers) or already did, it waits for one
   * generation more: the appends sent until the first of them is answered
   * ({@link HOLD_IDLE_MS} at most for the first to be sent). A closed loop
   * of N publishers then writes about 2N events at a time. An event with
   * no other append of this instance to wait for goes out in the call that
   * answers its own append, and no hold lasts longer than
   * {@link HOLD_MAX_MS}.
   */
  appendSent(): void {
    this.#appendsSent++;
    if (this.#roundEnd >= 0) {
      // From the end of the turn that fanned the round out, if it did: the
      // writes to the subscribers are not the publishers' delay.
      const gap = performance.now() -
        Math.max(this.#roundEnd, this.#quietSince);
      this.#quickReturn = gap <= HOLD_RETURN_MS;
      this.#roundEnd = -1;
    }
    if (this.#holdIdle) {
      // The next generation began: wait for it, up to the cap.
      this.#holdIdle = false;
      clearTimeout(this.#holdTimer);
      this.#armHold(this.#holdSince + HOLD_MAX_MS - performance.now());
    }
  }

  /**
   * @internal An append announced with {@link Topic.appendSent} was
   * answered (stored, or failed): called after its event, if stored, was
   * ingested.
   */
  appendDone(): void {
    this.#appendsDone++;
    if (this.#holdUntil < 0) return;
    if (this.#holdNext) {
      // The first answer of the next generation: it ends with what was
      // sent until now.
      this.#holdNext = false;
      this.#holdUntil = this.#appendsSent;
    }
    if (this.#appendsDone < this.#holdUntil) return;
    if (this.#holdExtended) {
      this.#flush();
      return;
    }
    const busy = this.#held.length >= HOLD_EXTEND_MIN;
    if (busy) {
      // Every append the hold waited for is answered: how soon the next
      // one comes tells whether the publishers run in a closed loop.
      this.#roundEnd = performance.now();
    }
    if (
      busy &&
      (this.#quickReturn || this.#appendsSent > this.#appendsDone)
    ) {
      this.#holdExtended = true;
      this.#holdNext = true;
      this.#holdUntil = Infinity;
      if (this.#appendsSent <= this.#appendsDone) {
        // Nothing sent yet: the publishers may be done, wait only briefly.
        this.#holdIdle = true;
        clearTimeout(this.#holdTimer);
        this.#armHold(this.#idleLeft());
      }
      return;
    }
    this.#flush();
  }

  #startHold(): void {
    this.#holdUntil = this.#appendsSent;
    this.#holdNext = false;
    this.#holdExtended = false;
    this.#holdSince = performance.now();
    this.#armHold(HOLD_MAX_MS);
  }

  /** What is left of a hold's wait for its next generation to begin. */
  #idleLeft(): number {
    return Math.min(
      this.#roundEnd + HOLD_IDLE_MS,
      this.#holdSince + HOLD_MAX_MS,
    ) - performance.now();
  }

  #armHold(ms: number): void {
    this.#holdTimer = setTimeout(() => {
      this.#holdTimer = undefined;
      // Node counts a timer from the start of the loop's turn: a short one
      // set late in a long turn fires early.
      const left = this.#holdIdle ? this.#idleLeft() : 0;
      if (left > 0.1) {
        this.#armHold(left);
        return;
      }
      this.#flush();
    }, Math.max(0, ms));
  }

  /** Fans out the held events now. */
  #flush(): void {
    if (this.#release !== undefined) {
      clearTimeout(this.#release);
      this.#release = undefined;
    }
    if (this.#holdUntil >= 0) {
      this.#holdUntil = -1;
      this.#holdNext = false;
      this.#holdIdle = false;
      if (this.#holdTimer !== undefined) {
        clearTimeout(this.#holdTimer);
        this.#holdTimer = undefined;
      }
    }
    if (this.#held.length === 0) return;
    const held = this.#held;
    this.#held = [];
    this.#heldBytes = 0;
    for (const event of held) this.#deliver(event);
    this.#watchTurn();
  }

  #deliver(event: StreamEvent): void {
    const hub = this.#hub;
    const native = this.#native;
    const senders = this.#senders;
    if (native.raw > 0) {
      senders.raw?.(event.data);
      hub.stats.delivered += native.raw;
    }
    if (native.json > 0) {
      senders.json?.(event.json);
      hub.stats.delivered += native.json;
    }
    if (native.sse > 0) {
      senders.sse?.(event.sse);
      hub.stats.delivered += native.sse;
    }
    if (this.#members.size > this.#direct.size) this.#checkJoined(event.size);
    const max = hub.options.maxQueueBytes;
    for (const member of this.#direct) {
      const queued = this.#send(member, event);
      if (queued > max) this.#slow(member, queued);
    }
  }

  // Native channels send without asking each socket, so their queues are
  // checked in sweeps, at least once per quarter of the bound broadcast:
  // a slow subscriber is closed with at most that much over the bound (the
  // runtime's own backpressure limit stays above it as a backstop).
  #checkJoined(size: number): void {
    const max = this.#hub.options.maxQueueBytes;
    this.#unchecked += size + 16;
    if (this.#unchecked < max / 4) return;
    this.#unchecked = 0;
    // Every member, not a set of the joined ones: a set entry per idle
    // connection costs more memory than the sweeps cost time.
    for (const member of this.#members) {
      if (!member.native) continue;
      const queued = member.sink.queued();
      if (queued > max) this.#slow(member, queued);
    }
  }

  /** @returns bytes queued after the send, or -1 when nothing was sent. */
  #send(member: Member, event: StreamEvent): number {
    if (member.removed) return -1;
    const pending = member.pending;
    if (pending !== undefined) {
      if (event.epoch === pending.epoch && event.seq <= pending.seq) return -1;
      member.pending = undefined;
      const id = formatEventId(pending.epoch, pending.seq);
      const reason = event.epoch !== pending.epoch
        ? "the event stream restarted since that id"
        : event.seq !== pending.seq + 1
        ? "events after that id are no longer buffered"
        : undefined;
      if (reason !== undefined && !this.#gap(member, id, reason)) return -1;
    }
    if (member.skipping) return this.#catchUp(member, event);
    try {
      const queued = member.sink.send(event);
      this.#hub.stats.delivered++;
      member.lastSent = event.id;
      return queued;
    } catch {
      this.#fail(member);
      return -1;
    }
  }

  #slow(member: Member, queued: number): void {
    const hub = this.#hub;
    if (hub.options.slowPolicy === "skip") {
      member.skipping = true;
      return;
    }
    hub.stats.slowDisconnects++;
    this.#drop(
      member,
      1008,
      `slow consumer: ${queued} bytes queued, limit ${hub.options.maxQueueBytes}`,
    );
  }

  // Skip policy: drop events until the subscriber's queue has drained to
  // half the limit, then tell it about the gap and go on.
  #catchUp(member: Member, event: StreamEvent): number {
    if (member.sink.queued() > this.#hub.options.maxQueueBytes / 2) {
      this.#hub.stats.dropped++;
      return -1;
    }
    member.skipping = false;
    const reason = "events were skipped: the subscriber was too slow";
    if (!this.#gap(member, member.lastSent, reason)) return -1;
    return this.#send(member, event);
  }

  static {
    removeMember = (topic, member) => topic.#remove(member);
  }

  #remove(member: Member): void {
    member.removed = true;
    if (!this.#members.delete(member)) return;
    this.#direct.delete(member);
    if (member.native) this.#native[member.sink.format]--;
    this.#hub.counts[member.sink.transport]--;
    this.#counts[member.sink.transport]--;
  }

  /** @internal Sends held events, then closes every subscriber. */
  closeAll(code: number, reason: string): void {
    this.#flush();
    if (this.#turnEnd !== undefined) {
      cancelAfterTurn(this.#turnEnd);
      this.#turnEnd = undefined;
    }
    for (const member of this.#members) this.#drop(member, code, reason);
  }
}

/** The hub: every topic of one instance. */
export interface Hub {
  /** Counters for metrics. */
  readonly stats: HubStats;
  /** The options in force, defaults filled in. */
  readonly options: Readonly<HubSettings>;
  /** Subscribers by transport. */
  readonly counts: Readonly<Record<Transport, number>>;
  /**
   * Adds a path (idempotent).
   *
   * @param path The path without a leading slash.
   * @param epoch The epoch for events that enter here.
   * @returns The topic.
   */
  addTopic(path: string, epoch: string): Topic;
  /**
   * Finds a topic.
   *
   * @param path The path without a leading slash.
   * @returns The topic served at `path`, if any.
   */
  topic(path: string): Topic | undefined;
  /**
   * Lists the topics.
   *
   * @returns Every topic, in the order added.
   */
  topics(): Topic[];
  /**
   * Removes a topic with its buffer (an on-demand topic gone idle); its
   * subscribers, if any, are closed with 1001.
   *
   * @param path The path without a leading slash.
   * @returns True when there was such a topic.
   */
  removeTopic(path: string): boolean;
  /** True when one more subscriber fits. */
  readonly hasRoom: boolean;
  /** Closes every subscriber with `code` and refuses new ones. */
  close(code: number, reason: string): void;
}

interface HubCore {
  readonly options: Readonly<HubSettings>;
  readonly stats: HubStats;
  readonly counts: Record<Transport, number>;
  admit(): void;
}

/** Hub options with defaults filled in. */
export type HubSettings = Required<HubOptions>;

const DEFAULTS: HubSettings = {
  bufferSize: 1000,
  bufferBytes: 1 << 20,
  maxQueueBytes: 4 << 20,
  maxSubscribers: 10_000,
  slowPolicy: "close",
  coalesceMs: 0,
};

/**
 * Creates a hub that sends each published event to every subscriber of its
 * path and keeps the last events of each path for resume.
 *
 * @example Usage
 * ```ts
 * import { createHub } from "../mod.ts";
 * const hub = createHub({ bufferSize: 16 });
 * const topic = hub.addTopic("events", "e1");
 * const event = topic.publish("hello");
 * console.log(event.id); // "e1-0"
 * ```
 *
 * @param options Limits and policies.
 * @returns The hub.
 */
export function createHub(options: HubOptions = {}): Hub {
  const settings = { ...DEFAULTS, ...definedOnly(options) };
  const topics = new Map<string, Topic>();
  let closed = false;
  const counts: Record<Transport, number> = { websocket: 0, sse: 0 };
  const core: HubCore = {
    options: settings,
    stats: {
      published: 0,
      delivered: 0,
      dropped: 0,
      slowDisconnects: 0,
      sinkErrors: 0,
      resumes: 0,
      gaps: 0,
      coalesced: 0,
    },
    counts,
    admit() {
      if (closed) {
        throw new HubClosedError("Cannot subscribe: the hub is closed");
      }
      if (counts.websocket + counts.sse >= settings.maxSubscribers) {
        throw new RangeError(
          `Cannot subscribe: the instance has its maximum of ${settings.maxSubscribers} subscribers`,
        );
      }
    },
  };
  return {
    stats: core.stats,
    options: settings,
    counts,
    addTopic(path, epoch) {
      let topic = topics.get(path);
      if (topic === undefined) {
        topic = new Topic(path, epoch, core);
        topics.set(path, topic);
      }
      return topic;
    },
    topic: (path) => topics.get(path),
    topics: () => [...topics.values()],
    removeTopic(path) {
      const topic = topics.get(path);
      if (topic === undefined) return false;
      topics.delete(path);
      topic.closeAll(1001, "topic removed");
      return true;
    },
    get hasRoom() {
      return !closed && counts.websocket + counts.sse < settings.maxSubscribers;
    },
    close(code, reason) {
      closed = true;
      for (const topic of topics.values()) topic.closeAll(code, reason);
    },
  };
}

function definedOnly<T extends object>(value: T): Partial<T> {
  return Object.fromEntries(
    Object.entries(value).filter(([, v]) => v !== undefined),
  ) as Partial<T>;
}
