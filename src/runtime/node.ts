/**
 * The Node adapter: @hono/node-server 2 with its built-in WebSocket upgrade
 * over the `ws` package.
 *
 * @module
 */

import { serve as serveNode, upgradeWebSocket } from "@hono/node-server";
import process from "node:process";
import { type WebSocket, WebSocketServer } from "ws";
import { createSocketSink } from "../http/socket_sink.ts";
import type { WebSocketSupport } from "../http/types.ts";
import {
  listenError,
  type RunningServer,
  type Runtime,
  type ServeOptions,
} from "./types.ts";

let maxFrameBytes = 1 << 20;

function websocketSupport(
  options: { heartbeatMs: number; maxFrameBytes: number },
): WebSocketSupport {
  maxFrameBytes = options.maxFrameBytes;
  return {
    upgradeWebSocket,
    createSink(raw, format) {
      const socket = raw as WebSocket;
      // ws answers pings but never sends them: the heartbeat pings, and a
      // peer that did not pong since the last heartbeat is gone.
      let alive = true;
      socket.on("pong", () => (alive = true));
      return createSocketSink({
        text: (text, bytes) =>
          bytes ? socket.send(bytes, { binary: false }) : socket.send(text),
        binary: (bytes) => socket.send(bytes, { binary: true }),
        buffered: () => socket.bufferedAmount,
        close: (code, reason) => {
          if (socket.readyState <= 1) socket.close(code, reason);
        },
        ping() {
          if (!alive) return false;
          alive = false;
          socket.ping();
          return true;
        },
        terminate: () => socket.terminate(),
      }, format);
    },
  };
}

function serve(
  fetch: (request: Request) => Response | Promise<Response>,
  options: ServeOptions,
): Promise<RunningServer> {
  const wss = new WebSocketServer({
    noServer: true,
    maxPayload: maxFrameBytes,
  });
  return new Promise((resolve, reject) => {
    const server = serveNode({
      fetch,
      hostname: options.hostname,
      port: options.port,
      websocket: { server: wss },
    }, (info) => {
      resolve({
        hostname: info.address,
        port: info.port,
        shutdown: () =>
          new Promise<void>((done) => {
            for (const client of wss.clients) client.terminate();
            server.close(() => done());
            (server as { closeAllConnections?: () => void })
              .closeAllConnections?.();
          }),
      });
    });
    server.once(
      "error",
      (error) =>
        reject(listenError(error, `${options.hostname}:${options.port}`)),
    );
  });
}

/** The Node runtime adapter. */
export const runtime: Runtime = {
  name: "node",
  websocketSupport,
  serve,
  onShutdownSignal(handler) {
    let called = false;
    for (const signal of ["SIGINT", "SIGTERM"] as const) {
      process.on(signal, () => {
        if (!called) handler(signal);
        called = true;
      });
    }
  },
  stdout: (text) => void process.stdout.write(text),
  stderr: (text) => void process.stderr.write(text),
  exit: (code) => process.exit(code),
  args: () => process.argv.slice(2),
  env: () => process.env,
  stderrIsTerminal: () => process.stderr.isTTY === true,
};
