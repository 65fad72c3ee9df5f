/**
 * wsevent: event streams over plain HTTP connections, with no message
 * broker. A service serves a stream at a URL (WebSocket and Server-Sent
 * Events), consumers subscribe to the URL, relays chain streams, and any
 * reverse proxy balances consumers.
 *
 * @example Serve a hub with `deno serve mod.ts`
 * ```ts ignore
 * // deno serve --allow-net --allow-env mod.ts
 * // then: curl -N http://localhost:8000/events
 * //       curl -d hello http://localhost:8000/events
 * ```
 *
 * @module
 */

export { createHub, HubClosedError } from "./src/hub.ts";
export type {
  ChannelSend,
  Format,
  Hub,
  HubOptions,
  HubSettings,
  HubStats,
  Sink,
  SubscribeOptions,
  Subscription,
  Topic,
  Transport,
} from "./src/hub.ts";
export {
  createEpoch,
  formatEventId,
  formatSseEvent,
  parseEventId,
  parseJsonMessage,
  StreamEvent,
} from "./src/event.ts";
export type {
  EventData,
  EventIdParts,
  GapNotice,
  JsonMessage,
} from "./src/event.ts";
export { formatUsage, parseConfig, parseEnvConfig } from "./src/config.ts";
export type { Command, Config, LogLevel } from "./src/config.ts";
export { parseAddress, parseUpstreamUrl } from "./src/address.ts";
export type { Address } from "./src/address.ts";
export { UsageError } from "./src/errors.ts";
export { createSseParser } from "./src/sse_parser.ts";
export type {
  SseMessage,
  SseParser,
  SseParserHandlers,
} from "./src/sse_parser.ts";
export { formatDemoMessage, startProducer } from "./src/producer.ts";
export type { ProducerOptions } from "./src/producer.ts";
export { startRelay } from "./src/relay.ts";
export type { RelayOptions } from "./src/relay.ts";
export { connectUpstream } from "./src/upstream.ts";
export type {
  Upstream,
  UpstreamEvent,
  UpstreamOptions,
  UpstreamState,
} from "./src/upstream.ts";
export { createLogger } from "./src/log.ts";
export type { Logger } from "./src/log.ts";
export { edgeFetch } from "./src/edge.ts";
export { createStreams } from "./src/embed.ts";
export type { MountTarget, Streams, StreamsOptions } from "./src/embed.ts";

export { createMemoryEngine } from "./src/engine/memory.ts";
export { loadEngine } from "./src/engine/load.ts";
export type { LoadEngineOptions } from "./src/engine/load.ts";
export { EngineUnavailableError } from "./src/engine/types.ts";
export type {
  Engine,
  EngineStatus,
  HistoryRange,
  LogEntry,
  TopicHistory,
} from "./src/engine/types.ts";
export type { EngineConfig } from "./src/engine/config.ts";
export { createJwtAuthorizer, JwtError } from "./src/http/jwt.ts";
export {
  createTopicPatterns,
  topicNameProblem,
  TopicRefusedError,
} from "./src/topics.ts";
export type {
  PatternStats,
  TopicPatterns,
  TopicPatternsOptions,
} from "./src/topics.ts";
export { matchesPattern } from "./src/pattern.ts";
export { publisher, PublishUnconfirmedError } from "./src/client.ts";
export type { Publisher, PublisherOptions } from "./src/client.ts";
export type {
  JwtAction,
  JwtAuthorizer,
  JwtAuthorizerOptions,
  JwtGrant,
} from "./src/http/jwt.ts";

import { edgeFetch } from "./src/edge.ts";

/**
 * The handler `deno serve mod.ts` and Deno Deploy-style edges call: one
 * instance configured from `WSEVENT_*` environment variables.
 *
 * @example Usage
 * ```sh
 * WSEVENT_CONSUME_URL=ws://origin:8080/events WSEVENT_NO_PRODUCE=true \
 *   WSEVENT_FORWARD_PUBLISH=true deno serve --allow-net --allow-env mod.ts
 * ```
 */
const handler: { fetch(request: Request): Promise<Response> } = {
  fetch: edgeFetch,
};
export default handler;
