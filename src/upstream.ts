/**
 * A consumer of one upstream stream (WebSocket or SSE) that reconnects with
 * exponential backoff and jitter and resumes from the last id it saw. Used
 * by relays; the implementation is the client module's
 * (`src/client/_connect.ts`), so relays, the `subscribe` command, the
 * client and the live view share one reconnect and resume.
 *
 * @module
 */

export { connectUpstream } from "./client/_connect.ts";
export type {
  Upstream,
  UpstreamEvent,
  UpstreamOptions,
  UpstreamState,
} from "./client/_connect.ts";
