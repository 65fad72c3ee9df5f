/**
 * The HTML answers: the live view of a stream and the index page, each with
 * a Content-Security-Policy nonce of its own.
 *
 * @module
 */

import type { Hub, Topic } from "../hub.ts";
import type { UpstreamStatus } from "./types.ts";
import {
  pageContentSecurityPolicy,
  renderIndexPage,
  renderStreamPage,
} from "./view_page.ts";

/**
 * True for a browser navigation: HTML accepted, no upgrade, no SSE asked.
 *
 * @param request The request.
 * @returns Whether to answer with a page.
 */
export function wantsHtml(request: Request): boolean {
  if (request.headers.has("upgrade")) return false;
  const accept = request.headers.get("accept") ?? "";
  return accept.includes("text/html") && !accept.includes("text/event-stream");
}

/** Topics listed on the index page at most. */
const MAX_INDEX_TOPICS = 200;

function htmlResponse(html: string, nonce: string): Response {
  return new Response(html, {
    headers: {
      "Content-Type": "text/html; charset=utf-8",
      "Content-Security-Policy": pageContentSecurityPolicy(nonce),
      "Cache-Control": "no-store",
      "X-Content-Type-Options": "nosniff",
      "Referrer-Policy": "no-referrer",
    },
  });
}

function createNonce(): string {
  return crypto.randomUUID().replaceAll("-", "");
}

/**
 * The live view of one stream.
 *
 * @param topic The stream.
 * @param tokenRequired Whether subscribing or publishing needs a token.
 * @returns The page.
 */
export function streamPageResponse(
  topic: Pick<Topic, "path">,
  tokenRequired: boolean,
): Response {
  const nonce = createNonce();
  return htmlResponse(
    renderStreamPage({
      path: topic.path,
      publishAllowed: true,
      tokenRequired,
      nonce,
    }),
    nonce,
  );
}

/**
 * The index of an instance's paths.
 *
 * @param hub The hub.
 * @param upstreams Relay upstreams, by the path they feed.
 * @param version The wsevent version.
 * @returns The page.
 */
export function indexPageResponse(
  hub: Hub,
  upstreams: readonly UpstreamStatus[],
  version: string,
): Response {
  const nonce = createNonce();
  // Bounded: topics created on demand may be thousands; the fixed paths
  // come first, as they were added first.
  const paths = hub.topics().slice(0, MAX_INDEX_TOPICS).map((topic) => {
    const upstream = upstreams.find((u) => u.path === topic.path);
    return {
      path: topic.path,
      subscribers: { ...topic.counts },
      buffered: topic.buffered,
      capacity: topic.capacity,
      bufferedBytes: topic.bufferedBytes,
      upstream: upstream && {
        url: upstream.url,
        connected: upstream.connected,
        reconnects: upstream.reconnects,
      },
    };
  });
  return htmlResponse(renderIndexPage({ version, paths }, { nonce }), nonce);
}
