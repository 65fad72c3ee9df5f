/**
 * A minimal TCP client for the load client's raw subscribers: `Bun.connect`
 * on Bun (native handlers, no stream machinery per read), `node:net`
 * elsewhere.
 *
 * @module
 */

import { connect } from "node:net";
import type { Buffer } from "node:buffer";

/** Receives what happens on a connection; its fields may be replaced at any time. */
export interface TcpSink {
  onData(chunk: Buffer): void;
  /** Called at most once, when the connection ends for any reason. */
  onEnd(reason: string): void;
}

/** An open connection. */
export interface TcpLink {
  write(bytes: Uint8Array | string): void;
  destroy(): void;
}

/** The part of a Bun socket this file uses. */
interface BunSocket {
  data: TcpSink;
  write(bytes: Uint8Array | string): number;
  setNoDelay?(noDelay: boolean): boolean;
  terminate(): void;
}

/** The part of Bun's socket handlers this file uses. */
interface BunHandlers {
  data(socket: BunSocket, chunk: Buffer): void;
  close(socket: BunSocket): void;
  end(socket: BunSocket): void;
  error(socket: BunSocket, error: Error): void;
  connectError(socket: BunSocket, error: Error): void;
}

/** The part of the `Bun` global this file uses. */
interface BunGlobal {
  connect(
    options: {
      hostname: string;
      port: number;
      data: TcpSink;
      socket: BunHandlers;
    },
  ): Promise<BunSocket>;
}

const bun = (globalThis as unknown as { Bun?: BunGlobal }).Bun;

function endOnce(sink: TcpSink): TcpSink {
  let ended = false;
  return {
    onData: (chunk) => sink.onData(chunk),
    onEnd: (reason) => {
      if (ended) return;
      ended = true;
      sink.onEnd(reason);
    },
  };
}

// Bun recommends one handler object for all sockets, with per-socket state
// in `socket.data`.
const BUN_HANDLERS: BunHandlers = {
  data: (socket, chunk) => socket.data.onData(chunk),
  close: (socket) => socket.data.onEnd("connection closed"),
  end: (socket) => socket.data.onEnd("connection closed by the server"),
  error: (socket, error) =>
    socket.data.onEnd(`connection error: ${error.message}`),
  connectError: () => {},
};

/**
 * Connects to `host:port`.
 *
 * @param host Host name or address.
 * @param port TCP port.
 * @param sink Receives data and the end; read through, so its fields can change later.
 * @returns The open connection.
 */
export async function connectTcp(
  host: string,
  port: number,
  sink: TcpSink,
): Promise<TcpLink> {
  const once = endOnce(sink);
  if (bun !== undefined) {
    const socket = await bun.connect({
      hostname: host,
      port,
      data: once,
      socket: BUN_HANDLERS,
    });
    socket.setNoDelay?.(true);
    return {
      write: (bytes) => socket.write(bytes),
      destroy: () => socket.terminate(),
    };
  }
  const socket = connect({ host, port });
  socket.setNoDelay(true);
  await new Promise<void>((resolve, reject) => {
    socket.once("connect", resolve);
    socket.once("error", reject);
  });
  socket.on("data", (chunk: Buffer) => once.onData(chunk));
  socket.on(
    "error",
    (error: Error) => once.onEnd(`connection error: ${error.message}`),
  );
  socket.on("close", () => once.onEnd("connection closed"));
  return {
    write: (bytes) => socket.write(bytes),
    destroy: () => socket.destroy(),
  };
}
