/**
 * The Deno adapter: Deno.serve and hono/deno's WebSocket upgrade, or, for
 * a server we start when allowed, Deno's node:http and node:net with the
 * Node adapter's upgrade (see {@link withNodeServer}).
 *
 * @module
 */

import { upgradeWebSocket } from "hono/deno";
import { checkTlsPair } from "./_tls.ts";
import { createSocketSink, type SocketOps } from "../http/socket_sink.ts";
import type { ProcessStats } from "../http/metrics.ts";
import type { WebSocketSupport } from "../http/types.ts";
import {
  exposedGc,
  listenError,
  onceOnSignals,
  type RunningServer,
  type Runtime,
  ServeError,
  type ServeOptions,
} from "./types.ts";

/** The sink's operations on a Deno WebSocket, shared by every subscriber. */
const denoOps: SocketOps<WebSocket> = {
  text: (socket, text) => socket.send(text),
  binary: (socket, bytes) => socket.send(bytes as Uint8Array<ArrayBuffer>),
  buffered: (socket) => socket.bufferedAmount,
  close(socket, code, reason) {
    if (socket.readyState <= 1) socket.close(code, reason);
  },
};

function websocketSupport(options: { heartbeatMs: number }): WebSocketSupport {
  return {
    upgradeWebSocket,
    // Deno pings a socket that has sent nothing for half of idleTimeout
    // seconds and closes it when no pong comes in the other half: the
    // runtime's own heartbeat. Each socket gets up to half a period more, at
    // random: sockets that connected together would otherwise all be pinged
    // in the same instant, and under load that stalls Deno's sends for
    // seconds (fan-out p99 5.1 s instead of 0.28 s in bench scenario a).
    upgradeOptions: () => {
      const seconds = Math.max(1, Math.ceil(options.heartbeatMs / 1000));
      return {
        idleTimeout: seconds + Math.floor(Math.random() * (seconds / 2 + 1)),
      };
    },
    createSink: (raw, format) =>
      createSocketSink(denoOps, raw as WebSocket, format),
  };
}

function serve(
  fetch: (request: Request) => Response | Promise<Response>,
  options: ServeOptions,
): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      if (options.tls !== undefined) checkTlsPair(options.tls);
      server = Deno.serve({
        hostname: options.hostname,
        port: options.port,
        // Over TLS Deno.serve offers HTTP/2 and HTTP/1.1 (ALPN). It cannot
        // change its certificate while serving: no setTls here (the CLI
        // with --allow-env serves through node:http2, which can).
        ...(options.tls ?? {}),
        onListen(address) {
          resolve({
            hostname: address.hostname,
            port: address.port,
            protocols: options.tls ? "h2, http/1.1" : "http/1.1",
            shutdown: () => server.shutdown(),
          });
        },
      }, fetch);
    } catch (error) {
      reject(
        options.tls !== undefined && !/in use|AddrInUse/i.test(String(error))
          ? new ServeError(`Cannot serve TLS: ${(error as Error).message}`, {
            cause: error,
          })
          : listenError(error, `${options.hostname}:${options.port}`),
      );
    }
  });
}

// What the ws package reads from the environment when it loads.
const WS_ENV = ["WS_NO_BUFFER_UTIL", "WS_NO_UTF_8_VALIDATE"];

/**
 * True when the Node adapter can load here: the ws package reads two
 * environment variables as it loads, which needs `--allow-env`.
 *
 * @returns Whether {@link withNodeServer} may be used.
 */
export function nodeServerAllowed(): boolean {
  return WS_ENV.every((variable) =>
    Deno.permissions.querySync({ name: "env", variable }).state === "granted"
  );
}

/**
 * The Deno adapter serving through Deno's node:http and node:net with the
 * Node adapter's WebSocket upgrade: there an event's frame is one shared
 * Buffer and the frames of one event-loop turn go out in one write per
 * socket, while `Deno.upgradeWebSocket` pays one op per frame per socket
 * (bench scenario a: about 1.3 million deliveries/s against 130 thousand;
 * scenario b: p99 about 20 ms against seconds). An app that another server
 * answers (`deno serve mod.ts`, an edge) still upgrades with hono/deno.
 *
 * @param node The Node adapter.
 * @returns The Deno adapter with Node's server and WebSocket support.
 */
export function withNodeServer(node: Runtime): Runtime {
  return {
    ...runtime,
    notice: undefined,
    websocketSupport: node.websocketSupport,
    serve: node.serve,
    fetchWebSocketSupport: websocketSupport,
  };
}

/** The Deno runtime adapter. */
export const runtime: Runtime = {
  name: "deno",
  notice:
    "serving with Deno.serve; with --allow-env, wsevent serves through node:http and ws instead, which fans out about ten times faster",
  websocketSupport,
  serve,
  onShutdownSignal: (handler) =>
    onceOnSignals(
      (signal, listener) => Deno.addSignalListener(signal, listener),
      handler,
    ),

  onReloadSignal(handler) {
    // Windows has no SIGHUP: there a certificate is loaded at start only.
    if (Deno.build.os !== "windows") Deno.addSignalListener("SIGHUP", handler);
  },
  stdout: (text) => void Deno.stdout.writeSync(new TextEncoder().encode(text)),
  stderr: (text) => void Deno.stderr.writeSync(new TextEncoder().encode(text)),
  exit: (code) => Deno.exit(code),
  args: () => [...Deno.args],
  env: () => {
    try {
      return Deno.env.toObject();
    } catch {
      // Without --allow-env: tokens come from flags only.
      return {};
    }
  },
  stderrIsTerminal: () => Deno.stderr.isTerminal(),
  readTextFile: (path) => Deno.readTextFile(path),
  processStats,
  collectOnSignal(collected) {
    const gc = exposedGc();
    if (gc === undefined) return false;
    Deno.addSignalListener("SIGUSR2", () => {
      gc();
      collected();
    });
    return true;
  },
};

function processStats(): ProcessStats {
  const memory = Deno.memoryUsage();
  const stats: ProcessStats = {
    rssBytes: memory.rss,
    heapUsedBytes: memory.heapUsed,
    heapTotalBytes: memory.heapTotal,
    externalBytes: memory.external,
  };
  // Only with read access there (--allow-read=/proc/self/fd): a query,
  // never a prompt.
  const fds = "/proc/self/fd";
  const access = Deno.permissions.querySync({ name: "read", path: fds });
  if (access.state === "granted") {
    try {
      let count = 0;
      for (const _ of Deno.readDirSync(fds)) count++;
      stats.openFds = count;
    } catch {
      // Not Linux.
    }
  }
  return stats;
}
