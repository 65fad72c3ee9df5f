/**
 * Listen addresses and upstream URLs. Pure.
 *
 * @module
 */

import { UsageError } from "./errors.ts";
import { redactText } from "./redact.ts";

/** A listen address. */
export interface Address {
  /** Host to bind: a name, an IPv4 address, or an IPv6 address without brackets. */
  hostname: string;
  /** The host as written in a URL (IPv6 in brackets). */
  host: string;
  /** Port, 0 for any free port. */
  port: number;
}

const HOSTNAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
const IPV6 = /^[0-9A-Fa-f:.]+(%[A-Za-z0-9_.-]+)?$/;

/**
 * Parses `host:port`, `:port` (every interface) or `[ipv6]:port`.
 *
 * @example Usage
 * ```ts
 * import { parseAddress } from "../mod.ts";
 * console.log(parseAddress("[::1]:8080").hostname); // "::1"
 * ```
 *
 * @param text The address.
 * @param flag The flag it came from, for the message.
 * @returns The address.
 * @throws {UsageError} When it is not an address.
 */
export function parseAddress(text: string, flag = "serve-address"): Address {
  const fail = (why: string): never => {
    throw new UsageError(
      `Cannot parse flag -${flag}: ${why}, received "${redactText(text)}"`,
    );
  };
  const match = /^(?:\[([^\]]*)\]|([^:[\]]*)):([^:]*)$/.exec(text);
  if (match === null) return fail("expected host:port, :port or [ipv6]:port");
  const [, v6, name, portText] = match;
  if (!/^[0-9]{1,5}$/.test(portText) || Number(portText) > 65535) {
    return fail("expected a port from 0 to 65535");
  }
  const port = Number(portText);
  if (v6 !== undefined) {
    if (!IPV6.test(v6) || !v6.includes(":")) {
      return fail("expected an IPv6 address in brackets");
    }
    return { hostname: v6, host: `[${v6}]`, port };
  }
  if (name === "") return { hostname: "0.0.0.0", host: "0.0.0.0", port };
  if (!HOSTNAME.test(name)) return fail("expected a host name or IP address");
  return { hostname: name, host: name, port };
}

/**
 * Checks an upstream URL: ws:// or wss:// for WebSocket, http:// or https://
 * for Server-Sent Events.
 *
 * @param text The URL.
 * @param flag The flag it came from, for the message.
 * @returns The URL.
 * @throws {UsageError} When it is not such a URL.
 */
export function parseUpstreamUrl(text: string, flag = "consume-url"): URL {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(
      `Cannot parse flag -${flag}: expected a URL such as ws://localhost:8080/events, received "${
        redactText(text)
      }"`,
    );
  }
  if (!["ws:", "wss:", "http:", "https:"].includes(url.protocol)) {
    throw new UsageError(
      `Cannot parse flag -${flag}: expected a ws, wss, http or https URL, received "${
        redactText(text)
      }"`,
    );
  }
  return url;
}
