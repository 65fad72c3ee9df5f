/**
 * A relay of an upstream that gives no ids (the original Go service, any
 * plain WebSocket server, an SSE server without `id:` lines) becomes the
 * origin of those events: it gives them its own ids, so its subscribers get
 * them in order and can resume. The upstreams here are made by the test on
 * raw sockets, so they send exactly what such a server sends.
 */

import assert from "node:assert/strict";
import type { Socket } from "node:net";
import { describe, test } from "node:test";
import {
  connectSse,
  connectWs,
  type Service,
  startService,
  waitFor,
} from "./_helpers.ts";
import { encodeFrame } from "./_raw_ws.ts";
import {
  answerSse,
  answerUpgrade,
  listenRaw,
  onRequestHead,
} from "./_raw_server.ts";

/** An upstream without ids that sends what the test tells it to. */
interface IdlessUpstream {
  port: number;
  /** The request line of each accepted stream. */
  requests: string[];
  /** Sends a text payload (WebSocket text frame, or SSE `data:` lines). */
  sendText(text: string): void;
  /** Sends a binary frame (WebSocket only). */
  sendBinary(bytes: Uint8Array): void;
  close(): Promise<void>;
}

/**
 * Starts an upstream on 127.0.0.1 that speaks plain WebSocket (bare text and
 * binary frames, as the Go original does) or SSE with `data:` lines and no
 * `id:` field.
 */
function startIdlessUpstream(kind: "ws" | "sse"): Promise<IdlessUpstream> {
  const streams = new Set<Socket>();
  const requests: string[] = [];
  const write = (bytes: Uint8Array | string): void => {
    for (const socket of streams) socket.write(bytes);
  };
  return listenRaw((socket) => {
    socket.on("close", () => streams.delete(socket));
    onRequestHead(socket, (head) => {
      requests.push(head.slice(0, head.indexOf("\r\n")));
      if (kind === "ws") answerUpgrade(socket, head);
      else answerSse(socket, "close");
      streams.add(socket);
    });
  }).then((server) => ({
    port: server.port,
    requests,
    sendText(text) {
      if (kind === "ws") write(encodeFrame(1, text, { mask: false }));
      else {
        write(
          text.split("\n").map((line) => `data: ${line}\n`).join("") + "\n",
        );
      }
    },
    sendBinary(bytes) {
      assert.equal(kind, "ws", "SSE has no binary frames");
      write(encodeFrame(2, bytes, { mask: false }));
    },
    close: server.close,
  }));
}

interface Envelope {
  id?: string;
  data?: string;
  encoding?: string;
  type?: string;
}

const ID = /^([0-9a-z]+)-(\d+)$/;

/**
 * Sends `payloads` through the upstream and checks that the relay's JSON
 * subscriber gets each once, in order, with ids of one epoch numbered from
 * 0, and that an SSE subscriber resuming after the first id gets the rest.
 */
async function checkRelayIsOrigin(
  upstream: IdlessUpstream,
  relay: Service,
  payloads: (string | Uint8Array)[],
): Promise<void> {
  const json = connectWs(`${relay.url}?format=json`);
  let resumed: ReturnType<typeof connectSse> | undefined;
  try {
    await json.opened;
    await waitFor(
      () =>
        upstream.requests.length >= 1 && /connected to/.test(relay.stderr()),
      10_000,
      "the relay to connect to its upstream",
    );
    for (const payload of payloads) {
      if (typeof payload === "string") upstream.sendText(payload);
      else upstream.sendBinary(payload);
    }
    const events = (): Envelope[] =>
      json.messages.map((m) => JSON.parse(m) as Envelope).filter((m) =>
        m.type === undefined
      );
    await waitFor(
      () => events().length >= payloads.length,
      10_000,
      `${payloads.length} relayed events`,
    ).catch((error: Error) => {
      throw new Error(`${error.message}; got ${JSON.stringify(events())}`);
    });
    const got = events();
    assert.equal(got.length, payloads.length, "each event once");
    const ids = got.map((e) => ID.exec(e.id ?? ""));
    for (const [i, match] of ids.entries()) {
      assert.ok(match, `event ${i} has an id of the relay: ${got[i].id}`);
      assert.equal(match[1], ids[0]![1], "one epoch");
      assert.equal(Number(match[2]), i, "numbered from 0, in order");
    }
    assert.deepEqual(
      got.map((e) =>
        e.encoding === "base64"
          ? Uint8Array.from(atob(e.data!), (c) => c.charCodeAt(0))
          : e.data
      ),
      payloads,
    );
    // The relay is their origin: it can serve a resume after its own id.
    const text = got.filter((e) => e.encoding === undefined);
    resumed = connectSse(`${relay.http}/events`, {
      "Last-Event-ID": text[0].id!,
    });
    await waitFor(
      () => resumed!.messages.length >= got.length - 1,
      10_000,
      "the resumed SSE subscriber's replay",
    );
    assert.deepEqual(
      resumed.messages.map((m) => m.id),
      got.slice(1).map((e) => e.id),
      "replayed after the first id, no gap notice",
    );
  } finally {
    json.close();
    resumed?.close();
  }
}

describe("relays of upstreams without ids", { timeout: 60_000 }, () => {
  test("a relay of a plain WebSocket upstream (bare frames, no ids, the Go original's command line) gives the events its own ids, in order, and serves resumes", async () => {
    const upstream = await startIdlessUpstream("ws");
    let relay: Service | undefined;
    try {
      relay = await startService([
        "-consume-address",
        `127.0.0.1:${upstream.port}`,
        "-consume-path",
        "original-events",
        "-serve-address",
        "127.0.0.1:0",
        "-serve-path",
        "events",
        "-no-produce",
      ]);
      await checkRelayIsOrigin(upstream, relay, [
        "0: localhost:8080: AbCdEfGhIj\n",
        "1: localhost:8080: KlMnOpQrSt\n",
        new Uint8Array([0, 1, 2, 255]),
        '{"not":"an envelope"}',
      ]);
      assert.match(upstream.requests[0], /^GET \/original-events[?\s]/);
    } finally {
      await relay?.stop();
      await upstream.close();
    }
  });

  test("a relay of an SSE upstream that sends no id: lines gives the events its own ids, in order, and serves resumes", async () => {
    const upstream = await startIdlessUpstream("sse");
    let relay: Service | undefined;
    try {
      relay = await startService([
        "--consume-url",
        `http://127.0.0.1:${upstream.port}/feed`,
        "--serve-address",
        "127.0.0.1:0",
        "--no-produce",
      ]);
      await checkRelayIsOrigin(upstream, relay, [
        "first",
        "two\nlines",
        "third",
      ]);
      assert.match(upstream.requests[0], /^GET \/feed[?\s]/);
    } finally {
      await relay?.stop();
      await upstream.close();
    }
  });
});
