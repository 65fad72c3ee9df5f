/**
 * Topics on demand: a served pattern (`rooms/*`) serves every valid path
 * below its prefix as a topic of its own, created on first publish or
 * subscribe through the engine, bounded in number, and dropped with its
 * buffer when idle (no subscribers and nothing published for the TTL).
 *
 * @module
 */

import type { Engine } from "./engine/types.ts";
import { createEpoch } from "./event.ts";
import type { Hub, Topic } from "./hub.ts";
import { matchesPattern } from "./pattern.ts";

/** Longest topic name (path) accepted below a pattern. */
export const MAX_TOPIC_NAME_CHARS = 200;

const SEGMENT = /^[A-Za-z0-9._~:@-]+$/;

/** Options of {@link createTopicPatterns}. */
export interface TopicPatternsOptions {
  /** Patterns served: `prefix/*`, or `*` for every path. */
  patterns: readonly string[];
  /** The hub the topics live in. */
  hub: Hub;
  /** The engine that opens and releases their logs. */
  engine: Engine;
  /** Topics created on demand that may exist at once. @default {1000} */
  maxTopics?: number;
  /** Idle time after which a topic is dropped, ms; 0 never drops. @default {300000} */
  ttlMs?: number;
  /**
   * Called once a topic exists (a relay starts consuming its upstream).
   * @default {undefined}
   */
  onCreate?(topic: Topic): void;
  /** Called once a topic is dropped (a relay stops consuming). @default {undefined} */
  onDrop?(topic: Topic): void;
  /**
   * Whether publishes count as activity (not on a relay, whose upstream
   * keeps publishing whether anyone listens or not). @default {true}
   */
  publishKeepsAlive?: boolean;
  /** The clock, ms (tests). @default {Date.now} */
  now?: () => number;
}

/**
 * Refusal of an on-demand topic: a bad name (400) or the limit (503).
 *
 * @example Usage
 * ```ts
 * import { TopicRefusedError } from "./topics.ts";
 * const error = new TopicRefusedError(503, "Cannot create topic: at the limit");
 * console.log(error.status, error.code); // 503 "topic_limit"
 * ```
 */
export class TopicRefusedError extends Error {
  /** HTTP status for the client. */
  readonly status: 400 | 503;
  /** Stable code for clients. */
  readonly code: "bad_topic" | "topic_limit";
  /**
   * Creates the error.
   *
   * @param status 400 or 503.
   * @param message What is wrong.
   */
  constructor(status: 400 | 503, message: string) {
    super(message);
    this.name = "TopicRefusedError";
    this.status = status;
    this.code = status === 400 ? "bad_topic" : "topic_limit";
  }
}

/** Counts for metrics, per pattern. */
export interface PatternStats {
  /** The pattern. */
  pattern: string;
  /** Topics of this pattern now. */
  topics: number;
  /** Their subscribers. */
  subscribers: number;
  /** Events in their replay buffers. */
  buffered: number;
  /** Payload bytes in their replay buffers. */
  bufferedBytes: number;
}

/** The on-demand topics of an instance. */
export interface TopicPatterns {
  /** The patterns served. */
  readonly patterns: readonly string[];
  /** Topics created so far. */
  readonly created: number;
  /** Topics dropped for being idle so far. */
  readonly dropped: number;
  /** New topics refused at the limit so far. */
  readonly refused: number;
  /** The limit on topics created on demand. */
  readonly maxTopics: number;
  /**
   * The pattern that serves a path, if any.
   *
   * @param path The path without a leading slash.
   */
  patternOf(path: string): string | undefined;
  /**
   * Whether a topic was created on demand (it is counted per pattern).
   *
   * @param topic A hub topic.
   */
  owns(topic: Topic): boolean;
  /**
   * The topic at `path`, created when new; an existing one counts as
   * active from now (a request is on its way to it).
   *
   * @param path A path that {@link patternOf} matches.
   * @returns The topic.
   * @throws {TopicRefusedError} For a bad name (400) or at the limit (503).
   */
  obtain(path: string): Topic;
  /** Drops topics idle for the TTL; called every quarter TTL by the owner. */
  sweep(): void;
  /** Counts per pattern, for metrics. */
  stats(): PatternStats[];
  /** Releases every topic's log (shutdown). */
  close(): void;
}

/**
 * Checks a topic name below a pattern.
 *
 * @example Usage
 * ```ts
 * import { topicNameProblem } from "./topics.ts";
 * console.log(topicNameProblem("rooms/42")); // null
 * console.log(topicNameProblem("rooms/../etc")); // "Cannot use topic ...: ..."
 * ```
 *
 * @param path The decoded path, without a leading slash.
 * @returns A problem in words, or null when the name is fine.
 */
export function topicNameProblem(path: string): string | null {
  const quoted = JSON.stringify(
    path.slice(0, 60) + (path.length > 60 ? "…" : ""),
  );
  if (path.length > MAX_TOPIC_NAME_CHARS) {
    return `Cannot use topic ${quoted}: names have at most ${MAX_TOPIC_NAME_CHARS} characters, received ${path.length}`;
  }
  for (const segment of path.split("/")) {
    if (segment === "") {
      return `Cannot use topic ${quoted}: empty path segment`;
    }
    if (segment === "." || segment === "..") {
      return `Cannot use topic ${quoted}: "." and ".." are not topic names`;
    }
    if (!SEGMENT.test(segment)) {
      return `Cannot use topic ${quoted}: expected letters, digits and . _ ~ : @ - between slashes`;
    }
  }
  return null;
}

interface Tracked {
  pattern: string;
  lastActive: number;
  lastId: string | null;
}

/**
 * Creates the registry of topics served by patterns.
 *
 * @example Usage
 * ```ts
 * import { createHub, createMemoryEngine } from "../mod.ts";
 * import { createTopicPatterns } from "./topics.ts";
 * const hub = createHub();
 * const topics = createTopicPatterns({
 *   patterns: ["rooms/*"],
 *   hub,
 *   engine: createMemoryEngine(),
 * });
 * const room = topics.obtain("rooms/42");
 * console.log(room.path, hub.topic("rooms/42") === room); // "rooms/42" true
 * ```
 *
 * @param options Patterns, hub, engine and limits.
 * @returns The registry.
 */
export function createTopicPatterns(
  options: TopicPatternsOptions,
): TopicPatterns {
  const { hub, engine, patterns } = options;
  const maxTopics = options.maxTopics ?? 1000;
  const ttlMs = options.ttlMs ?? 300_000;
  const now = options.now ?? Date.now;
  const keepAlive = options.publishKeepsAlive ?? true;
  const tracked = new Map<Topic, Tracked>();
  const counts = { created: 0, dropped: 0, refused: 0 };
  const patternOf = (path: string) =>
    patterns.find((pattern) => matchesPattern(pattern, path));

  const drop = (topic: Topic): void => {
    tracked.delete(topic);
    engine.release(topic);
    hub.removeTopic(topic.path);
    counts.dropped++;
    options.onDrop?.(topic);
  };

  return {
    patterns,
    get created() {
      return counts.created;
    },
    get dropped() {
      return counts.dropped;
    },
    get refused() {
      return counts.refused;
    },
    maxTopics,
    patternOf,
    owns: (topic) => tracked.has(topic),
    obtain(path) {
      const known = hub.topic(path);
      if (known !== undefined) {
        // A request on its way to it (a subscriber's upgrade, a publish):
        // not idle, so a sweep before it arrives does not drop it.
        const state = tracked.get(known);
        if (state !== undefined) state.lastActive = now();
        return known;
      }
      const pattern = patternOf(path);
      const problem = pattern === undefined
        ? `Cannot use topic "${path}": no served pattern covers it`
        : topicNameProblem(path);
      if (problem !== null) throw new TopicRefusedError(400, problem);
      if (tracked.size >= maxTopics) {
        counts.refused++;
        throw new TopicRefusedError(
          503,
          `Cannot create topic "${path}": the instance has its maximum of ${maxTopics} topics; idle ones are dropped after ${
            Math.round(ttlMs / 1000)
          } s`,
        );
      }
      // A new epoch for each new topic: a resume with an id from a
      // dropped one gets a gap notice, never a silent skip.
      const topic = hub.addTopic(path, createEpoch());
      engine.open(topic);
      tracked.set(topic, {
        pattern: pattern!,
        lastActive: now(),
        lastId: topic.lastId,
      });
      counts.created++;
      options.onCreate?.(topic);
      return topic;
    },
    sweep() {
      if (ttlMs <= 0) return;
      const time = now();
      for (const [topic, state] of tracked) {
        const published = keepAlive && topic.lastId !== state.lastId;
        state.lastId = topic.lastId;
        if (topic.subscribers > 0 || published) state.lastActive = time;
        else if (time - state.lastActive >= ttlMs) drop(topic);
      }
    },
    stats() {
      return patterns.map((pattern) => {
        const stats = {
          pattern,
          topics: 0,
          subscribers: 0,
          buffered: 0,
          bufferedBytes: 0,
        };
        for (const [topic, state] of tracked) {
          if (state.pattern !== pattern) continue;
          stats.topics++;
          stats.subscribers += topic.subscribers;
          stats.buffered += topic.buffered;
          stats.bufferedBytes += topic.bufferedBytes;
        }
        return stats;
      });
    },
    close() {
      for (const topic of tracked.keys()) engine.release(topic);
      tracked.clear();
    },
  };
}
