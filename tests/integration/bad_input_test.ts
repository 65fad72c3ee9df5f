/**
 * Bad input (issue 4): each with its expected answer, and the process still
 * serving afterwards (GET /healthz 200 and live subscribers still receiving).
 */

import assert from "node:assert/strict";
import process from "node:process";
import { after, before, describe, test } from "node:test";
import {
  connectSse,
  connectWs,
  RUNTIME,
  type Service,
  type SseClient,
  startHub,
  waitFor,
  type WsClient,
} from "./_helpers.ts";
import {
  createRandom,
  encodeFrame,
  metric,
  rawConnect,
  rawExchange,
  type RawWs,
} from "./_raw_ws.ts";

const MAX_BODY = 1024;

interface Envelope {
  id?: string;
  data?: string;
  type?: string;
  lastEventId?: string | null;
  reason?: string;
}

function seq(id: string): number {
  return Number(id.slice(id.lastIndexOf("-") + 1));
}

/** Two subscribers that stay connected through a whole describe block. */
interface Sentinels {
  json: WsClient;
  sse: SseClient;
  /** Events (not heartbeats or gaps) each one received. */
  events(): { json: Envelope[]; sse: { id: string; data: string }[] };
}

function watch(hub: Service): Sentinels {
  const json = connectWs(`${hub.url}?format=json`);
  const sse = connectSse(`${hub.http}/events`);
  return {
    json,
    sse,
    events: () => ({
      json: json.messages.map((m) => JSON.parse(m) as Envelope).filter((m) =>
        m.type === undefined
      ),
      sse: sse.messages.filter((m) =>
        m.event === "message" || m.event === "binary"
      ),
    }),
  };
}

/** Publishes `body` as text/plain and asserts it is accepted (202). */
async function publishOk(hub: Service, body: string): Promise<void> {
  const response = await fetch(`${hub.http}/events`, {
    method: "POST",
    body,
    headers: { "Content-Type": "text/plain" },
  });
  assert.equal(response.status, 202);
  await response.body?.cancel();
}

let probes = 0;

/** Asserts /healthz answers 200 and a fresh event reaches both sentinels. */
async function assertStillServing(
  hub: Service,
  sentinels: Sentinels,
): Promise<void> {
  const health = await fetch(`${hub.http}/healthz`);
  assert.equal(health.status, 200);
  await health.body?.cancel();
  const body = `probe-${++probes}`;
  await publishOk(hub, body);
  await waitFor(
    () => {
      const { json, sse } = sentinels.events();
      return json.some((e) => e.data === body) &&
        sse.some((e) => e.data === body);
    },
    5_000,
    `${body} on the live subscribers`,
  );
  assert.equal(sentinels.json.isClosed(), false);
}

async function subscriberCount(hub: Service): Promise<number> {
  return await metric(
    hub.http,
    "wsevent_subscribers",
    '{transport="websocket"}',
  ) + await metric(hub.http, "wsevent_subscribers", '{transport="sse"}');
}

async function waitForSubscribers(hub: Service, n: number): Promise<void> {
  const deadline = Date.now() + 5000;
  let count = await subscriberCount(hub);
  while (count !== n) {
    if (Date.now() > deadline) {
      throw new Error(`Expected ${n} subscribers, have ${count}`);
    }
    await new Promise((r) => setTimeout(r, 20));
    count = await subscriberCount(hub);
  }
}

/**
 * Sends `frames` on a fresh connection and waits for the connection to end,
 * at most `timeoutMs` (wide: a server that keeps the connection would
 * leave it open for good, so only a failing test waits that long).
 */
async function sendAndWaitEnd(
  hub: Service,
  frames: Uint8Array[],
  timeoutMs = 10_000,
): Promise<{ client: RawWs; ms: number }> {
  const client = await rawConnect(hub.url);
  const start = Date.now();
  for (const frame of frames) client.write(frame);
  let timer: ReturnType<typeof setTimeout> | undefined;
  await Promise.race([
    client.ended,
    new Promise((r) => (timer = setTimeout(r, timeoutMs))),
  ]);
  clearTimeout(timer);
  client.destroy();
  return { client, ms: Date.now() - start };
}

/**
 * Sends each case's frames on a fresh connection and asserts that the
 * server ends it with close code `code`; then that it still serves.
 */
async function assertEachClosedWith(
  hub: Service,
  sentinels: Sentinels,
  code: number,
  cases: [string, Uint8Array[]][],
): Promise<void> {
  for (const [name, frames] of cases) {
    const { client } = await sendAndWaitEnd(hub, frames);
    assert.equal(client.isEnded(), true, `${name}: connection ended`);
    assert.equal(client.closeFrame?.code, code, `${name}: close code`);
  }
  await assertStillServing(hub, sentinels);
}

function statusOf(answer: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1] ?? 0);
}

function bodyOf(answer: string): string {
  return answer.slice(answer.indexOf("\r\n\r\n") + 4);
}

describe("bad input", { timeout: 90_000 }, () => {
  let hub: Service;
  let sentinels: Sentinels;

  before(async () => {
    hub = await startHub([
      "--max-body",
      String(MAX_BODY),
    ]);
    sentinels = watch(hub);
    await Promise.all([sentinels.json.opened, sentinels.sse.headers]);
    await waitForSubscribers(hub, 2);
  });

  after(async () => {
    sentinels?.json.close();
    sentinels?.sse.close();
    await hub?.stop();
  });

  test("a POST over --max-body answers 413 (with Content-Length, chunked, or a Content-Length never sent)", async () => {
    const big = await fetch(`${hub.http}/events`, {
      method: "POST",
      body: "x".repeat(MAX_BODY + 1),
    });
    assert.equal(big.status, 413);
    assert.equal((await big.json()).code, "body_too_large");
    const exact = await fetch(`${hub.http}/events`, {
      method: "POST",
      body: "x".repeat(MAX_BODY),
      headers: { "Content-Type": "text/plain" },
    });
    assert.equal(exact.status, 202, "exactly --max-body is accepted");
    await exact.body?.cancel();
    const chunk = "y".repeat(800);
    const chunked = await rawExchange(
      hub.port,
      `POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\n` +
        `${chunk.length.toString(16)}\r\n${chunk}\r\n`.repeat(2) + "0\r\n\r\n",
      { timeoutMs: 3000 },
    );
    assert.equal(statusOf(chunked), 413, chunked);
    // A declared 100 MB body is refused without waiting for it: the rest
    // never comes, so a server that waited would not answer at all.
    const declared = await rawExchange(
      hub.port,
      `POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 100000000\r\n\r\nabc`,
      { timeoutMs: 10_000, quietMs: 5_000 },
    );
    assert.equal(statusOf(declared), 413, declared);
    assert.match(bodyOf(declared), /body_too_large/);
    await assertStillServing(hub, sentinels);
  });

  test("an incoming frame over --max-body is closed with 1009 (text, binary, fragmented)", async () => {
    const cases: [string, Uint8Array[]][] = [
      ["text", [encodeFrame(1, "t".repeat(MAX_BODY + 100))]],
      ["binary", [encodeFrame(2, new Uint8Array(MAX_BODY + 100))]],
      ["fragmented", [
        encodeFrame(1, "a".repeat(600), { fin: false }),
        encodeFrame(0, "b".repeat(600), { fin: false }),
        encodeFrame(0, "c".repeat(600)),
      ]],
    ];
    await assertEachClosedWith(hub, sentinels, 1009, cases);
  });

  test("a frame over --max-body closes with 1009 at its header, before its payload is read", async () => {
    // ws maxPayload (Node, and Deno's CLI on node:http) and Bun's
    // maxPayloadLength refuse at the header: 4 KB of a declared 10 MB.
    // (Under Deno.serve the frame is read first: deno_permissions_test.)
    const frame = encodeFrame(2, new Uint8Array(4096), {
      declaredLength: 10 << 20,
    });
    const { client, ms } = await sendAndWaitEnd(hub, [frame]);
    console.log(
      `[${RUNTIME}] 10 MB frame: ended ${client.isEnded()} after ${ms} ms, close ${
        JSON.stringify(client.closeFrame)
      }`,
    );
    assert.equal(
      client.isEnded(),
      true,
      "the server still waits for the 10 MB payload (it would buffer it)",
    );
    assert.equal(client.closeFrame?.code, 1009, "close code");
    await assertStillServing(hub, sentinels);
  });

  test("invalid UTF-8 in a text frame fails the connection with 1007", async () => {
    const cases: [string, Uint8Array[]][] = [
      ["whole", [encodeFrame(1, new Uint8Array([0x68, 0xff, 0xfe, 0x69]))]],
      ["split over fragments", [
        encodeFrame(1, new Uint8Array([0x68, 0xe2, 0x82]), { fin: false }),
        encodeFrame(0, new Uint8Array([0x41])),
      ]],
      ["overlong encoding", [encodeFrame(1, new Uint8Array([0xc0, 0xaf]))]],
      ["surrogate", [encodeFrame(1, new Uint8Array([0xed, 0xa0, 0x80]))]],
    ];
    await assertEachClosedWith(hub, sentinels, 1007, cases);
  });

  test("frames from subscribers are never broadcast to other subscribers", async () => {
    const publishedBefore = await metric(
      hub.http,
      "wsevent_events_published_total",
    );
    const before = sentinels.events();
    const talker = await rawConnect(hub.url);
    const jsonTalker = await rawConnect(`${hub.url}?format=json`);
    const listener = await rawConnect(hub.url);
    try {
      for (const client of [talker, jsonTalker]) {
        client.send(1, "hello everyone");
        client.send(1, '{"id":"x-1","data":"forged"}');
        client.send(2, new Uint8Array([1, 2, 3]));
        client.send(9, "ping");
        client.send(10, "unsolicited pong");
      }
      // Then one real event: it must be the only new thing anyone sees.
      await assertStillServing(hub, sentinels);
      await waitFor(
        () => listener.messages.length >= 1,
        5_000,
        "the probe on the raw listener",
      );
      assert.deepEqual(listener.messages, [`probe-${probes}`]);
      const now = sentinels.events();
      assert.deepEqual(
        now.json.slice(before.json.length).map((e) => e.data),
        [`probe-${probes}`],
      );
      assert.deepEqual(
        now.sse.slice(before.sse.length).map((e) => e.data),
        [`probe-${probes}`],
      );
      assert.deepEqual(talker.messages, [`probe-${probes}`]);
      assert.equal(
        await metric(hub.http, "wsevent_events_published_total"),
        publishedBefore + 1,
      );
      assert.equal(talker.isEnded(), false, "small frames are ignored");
    } finally {
      for (const client of [talker, jsonTalker, listener]) client.destroy();
    }
  });

  test("a malformed Last-Event-ID gets a gap notice, then what is buffered", async () => {
    await assertStillServing(hub, sentinels);
    const newest = sentinels.events().json.at(-1)!;
    for (
      const bad of [
        "garbage",
        "1-2-3",
        "-5",
        "zz-99999999999999999999999",
        // The longest accepted; over 128 characters: 400 (security_test).
        "x".repeat(128),
      ]
    ) {
      const sse = connectSse(`${hub.http}/events`, { "Last-Event-ID": bad });
      const ws = connectWs(
        `${hub.url}?format=json&lastEventId=${encodeURIComponent(bad)}`,
      );
      try {
        await waitFor(
          () =>
            sse.messages.some((m) => m.id === newest.id) &&
            ws.messages.some((m) => m.includes(`"${newest.id}"`)),
          5_000,
          `the buffer after ${bad.slice(0, 30)}`,
        );
        assert.equal(sse.messages[0].event, "gap", bad.slice(0, 30));
        const notice = JSON.parse(sse.messages[0].data) as Envelope;
        assert.equal(notice.lastEventId, bad);
        const first = JSON.parse(ws.messages[0]) as Envelope;
        assert.equal(first.type, "gap");
        assert.equal(first.lastEventId, bad);
      } finally {
        sse.close();
        ws.close();
      }
    }
    await assertStillServing(hub, sentinels);
  });

  test("unknown paths answer 404 with a JSON body; an undecodable path 400", async () => {
    for (
      const [method, path] of [
        ["GET", "/nope"],
        ["POST", "/nope"],
        ["GET", "/events/extra"],
        ["GET", "/events/"],
        ["DELETE", "/elsewhere"],
        ["GET", "/" + "a".repeat(3000)],
      ]
    ) {
      const response = await fetch(`${hub.http}${path}`, {
        method,
        body: method === "POST" ? "x" : undefined,
      });
      assert.equal(response.status, 404, `${method} ${path.slice(0, 40)}`);
      assert.match(response.headers.get("content-type") ?? "", /json/);
      assert.equal((await response.json()).code, "not_found");
    }
    const raw = await rawExchange(
      hub.port,
      "GET /%ZZ HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n\r\n",
    );
    assert.equal(statusOf(raw), 400, raw);
    assert.equal(JSON.parse(bodyOf(raw)).code, "bad_request");
    await assertStillServing(hub, sentinels);
  });

  test("wrong methods on a stream path answer 405 with Allow: GET, POST", async () => {
    for (const method of ["PUT", "DELETE", "PATCH", "OPTIONS", "HEAD"]) {
      const response = await fetch(`${hub.http}/events`, { method });
      assert.equal(response.status, 405, method);
      assert.equal(response.headers.get("allow"), "GET, POST", method);
      if (method !== "HEAD") {
        assert.equal((await response.json()).code, "method_not_allowed");
      } else await response.body?.cancel();
    }
    await assertStillServing(hub, sentinels);
  });

  test("an upgrade without Sec-WebSocket-Key, with a malformed key or another version answers 400 before upgrading", async () => {
    for (
      const headers of [
        { "Sec-WebSocket-Key": null },
        { "Sec-WebSocket-Key": "short" },
        { "Sec-WebSocket-Version": null },
        { "Sec-WebSocket-Version": "8" },
      ] as Record<string, string | null>[]
    ) {
      const client = await rawConnect(hub.url, { headers });
      client.destroy();
      assert.equal(client.status, 400, JSON.stringify(headers));
      assert.equal(
        JSON.parse(client.body).code,
        "bad_request",
        JSON.stringify(headers),
      );
    }
    await assertStillServing(hub, sentinels);
  });

  test("a refused upgrade carries its JSON error body, as other refusals do", async () => {
    const client = await rawConnect(hub.url, {
      headers: { "Sec-WebSocket-Key": null },
    });
    client.destroy();
    assert.equal(client.status, 400);
    assert.match(client.headers["content-type"] ?? "", /json/);
    assert.notEqual(
      client.body,
      "",
      "empty body under Content-Type: application/json",
    );
    assert.equal(JSON.parse(client.body).code, "bad_request");
  });

  test("an upgrade whose Connection header lacks the Upgrade token answers 400, not 500 or 101", async () => {
    const answer = await rawExchange(
      hub.port,
      "GET /events HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: keep-alive\r\n" +
        "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n",
      { timeoutMs: 2000 },
    );
    assert.equal(statusOf(answer), 400, answer.slice(0, 200));
    await assertStillServing(hub, sentinels);
  });
});

/**
 * Connects `n` WebSocket and `n` SSE subscribers, adding them to `ws` and
 * `sse` (for the caller to close), and waits until each is open.
 */
async function connectEach(
  hub: Service,
  n: number,
  ws: WsClient[],
  sse: SseClient[],
): Promise<void> {
  const newWs = Array.from({ length: n }, () => connectWs(hub.url));
  const newSse = Array.from(
    { length: n },
    () => connectSse(`${hub.http}/events`),
  );
  ws.push(...newWs);
  sse.push(...newSse);
  await Promise.all([
    ...newWs.map((c) => c.opened),
    ...newSse.map((c) => c.headers),
  ]);
}

describe("subscriber limit", { timeout: 60_000 }, () => {
  test("--max-subscribers 20: the 21st WebSocket and SSE subscriber get 503 before any upgrade; after some leave, new ones are accepted", async () => {
    const hub = await startHub([
      "--max-subscribers",
      "20",
    ]);
    const ws: WsClient[] = [];
    const sse: SseClient[] = [];
    try {
      await connectEach(hub, 10, ws, sse);
      await waitForSubscribers(hub, 20);
      const refusedWs = await rawConnect(hub.url);
      refusedWs.destroy();
      assert.equal(refusedWs.status, 503);
      assert.equal(JSON.parse(refusedWs.body).code, "subscriber_limit");
      const refusedSse = await fetch(`${hub.http}/events`, {
        headers: { Accept: "text/event-stream" },
      });
      assert.equal(refusedSse.status, 503);
      assert.equal((await refusedSse.json()).code, "subscriber_limit");
      assert.equal(await metric(hub.http, "wsevent_subscriber_limit_total"), 2);
      // Publishing and health are not subscriptions: still served.
      assert.equal((await fetch(`${hub.http}/healthz`)).status, 200);
      const published = await fetch(`${hub.http}/events`, {
        method: "POST",
        body: "full house",
      });
      assert.equal(published.status, 202);
      await waitFor(
        () => ws.every((c) => c.messages.includes("full house")),
        5_000,
        "delivery to all 10 WebSocket subscribers",
      );
      // Two of each leave; two of each get in again.
      for (const c of ws.splice(0, 2)) c.close();
      for (const c of sse.splice(0, 2)) c.close();
      await waitForSubscribers(hub, 16);
      await connectEach(hub, 2, ws, sse);
      await waitForSubscribers(hub, 20);
      const stillFull = await rawConnect(hub.url);
      stillFull.destroy();
      assert.equal(stillFull.status, 503);
    } finally {
      for (const c of ws) c.close();
      for (const c of sse) c.close();
      await hub.stop();
    }
  });
});

const METHODS = [
  "GET",
  "POST",
  "PUT",
  "DELETE",
  "HEAD",
  "OPTIONS",
  "PATCH",
  "TRACE",
  "CONNECT",
  "BREW",
  "get",
  "",
  "G\u00e9T",
];
const PATHS = [
  "/events",
  "/events?format=json",
  "/events?lastEventId=x-1",
  "/events?token=a",
  "/healthz",
  "/readyz",
  "/metrics",
  "/",
  "/nope",
  "*",
  "/%ZZ",
  "/events/../events",
  "//events",
  "/events?format=json&lastEventId=%00",
  "http://127.0.0.1/events",
  "/\u00ff\u0001",
];
const HEADERS = [
  "Accept: text/event-stream",
  "Upgrade: websocket",
  "Connection: Upgrade",
  "Connection: keep-alive",
  "Connection: close",
  "Sec-WebSocket-Version: 13",
  "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==",
  "Sec-WebSocket-Key: ???",
  "Last-Event-ID: garbage",
  "Authorization: Bearer x",
  "Authorization: Basic",
  "Origin: http://evil.example",
  "Content-Type: application/octet-stream",
  "Content-Type: text/plain",
  "Content-Length: 5",
  "Content-Length: -1",
  "Content-Length: 99999999999",
  "Transfer-Encoding: chunked",
  "Transfer-Encoding: gzip, chunked",
  "Expect: 100-continue",
  "X-Long: " + "v".repeat(4000),
  ": no name",
  "NoColon",
];

function randomBytes(
  random: ReturnType<typeof createRandom>,
  n: number,
): string {
  let s = "";
  for (let i = 0; i < n; i++) s += String.fromCharCode(random.int(256));
  return s;
}

function latin1(text: string): Uint8Array {
  return Uint8Array.from(text, (c) => c.charCodeAt(0) & 255);
}

/** One random HTTP request, as latin1 text: mostly well formed, some garbage. */
function randomRequest(random: ReturnType<typeof createRandom>): string {
  const kind = random.int(10);
  if (kind === 0) return randomBytes(random, 1 + random.int(200)); // garbage
  if (kind === 1) {
    return `${random.pick(METHODS)} ${
      randomBytes(random, 10)
    } HTTP/1.1\r\n\r\n`;
  }
  const wild = kind === 2;
  const method = wild || random.int(4) === 0
    ? random.pick(METHODS)
    : random.pick(["GET", "POST"]);
  const version = wild ? random.pick(["HTTP/1.0", "HTTP/9.9", ""]) : "HTTP/1.1";
  const lines = [`${method} ${random.pick(PATHS)} ${version}`];
  if (random.int(8) !== 0) lines.push("Host: 127.0.0.1");
  for (let i = random.int(5); i > 0; i--) {
    const header = random.pick(HEADERS);
    if (wild || !/^(: |NoColon|Content-Length)/.test(header)) {
      lines.push(header);
    }
  }
  const body = random.int(2) === 0
    ? ""
    : random.int(2) === 0
    ? randomBytes(random, random.int(2 * MAX_BODY))
    : `fuzz ${random.int(1e6)}`;
  if (body && (!wild || random.int(2) === 0)) {
    lines.push(`Content-Length: ${body.length}`);
  }
  const end = random.int(10) === 0 ? "\r\n" : "\r\n\r\n"; // sometimes truncated
  return lines.join("\r\n") + end + body;
}

/** One random frame: any opcode, length, reserved bits; sometimes unmasked or truncated. */
function randomFrame(random: ReturnType<typeof createRandom>): Uint8Array {
  const opcode = random.int(3) === 0
    ? random.int(16)
    : random.pick([1, 2, 0, 8, 9, 10]);
  const length = random.pick([
    0,
    1,
    2,
    5,
    125,
    126,
    200,
    65535,
    65536,
    MAX_BODY,
    MAX_BODY + 1,
    random.int(3000),
  ]);
  const payload = latin1(randomBytes(random, Math.min(length, 70_000)));
  const truncated = random.int(8) === 0;
  return encodeFrame(
    opcode,
    truncated ? payload.slice(0, random.int(payload.length + 1)) : payload,
    {
      fin: random.int(5) !== 0,
      rsv: random.int(6) === 0 ? random.int(8) : 0,
      mask: random.int(10) !== 0,
      declaredLength: truncated ? length + random.int(1000) : undefined,
    },
  );
}

/**
 * The fuzz run's seed: `WSEVENT_FUZZ_SEED` when set (to replay a failure),
 * otherwise new each run.
 */
function fuzzSeed(): number {
  const given = process.env.WSEVENT_FUZZ_SEED;
  if (given === undefined || given === "") return Date.now() % 2 ** 31;
  const seed = Number(given);
  if (!Number.isSafeInteger(seed) || seed < 0) {
    throw new RangeError(
      `Cannot use WSEVENT_FUZZ_SEED: expected a non-negative integer, received "${given}"`,
    );
  }
  return seed;
}

describe("fuzz", { timeout: 60_000 }, () => {
  test("300 random HTTP requests and 300 random WebSocket frames: no 500, the instance still serves, and a subscriber got every event published meanwhile", async () => {
    const seed = fuzzSeed();
    const replay = `fuzz seed ${seed} (replay with WSEVENT_FUZZ_SEED=${seed})`;
    console.log(`[${RUNTIME}] ${replay}`);
    const random = createRandom(seed);
    const hub = await startHub([
      "--max-body",
      String(MAX_BODY),
      "--max-subscribers",
      "200",
    ]);
    const sentinels = watch(hub);
    const open: RawWs[] = [];
    const serverErrors: string[] = [];
    const published: string[] = [];
    const statuses: Record<string, number> = {};
    try {
      await Promise.all([sentinels.json.opened, sentinels.sse.headers]);
      const started = Date.now();
      const publishMarker = async (): Promise<void> => {
        const body = `marker-${published.length}`;
        await publishOk(hub, body);
        published.push(body);
      };
      // HTTP: 300 requests, 10 at a time.
      const requests = Array.from({ length: 300 }, () => randomRequest(random));
      for (let i = 0; i < requests.length; i += 10) {
        const answers = await Promise.all(
          requests.slice(i, i + 10).map((request) =>
            rawExchange(hub.port, latin1(request), {
              quietMs: 100,
              timeoutMs: 500,
            })
          ),
        );
        answers.forEach((answer, j) => {
          const status = /^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1] ??
            (answer === "" ? "none" : "other");
          statuses[status] = (statuses[status] ?? 0) + 1;
          // 500 means our code failed on the input; parsers answer
          // garbage with 400, 501 or 505 on their own.
          if (status === "500") {
            serverErrors.push(
              `request #${i + j}: ${
                JSON.stringify(requests[i + j].slice(0, 160))
              } -> ${answer.split("\r\n")[0]}`,
            );
          }
        });
        await publishMarker();
      }
      // WebSocket: 300 frames over connections opened as needed.
      let client: RawWs | undefined;
      for (let i = 0; i < 300; i++) {
        if (client === undefined || client.isEnded()) {
          client = await rawConnect(
            random.int(2) === 0 ? hub.url : `${hub.url}?format=json`,
          );
          open.push(client);
        }
        client.write(randomFrame(random));
        if (i % 10 === 9) {
          await new Promise((r) => setTimeout(r, 5));
          await publishMarker();
        }
      }
      for (const c of open) c.destroy();
      const took = Date.now() - started;
      console.log(
        `[${RUNTIME}] fuzz: ${requests.length} requests, 300 frames on ${open.length} connections in ${took} ms; answers ${
          JSON.stringify(statuses)
        }`,
      );
      assert.deepEqual(serverErrors, [], "no 500 answer");
      // Each batch of requests waits at most 500 ms for its answers: a run
      // much longer than 30 x 500 ms means the server stopped answering.
      assert.ok(took < 20_000, `fuzz took ${took} ms`);
      // Still serving, and the sentinels got every marker, in order, with
      // ids that never skip.
      await assertStillServing(hub, sentinels);
      await waitFor(
        () => {
          const { json, sse } = sentinels.events();
          return json.some((e) => e.data === published.at(-1)) &&
            sse.some((e) => e.data === published.at(-1));
        },
        5_000,
        "every marker",
      );
      const { json, sse } = sentinels.events();
      const markers = json.filter((e) => e.data?.startsWith("marker-")).map((
        e,
      ) => e.data);
      assert.deepEqual(markers, published);
      assert.deepEqual(
        sse.filter((e) => e.data.startsWith("marker-")).map((e) => e.data),
        published,
      );
      const seqs = json.map((e) => seq(e.id!));
      assert.deepEqual(
        seqs,
        seqs.map((_, i) => seqs[0] + i),
        "no event skipped",
      );
      assert.deepEqual(sse.map((e) => e.id), json.map((e) => e.id));
      assert.equal(sentinels.json.isClosed(), false);
      assert.equal(hub.proc.exitCode, null);
    } catch (error) {
      // Whatever failed, the message says how to replay this run.
      throw new Error(`${replay}: ${(error as Error).message}`, {
        cause: error,
      });
    } finally {
      for (const c of open) c.destroy();
      sentinels.json.close();
      sentinels.sse.close();
      await hub.stop();
    }
  });
});
