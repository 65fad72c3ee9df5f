/**
 * The Deno adapter: Deno.serve and hono/deno's WebSocket upgrade.
 *
 * @module
 */

import { upgradeWebSocket } from "hono/deno";
import { createSocketSink, type SocketOps } from "../http/socket_sink.ts";
import type { WebSocketSupport } from "../http/types.ts";
import {
  listenError,
  onceOnSignals,
  type RunningServer,
  type Runtime,
  type ServeOptions,
} from "./types.ts";

// A class, not closures: an idle subscriber costs one small object.
class DenoSocketOps implements SocketOps {
  #socket: WebSocket;

  constructor(socket: WebSocket) {
    this.#socket = socket;
  }

  text(text: string): void {
    this.#socket.send(text);
  }

  binary(bytes: Uint8Array): void {
    this.#socket.send(bytes as Uint8Array<ArrayBuffer>);
  }

  buffered(): number {
    return this.#socket.bufferedAmount;
  }

  close(code: number, reason: string): void {
    if (this.#socket.readyState <= 1) this.#socket.close(code, reason);
  }
}

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
      createSocketSink(new DenoSocketOps(raw as WebSocket), format),
  };
}

function serve(
  fetch: (request: Request) => Response | Promise<Response>,
  options: ServeOptions,
): Promise<RunningServer> {
  return new Promise((resolve, reject) => {
    let server: Deno.HttpServer<Deno.NetAddr>;
    try {
      server = Deno.serve({
        hostname: options.hostname,
        port: options.port,
        onListen(address) {
          resolve({
            hostname: address.hostname,
            port: address.port,
            shutdown: () => server.shutdown(),
          });
        },
      }, fetch);
    } catch (error) {
      reject(listenError(error, `${options.hostname}:${options.port}`));
    }
  });
}

/** The Deno runtime adapter. */
export const runtime: Runtime = {
  name: "deno",
  websocketSupport,
  serve,
  onShutdownSignal: (handler) =>
    onceOnSignals(
      (signal, listener) => Deno.addSignalListener(signal, listener),
      handler,
    ),

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
};
