import type { WSEvents } from "hono/ws";
import type { Context } from "hono";
import { createSocketSink } from "../../src/http/socket_sink.ts";
import type { WebSocketSink, WebSocketSupport } from "../../src/http/types.ts";

const STREAM_DEADLINE_MS = 5000;

/** Reads a response body as text, chunk by chunk, with a deadline. */
export class StreamReader {
  text = "";
  done = false;
  #reader: ReadableStreamDefaultReader<Uint8Array>;
  #decoder = new TextDecoder();

  constructor(response: Response) {
    if (response.body === null) throw new Error("The response has no body");
    this.#reader = response.body.getReader();
  }

  /** Reads until `predicate(text)` holds or the stream ends; throws after the deadline. */
  async until(predicate: (text: string) => boolean): Promise<string> {
    let timer: ReturnType<typeof setTimeout> | undefined;
    const deadline = new Promise<never>((_, reject) => {
      timer = setTimeout(
        () =>
          reject(
            new Error(`Timed out; read so far: ${JSON.stringify(this.text)}`),
          ),
        STREAM_DEADLINE_MS,
      );
    });
    try {
      while (!predicate(this.text) && !this.done) {
        const { done, value } = await Promise.race([
          this.#reader.read(),
          deadline,
        ]);
        if (done) this.done = true;
        else this.text += this.#decoder.decode(value, { stream: true });
      }
    } finally {
      clearTimeout(timer);
    }
    return this.text;
  }

  /** Reads to the end of the stream. */
  async end(): Promise<string> {
    return await this.until(() => false);
  }

  /** Stops reading: cancels the body (the server sees the client leave). */
  async cancel(): Promise<void> {
    await this.#reader.cancel();
  }
}

/** A frame written to a fake WebSocket. */
export type FakeFrame =
  | { kind: "text"; text: string }
  | { kind: "binary"; bytes: Uint8Array }
  | { kind: "close"; code: number; reason: string };

/** The raw socket of a fake WebSocket: what the app's sink wrote. */
export interface FakeRawSocket {
  frames: FakeFrame[];
  bufferedBytes: number;
}

/** The `ws` argument the app's event handlers get. */
export interface FakeWsContext {
  raw: FakeRawSocket;
  closes: { code?: number; reason?: string }[];
  close(code?: number, reason?: string): void;
}

/** One call of the fake upgrader. */
export interface UpgradeCall {
  events: WSEvents<FakeRawSocket>;
  options: unknown;
  /** Runs `onOpen` as a runtime would once the handshake is done. */
  open(): FakeWsContext;
}

/** WebSocket support that records upgrades instead of performing them. */
export interface FakeWebSocket {
  support: WebSocketSupport;
  calls: UpgradeCall[];
  sinks: WebSocketSink[];
}

/** Status of the fake upgrade response (a real one is 101, which Response refuses). */
export const FAKE_UPGRADE_STATUS = 299;

/** Makes a fake {@link WebSocketSupport} whose sockets write into arrays. */
export function fakeWebSocket(): FakeWebSocket {
  const calls: UpgradeCall[] = [];
  const sinks: WebSocketSink[] = [];
  const upgrade = (
    _c: Context,
    events: WSEvents<FakeRawSocket>,
    options?: unknown,
  ): Promise<Response> => {
    calls.push({
      events,
      options,
      open() {
        const ws: FakeWsContext = {
          raw: { frames: [], bufferedBytes: 0 },
          closes: [],
          close(code, reason) {
            ws.closes.push({ code, reason });
          },
        };
        // The app uses only raw and close(): a minimal fake stands in for WSContext.
        type Context = Parameters<NonNullable<typeof events.onOpen>>[1];
        events.onOpen?.(new Event("open"), ws as unknown as Context);
        return ws;
      },
    });
    return Promise.resolve(
      new Response(null, { status: FAKE_UPGRADE_STATUS }),
    );
  };
  const support: WebSocketSupport = {
    upgradeWebSocket:
      upgrade as unknown as WebSocketSupport["upgradeWebSocket"],
    upgradeOptions: () => ({ idleTimeout: 30 }),
    createSink(raw, format) {
      const socket = raw as FakeRawSocket;
      const sink = createSocketSink<FakeRawSocket>(
        {
          text: (to, text) => void to.frames.push({ kind: "text", text }),
          binary: (to, bytes) => void to.frames.push({ kind: "binary", bytes }),
          buffered: (to) => to.bufferedBytes,
          close: (to, code, reason) =>
            void to.frames.push({ kind: "close", code, reason }),
        },
        socket,
        format,
      );
      sinks.push(sink);
      return sink;
    },
  };
  return { support, calls, sinks };
}

/** Headers of a well-formed WebSocket handshake. */
export const UPGRADE_HEADERS: Readonly<Record<string, string>> = {
  upgrade: "websocket",
  connection: "Upgrade",
  "sec-websocket-key": "dGhlIHNhbXBsZSBub25jZQ==",
  "sec-websocket-version": "13",
};
