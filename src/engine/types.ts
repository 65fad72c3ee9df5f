/**
 * The engine seam: where the truth of each topic lives.
 *
 * An engine owns the log of every topic it serves: it gives each appended
 * event its id, keeps the history and delivers new entries live. The hub
 * stays what it is (subscribers, channels, coalescing, the slow-consumer
 * policy and a cache of the newest events per topic); it is fed by the
 * engine and asks it for history it no longer holds.
 *
 * The seam is four things:
 * - {@link Engine.append}: store an event, answer its id once stored;
 * - live delivery: after {@link Engine.open}, every new entry of the topic
 *   (appended on this instance or any other) reaches `Topic.ingest`, in
 *   order, once; a loss the engine notices reaches `Topic.notifyGap`;
 * - {@link TopicHistory.range}: the entries after an id (resume, backfill);
 * - the topic's epoch, in each id (`<epoch>-<seq>`): it changes when the
 *   engine lost data, so a resume across it gets a gap notice.
 *
 * Two engines implement it: `memory` (the default: the hub's own replay
 * buffer is the log, ids come from the process) and `redis` (a stream per
 * topic, ids from Redis, shared by every instance on the same Redis).
 * Topics can be opened and released at any time, so topics created on
 * demand fit the same seam.
 *
 * @module
 */

import type { EventData, EventIdParts } from "../event.ts";
import type { Topic } from "../hub.ts";

/** State of an engine's connection to its store, for `/readyz` and `/metrics`. */
export interface EngineStatus {
  /** True while the engine can store and read events. */
  readonly connected: boolean;
  /** Connections to the store lost so far. */
  readonly reconnects: number;
  /** Appends that failed (answered 503). */
  readonly publishErrors: number;
  /** Seconds between an append and its live delivery here, for the last event read. */
  readonly readLagSeconds: number;
  /**
   * Why the engine is not connected, when it knows (shown on `/readyz`):
   * e.g. `Redis refuses redis://app:***@db:6379: WRONGPASS ...`.
   */
  readonly problem?: string;
}

/** One entry of a topic's log. */
export interface LogEntry {
  /** The id's parts. */
  readonly id: EventIdParts;
  /** The payload. */
  readonly data: EventData;
}

/** What {@link TopicHistory.range} found. */
export interface HistoryRange {
  /**
   * The topic's epoch in the store now, or null when the store holds no
   * log for the topic (nothing published yet, Redis lost it, or nothing
   * was published for the history TTL plus 30 days).
   */
  readonly epoch: string | null;
  /**
   * Entries in order. After an id of the current epoch: the entries that
   * follow it. After an id of another epoch, or without one: the log from
   * its oldest entry still kept.
   */
  readonly entries: readonly LogEntry[];
  /**
   * True when the id resumed from is of the current epoch but beyond
   * anything the log holds: the subscriber gets a gap notice, then
   * `entries` (the log from its oldest entry).
   */
  readonly unknown?: boolean;
}

/** A topic's history held by an engine, older than the hub's cache. */
export interface TopicHistory {
  /**
   * Reads the log after an id.
   *
   * @param after The last id the subscriber has, or undefined for the whole log.
   * @returns The entries that follow, with the epoch they belong to.
   * @throws {EngineUnavailableError} When the store cannot be read.
   */
  range(after: EventIdParts | undefined): Promise<HistoryRange>;
}

/** An engine: the log of every topic it serves. */
export interface Engine {
  /** `"memory"` or `"redis"`. */
  readonly name: string;
  /** Connection state, or undefined for an engine without a store (memory). */
  readonly status: EngineStatus | undefined;
  /**
   * Starts serving a topic: its new entries reach `topic.ingest` from now
   * on, and the topic reads older history through the engine.
   *
   * @param topic The hub's topic.
   */
  open(topic: Topic): void;
  /**
   * For a topic just opened: a promise that settles once events appended
   * anywhere from then on are sure to reach it. A subscriber let in after
   * it misses nothing published after its subscription was answered.
   *
   * @param topic A topic given to {@link Engine.open}.
   * @returns The promise, or undefined when there is nothing to wait for
   *   (the usual case: a topic open for a while, or the memory engine).
   */
  opened?(topic: Topic): Promise<void> | undefined;
  /**
   * Stops serving a topic (an on-demand topic that went idle).
   *
   * @param topic The topic given to {@link Engine.open}.
   */
  release(topic: Topic): void;
  /**
   * Appends an event to a topic's log.
   *
   * @param topic An open topic.
   * @param data The payload.
   * @returns The event's id once stored (synchronously where the store is
   *   the process itself).
   * @throws {EngineUnavailableError} When the store cannot take it (the
   *   promise rejects).
   */
  append(topic: Topic, data: EventData): string | Promise<string>;
  /** Stops reading, closes the store's connections. */
  close(): Promise<void>;
}

/**
 * The engine cannot reach its store: a publish answers 503.
 *
 * @example Telling a refused append from other failures
 * ```ts
 * import { EngineUnavailableError } from "../../mod.ts";
 * const error = new EngineUnavailableError("Cannot publish: Redis is unreachable");
 * console.log(error instanceof EngineUnavailableError, error.code); // true "engine_unavailable"
 * ```
 */
export class EngineUnavailableError extends Error {
  /** Stable code for clients. */
  readonly code = "engine_unavailable";
  /**
   * Creates the error.
   *
   * @param message What failed, naming the store (never its password).
   * @param options The underlying error.
   */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "EngineUnavailableError";
  }
}
