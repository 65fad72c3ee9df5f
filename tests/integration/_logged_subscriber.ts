/**
 * A subscriber through the client module (reconnect, resume) that logs
 * what it gets, for the fault tests: event ids, "GAP" where a gap notice
 * came, and how many times its connection opened.
 *
 * @module
 */

import { connectUpstream, type Upstream } from "../../src/upstream.ts";
import { waitFor } from "./_helpers.ts";

/** A logging subscriber. */
export interface LoggedSubscriber {
  name: string;
  /** Event ids, with "GAP" where a gap notice came. */
  log: string[];
  /** Times its connection opened. */
  opened: number;
  upstream: Upstream;
}

/** Subscribes to `url` with `heartbeatMs` and a 500 ms reconnect cap. */
export function subscribeLogged(
  name: string,
  url: string,
  heartbeatMs: number,
): LoggedSubscriber {
  const subscriber: LoggedSubscriber = {
    name,
    log: [],
    opened: 0,
    upstream: undefined as unknown as Upstream,
  };
  subscriber.upstream = connectUpstream({
    url: new URL(url),
    heartbeatMs,
    maxDelayMs: 500,
    onEvent: (event) => void subscriber.log.push(event.id ?? "?"),
    onGap: () => void subscriber.log.push("GAP"),
    onState: (state) => {
      if (state === "open") subscriber.opened++;
    },
  });
  return subscriber;
}

/**
 * Subscribes over WebSocket and SSE to `host:port/path` (`at`), adds both
 * to `into` (so a caller's cleanup sees them even if the wait fails), and
 * waits until both are connected.
 */
export async function subscribeWsAndSse(
  at: string,
  heartbeatMs: number,
  into: LoggedSubscriber[],
): Promise<void> {
  into.push(
    subscribeLogged("ws", `ws://${at}`, heartbeatMs),
    subscribeLogged("sse", `http://${at}`, heartbeatMs),
  );
  await waitFor(
    () => into.every((s) => s.upstream.connected),
    15_000,
    "subscribers connected",
  );
}
