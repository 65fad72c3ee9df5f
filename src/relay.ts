/**
 * A relay: consumes an upstream stream and re-serves it on a topic, keeping
 * the upstream's ids. Web APIs only.
 *
 * @module
 */

import { parseEventId } from "./event.ts";
import type { Topic } from "./hub.ts";
import {
  connectUpstream,
  type Upstream,
  type UpstreamState,
} from "./upstream.ts";

/** The longest upstream id a relayed gap notice keeps. */
const MAX_ID_LENGTH = 128;
/** The longest upstream reason a relayed gap notice keeps. */
const MAX_REASON_LENGTH = 256;

/** Options of {@link startRelay}. */
export interface RelayOptions {
  /** The upstream: ws(s):// or http(s):// for SSE. */
  url: URL;
  /** Token presented to the upstream. @default {null} */
  token?: string | null;
  /** The upstream's heartbeat period. @default {15000} */
  heartbeatMs?: number;
  /** Largest upstream message. @default {16777216} */
  maxMessageBytes?: number;
  /** Largest event payload relayed, in bytes after decoding. @default {maxMessageBytes} */
  maxEventBytes?: number;
  /** Opens the upstream WebSocket. @default {the global WebSocket} */
  createWebSocket?(url: string, maxMessageBytes: number): WebSocket;
  /** Connection state changes, with a line to log. */
  onState?(state: UpstreamState, detail: string): void;
  /** An event over `maxEventBytes` was dropped (subscribers get a gap notice). */
  onDropped?(bytes: number): void;
}

/**
 * Starts relaying `options.url` into `topic`. Events with ids keep them;
 * an upstream that gives no ids (such as the original Go service) makes
 * this relay their origin. On its first connection the relay asks for the
 * upstream's whole buffer, so it can serve resumes at once; afterwards it
 * resumes from the last id it saw.
 *
 * @example Usage
 * ```ts ignore
 * import { createHub, startRelay } from "../mod.ts";
 * const topic = createHub().addTopic("proxy-events", "r1");
 * const relay = startRelay(topic, { url: new URL("ws://localhost:8080/events") });
 * relay.close();
 * ```
 *
 * @param topic Where events go.
 * @param options The upstream.
 * @returns The running upstream consumer.
 */
export function startRelay(topic: Topic, options: RelayOptions): Upstream {
  return connectUpstream({
    url: options.url,
    token: options.token,
    heartbeatMs: options.heartbeatMs,
    maxMessageBytes: options.maxMessageBytes,
    maxEventBytes: options.maxEventBytes,
    createWebSocket: options.createWebSocket,
    onDropped: options.onDropped,
    lastEventId: topic.lastId !== null && parseEventId(topic.lastId)
      ? topic.lastId
      : null,
    replayAll: true,
    onState: options.onState,
    onEvent(event) {
      const parts = event.id === null ? undefined : parseEventId(event.id);
      if (parts === undefined) topic.publish(event.data);
      else topic.ingest(parts, event.data);
    },
    // An upstream's notice goes to every subscriber here: only with an id
    // of an id's length (ours are under 50) and a reason of a line's.
    onGap: (notice) =>
      topic.notifyGap({
        lastEventId: notice.lastEventId !== null &&
            notice.lastEventId.length <= MAX_ID_LENGTH
          ? notice.lastEventId
          : null,
        reason: notice.reason.length <= MAX_REASON_LENGTH
          ? notice.reason
          : `${notice.reason.slice(0, MAX_REASON_LENGTH)}...`,
      }),
  });
}
