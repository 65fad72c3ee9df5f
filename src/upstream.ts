/**
 * A consumer of one upstream stream (WebSocket or SSE) that reconnects with
 * exponential backoff and jitter and resumes from the last id it saw. Used
 * by relays. The implementation is the client module's
 * (`src/client/_connect.ts`): relays, the `subscribe` command, the client
 * and the live view share one reconnect and resume.
 *
 * @module
 */

import {
  connectStream,
  type Upstream,
  type UpstreamOptions,
} from "./client/_connect.ts";

export type {
  Upstream,
  UpstreamEvent,
  UpstreamOptions,
  UpstreamState,
} from "./client/_connect.ts";

/**
 * Connects to an upstream and keeps reconnecting until closed. The retry
 * delay after the n-th failure in a row is drawn from [b/2, b] with
 * b = min(maxDelayMs, initialDelayMs * 2^n): the first retry comes within
 * 250 ms, later ones at most 5 s apart. An open connection resets n.
 *
 * @example Usage
 * ```ts ignore
 * import { connectUpstream } from "../mod.ts";
 * const upstream = connectUpstream({
 *   url: new URL("ws://localhost:8080/events"),
 *   onEvent: (event) => console.log(event.id, event.data),
 * });
 * upstream.close();
 * ```
 *
 * @param options Where and what to call.
 * @returns The running consumer.
 */
export function connectUpstream(options: UpstreamOptions): Upstream {
  return connectStream(options);
}
