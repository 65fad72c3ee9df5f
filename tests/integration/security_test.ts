/**
 * Regression tests for the security review (issue 16): credentials never
 * shown, Host never routes, no development error pages, origins checked
 * whole without an implicit same-origin, -forward-publish answering with
 * our own JSON, log lines that cannot be forged, aborted publishes that are
 * not errors, and a hostile upstream held to the relay's own limits.
 *
 * Each runs on the runtime of the test; on Deno the request-level checks
 * also run against Deno.serve (`deno run --allow-net`, no --allow-env),
 * the other server Deno can use (see src/runtime/load.ts).
 */

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { connect } from "node:net";
import { join } from "node:path";
import process from "node:process";
import {
  connectSse,
  freePort,
  ROOT,
  RUNTIME,
  type Service,
  startHub,
  startRelay,
  startService,
  startServiceWith,
  waitFor,
} from "./_helpers.ts";
import { rawExchange } from "./_raw_ws.ts";
import {
  type HostileUpstream,
  serverFrame,
  sseChunk,
  startHostileUpstream,
} from "./_hostile_upstream.ts";

const SECRETS = ["alice", "secretpw", "SUBTOK", "UPTOK"];

/** Starts cli.ts on Deno.serve (Deno without --allow-env). */
function startDenoServe(args: string[]): Promise<Service> {
  const deno = join(ROOT, "node_modules", ".bin", "deno");
  return startServiceWith(
    [deno, ["run", "--allow-net", join(ROOT, "cli.ts")]],
    args,
  );
}

/** A server cli.ts can run on: its name and how to start a hub on it. */
interface Server {
  name: string;
  start(args: string[]): Promise<Service>;
}

/**
 * Starts a hub (free port, no producer, then `args`) on `server` before the
 * suite's tests and stops it after them.
 *
 * @returns The running hub, for the suite's tests.
 */
function hubForSuite(server: Server, args: string[]): () => Service {
  let hub: Service | undefined;
  before(async () => {
    hub = await server.start([
      "--serve-address",
      "127.0.0.1:0",
      "--no-produce",
      ...args,
    ]);
  });
  after(async () => {
    await hub?.stop();
  });
  return () => hub!;
}

/** The servers this runtime can run: on Deno both of its servers. */
const SERVERS: Server[] = [
  {
    name: RUNTIME === "deno" ? "deno node:http" : RUNTIME,
    start: startService,
  },
  ...(RUNTIME === "deno"
    ? [{ name: "Deno.serve", start: startDenoServe }]
    : []),
];

// Bun serves its development error page unless NODE_ENV is production:
// the children must not inherit a production setting that would hide it.
delete process.env.NODE_ENV;

/** What a raw request got, with times in ms from its start. */
interface RawAnswer {
  answer: string;
  /** When the first bytes of the answer came (-1: none). */
  answeredMs: number;
  /** When the exchange ended (-1: it timed out). */
  closedMs: number;
}

/** True once `answer` holds a whole response (the head alone for 101 and SSE). */
function isComplete(answer: string): boolean {
  const end = answer.indexOf("\r\n\r\n");
  if (end < 0) return false;
  const head = answer.slice(0, end);
  if (/^HTTP\/1\.1 101|text\/event-stream/im.test(head)) return true;
  const length = /^content-length:\s*(\d+)/im.exec(head);
  if (length && answer.length - end - 4 >= Number(length[1])) return true;
  return /^transfer-encoding:\s*chunked/im.test(head) &&
    (answer.endsWith("\r\n0\r\n\r\n") ||
      answer.endsWith("\r\n\r\n0\r\n\r\n"));
}

/**
 * Sends a raw request and waits, never for a fixed time, until: the answer
 * is complete (by Content-Length or to its last chunk) or the server ended
 * the connection (`"complete"`); the answer's head came or the server closed
 * (`"head"`); or the server closed (`"closed"`). Gives up after `timeoutMs`.
 */
function rawRequest(
  port: number,
  request: string,
  until: "complete" | "head" | "closed",
  timeoutMs: number,
): Promise<RawAnswer> {
  return new Promise((resolve) => {
    const start = Date.now();
    const socket = connect({ host: "127.0.0.1", port });
    let answer = "";
    let answeredMs = -1;
    const finish = (closedMs = Date.now() - start): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ answer, answeredMs, closedMs });
    };
    const timer = setTimeout(() => finish(-1), timeoutMs);
    socket.setEncoding("latin1");
    socket.on("connect", () => socket.write(request));
    socket.on("data", (chunk: string) => {
      if (answeredMs < 0) answeredMs = Date.now() - start;
      answer += chunk;
      if (
        until === "head"
          ? answer.includes("\r\n\r\n")
          : until === "complete" && isComplete(answer)
      ) finish();
    });
    socket.on("close", () => finish());
    if (until === "complete") socket.on("end", () => finish());
    socket.on("error", () => {
      if (until === "complete") finish();
    });
  });
}

/** Sends a raw request and returns the answer once it is complete, or after 5 s. */
async function exchange(port: number, request: string): Promise<string> {
  return (await rawRequest(port, request, "complete", 5000)).answer;
}

function upgradeHead(path: string, host: string, extra = ""): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nUpgrade: websocket\r\n` +
    "Connection: Upgrade\r\nSec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\n" +
    `Sec-WebSocket-Version: 13\r\n${extra}\r\n`;
}

function sseHead(path: string, host: string, extra = ""): string {
  return `GET ${path} HTTP/1.1\r\nHost: ${host}\r\nAccept: text/event-stream\r\n${extra}\r\n`;
}

function statusOf(answer: string): number {
  return Number(/^HTTP\/1\.[01] (\d{3})/.exec(answer)?.[1] ?? 0);
}

for (const server of SERVERS) {
  describe(`security: requests (${server.name})`, { timeout: 90_000 }, () => {
    const hub = hubForSuite(server, [
      "--subscribe-token",
      "SUBTOK",
      "--allow-origin",
      "https://app.example",
    ]);

    test("a bad Host header gets a plain 400, never a development error page", async () => {
      for (const host of ["[", "a b", "x:99999", "a/b", "%zz", "x#"]) {
        for (
          const head of [
            upgradeHead("/events?token=SUBTOK", host),
            sseHead("/events?token=SUBTOK", host),
            `POST /events HTTP/1.1\r\nHost: ${host}\r\nContent-Length: 1\r\n\r\nx`,
          ]
        ) {
          const answer = await exchange(hub().port, head);
          const what = `${JSON.stringify(host)}: ${head.split("\r\n")[0]}`;
          assert.equal(statusOf(answer), 400, `${what}\n${answer}`);
          assert.doesNotMatch(answer, /text\/html/i, what);
          assert.equal(answer.includes(ROOT), false, `${what} shows paths`);
        }
      }
    });

    test("the Host header never chooses the route: /metrics stays /metrics", async () => {
      const host = `127.0.0.1:${hub().port}/events?token=SUBTOK#`;
      const upgrade = await exchange(
        hub().port,
        upgradeHead("/metrics", host),
      );
      assert.notEqual(statusOf(upgrade), 101, upgrade);
      assert.equal(statusOf(upgrade), 400, upgrade);
      const sse = await exchange(
        hub().port,
        sseHead("/metrics", host),
      );
      assert.doesNotMatch(sse, /text\/event-stream/i, sse);
      assert.equal(statusOf(sse), 400, sse);
      // Sound requests are still served.
      const ok = await exchange(
        hub().port,
        upgradeHead("/events?token=SUBTOK", `127.0.0.1:${hub().port}`),
      );
      assert.equal(statusOf(ok), 101, ok);
    });

    test("with -allow-origin, only listed origins pass: no same-origin from Host (DNS rebinding), scheme compared", async () => {
      const rebind = `rebind.attacker.example:${hub().port}`;
      const cases: [string, string, number][] = [
        [`http://${rebind}`, rebind, 403],
        [`https://127.0.0.1:${hub().port}`, `127.0.0.1:${hub().port}`, 403],
        [`http://127.0.0.1:${hub().port}`, `127.0.0.1:${hub().port}`, 403],
        ["http://app.example", `127.0.0.1:${hub().port}`, 403],
        ["https://app.example", `127.0.0.1:${hub().port}`, 101],
      ];
      for (const [origin, host, status] of cases) {
        const answer = await exchange(
          hub().port,
          upgradeHead("/events?token=SUBTOK", host, `Origin: ${origin}\r\n`),
        );
        assert.equal(statusOf(answer), status, `${origin} ${host}\n${answer}`);
        const post = await exchange(
          hub().port,
          `POST /events HTTP/1.1\r\nHost: ${host}\r\nOrigin: ${origin}\r\n` +
            "Content-Type: text/plain\r\nContent-Length: 2\r\n\r\nhi",
        );
        assert.equal(
          statusOf(post),
          status === 101 ? 202 : 403,
          `POST ${origin} ${host}\n${post}`,
        );
      }
    });
  });
}

describe("security: a relay and its upstream", { timeout: 120_000 }, () => {
  test("upstream credentials appear nowhere: /readyz, /metrics, index page, start-up line, logs, 502 body", async () => {
    const port = await freePort(); // Nothing listens: the relay stays down.
    const relay = await startRelay(
      `ws://alice:secretpw@127.0.0.1:${port}/events?token=SUBTOK`,
      ["--verbose", "--forward-publish", "--upstream-token", "UPTOK"],
    );
    try {
      await waitFor(
        () => /retrying in/.test(relay.stderr()),
        20_000,
        "a failed connection logged",
      );
      const shown: string[] = [relay.stdout(), relay.stderr()];
      const readyz = await fetch(`${relay.http}/readyz`);
      assert.equal(readyz.status, 503);
      shown.push(await readyz.text());
      shown.push(await (await fetch(`${relay.http}/metrics`)).text());
      shown.push(await (await fetch(`${relay.http}/`)).text());
      shown.push(
        await (await fetch(`${relay.http}/`, {
          headers: { Accept: "text/html" },
        })).text(),
      );
      const post = await fetch(`${relay.http}/events`, {
        method: "POST",
        body: "x",
      });
      assert.equal(post.status, 502);
      shown.push(await post.text());
      shown.push(relay.stderr());
      const all = shown.join("\n");
      // The URL is still shown, redacted.
      assert.match(all, /ws:\/\/\*\*\*:\*\*\*@127\.0\.0\.1/);
      for (const secret of SECRETS) {
        assert.equal(all.includes(secret), false, `${secret} shown:\n${all}`);
      }
    } finally {
      await relay.stop();
    }
  });

  test("-forward-publish answers with the relay's own JSON, never the upstream's body or type; URL credentials go in a header (POST and SSE)", async () => {
    const upstream = await startHostileUpstream({
      status: 200,
      contentType: "text/html",
      body: "<script>alert(document.cookie)</script>",
    });
    const relay = await startRelay(
      `http://alice:secretpw@127.0.0.1:${upstream.port}/events`,
      ["--forward-publish"],
    );
    try {
      const answer = await fetch(`${relay.http}/events`, {
        method: "POST",
        headers: { "Content-Type": "text/plain" },
        body: "hello",
      });
      const text = await answer.text();
      assert.equal(answer.status, 202, text);
      assert.match(
        answer.headers.get("content-type") ?? "",
        /application\/json/,
      );
      assert.doesNotMatch(text, /script/);
      assert.deepEqual(JSON.parse(text), { id: null });
      // The relay's SSE request too: fetch() refuses URLs with credentials.
      await waitFor(
        () => upstream.requests.some((r) => r.startsWith("GET ")),
        10_000,
        "the relay's SSE request",
      );
      const get = upstream.requests.find((r) => r.startsWith("GET "))!;
      assert.match(
        get,
        new RegExp(`^authorization: Basic ${btoa("alice:secretpw")}$`, "im"),
      );
      const head = upstream.requests.find((r) => r.startsWith("POST "))!;
      assert.match(head, /^POST \/events HTTP\/1\.1/);
      assert.match(
        head,
        new RegExp(`^authorization: Basic ${btoa("alice:secretpw")}$`, "im"),
      );
    } finally {
      await relay.stop();
      await upstream.close();
    }
  });

  test("an upstream's close reason cannot forge a log line or send escape codes", async () => {
    const upstream: HostileUpstream = await startHostileUpstream();
    const relay = await startRelay(`ws://127.0.0.1:${upstream.port}/events`);
    try {
      const stream = await upstream.stream(0);
      const reason = "bye\n2026-01-01T00:00:00.000Z WARN \x1b[31mforged line";
      const payload = new Uint8Array(2 + reason.length);
      payload.set([0x03, 0xe8]);
      payload.set(new TextEncoder().encode(reason), 2);
      stream.end(serverFrame(8, payload));
      await waitFor(
        () => /bye/.test(relay.stderr()),
        20_000,
        "the close logged",
      );
      const log = relay.stderr();
      assert.equal(log.includes("\x1b"), false, log);
      for (const line of log.split("\n")) {
        assert.equal(line.startsWith("2026-01-01"), false, `forged: ${line}`);
      }
      assert.match(log, /bye\\n2026-01-01.*\\x1b\[31mforged line/);
    } finally {
      await relay.stop();
      await upstream.close();
    }
  });
});

describe("security: publishes a client aborts", { timeout: 60_000 }, () => {
  test("a publish the client aborts mid-body is not logged as an ERROR", async () => {
    const hub = await startHub([
      "--verbose",
    ]);
    try {
      for (let i = 0; i < 3; i++) {
        await rawExchange(
          hub.port,
          "POST /events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n" +
            "Content-Length: 1000\r\n\r\nabc",
          { quietMs: 200, timeoutMs: 1000 },
        );
      }
      // A publish after them is served, and its log line follows theirs.
      const answer = await fetch(`${hub.http}/events`, {
        method: "POST",
        body: "after",
      });
      assert.equal(answer.status, 202);
      // Whatever the server makes of the aborts, it says so at some level.
      await waitFor(
        () => /aborted by the client| ERROR /.test(hub.stderr()),
        10_000,
        "the aborts logged",
      );
      assert.doesNotMatch(hub.stderr(), / ERROR /);
      assert.match(
        hub.stderr(),
        / DEBUG publish to \/events aborted by the client/,
      );
    } finally {
      await hub.stop();
    }
  });
});

for (const server of SERVERS) {
  describe(
    `security: a hostile upstream and the relay's -max-body (${server.name})`,
    {
      timeout: 120_000,
    },
    () => {
      const MAX = 1000;

      async function relayOf(url: string): Promise<Service> {
        return await server.start([
          "--serve-address",
          "127.0.0.1:0",
          "--no-produce",
          "--max-body",
          String(MAX),
          "--consume-url",
          url,
        ]);
      }

      async function bufferBytes(relay: Service): Promise<number> {
        const text = await (await fetch(`${relay.http}/metrics`)).text();
        const line = text.split("\n").find((l) =>
          l.startsWith("wsevent_replay_buffer_bytes")
        );
        return Number(line?.slice(line.lastIndexOf(" ") + 1));
      }

      test("SSE: an event of endless data lines, or one over -max-body, is dropped with a gap notice; the next one is relayed", async () => {
        const upstream = await startHostileUpstream();
        const relay = await relayOf(`http://127.0.0.1:${upstream.port}/events`);
        const sse = connectSse(`${relay.http}/events`);
        try {
          const stream = await upstream.stream(0);
          await sse.headers;
          // 2000 lines of 900 characters, each under the line limit, with no
          // blank line between them: one event of 1.8 MB.
          const line = `data: ${"x".repeat(900)}\n`;
          for (let i = 0; i < 2000; i++) {
            if (!stream.write(sseChunk(line))) await stream.drained();
          }
          stream.write(sseChunk("\n"));
          // One line over -max-body but within the line limit.
          stream.write(sseChunk(`id: up-1\ndata: ${"y".repeat(MAX + 1)}\n\n`));
          stream.write(sseChunk("id: up-2\ndata: ok\n\n"));
          await waitFor(
            () => sse.messages.some((m) => m.data === "ok"),
            20_000,
            "the event after the big ones",
          );
          const events = sse.messages.filter((m) => m.event === "message");
          assert.deepEqual(events.map((m) => m.data), ["ok"]);
          assert.ok(
            sse.messages.filter((m) => m.event === "gap").length >= 2,
            JSON.stringify(sse.messages.map((m) => m.event)),
          );
          const held = await bufferBytes(relay);
          assert.ok(held <= MAX, `replay buffer holds ${held} bytes`);
          assert.match(
            relay.stderr(),
            /dropped an upstream event of \d+ bytes/,
          );
          // A gap notice with an id and a reason far longer than ours: passed
          // on to the relay's subscribers without the id, the reason cut.
          const gaps = sse.messages.filter((m) => m.event === "gap").length;
          const notice = JSON.stringify({
            lastEventId: "x".repeat(900),
            reason: `zz${"y".repeat(900)}`,
          });
          stream.write(sseChunk(`event: gap\ndata: ${notice}\n\n`));
          await waitFor(
            () => sse.messages.filter((m) => m.event === "gap").length > gaps,
            20_000,
            "the upstream's gap notice relayed",
          );
          const relayed = sse.messages.filter((m) => m.event === "gap").at(-1)!;
          assert.match(relayed.data, /zzy/);
          assert.equal(relayed.data.includes("x".repeat(129)), false);
          assert.ok(relayed.data.length < 400, relayed.data);
        } finally {
          sse.close();
          await relay.stop();
          await upstream.close();
        }
      });

      test("WebSocket: no permessage-deflate offered; binary frames over -max-body dropped, huge ones refused; the next event is relayed", async () => {
        const upstream = await startHostileUpstream();
        const relay = await relayOf(`ws://127.0.0.1:${upstream.port}/events`);
        const sse = connectSse(`${relay.http}/events`);
        try {
          const first = await upstream.stream(0);
          await sse.headers;
          // A server may only compress what the client offered to inflate.
          assert.doesNotMatch(first.head, /permessage-deflate/i, first.head);
          first.write(serverFrame(2, new Uint8Array(MAX + 1)));
          await waitFor(
            () => relay.stderr().includes("dropped an upstream event"),
            20_000,
            "the frame over -max-body dropped",
          );
          // A frame far over the frame limit (twice -max-body and an envelope's
          // worth): the relay refuses it, ends that connection and opens another.
          first.write(serverFrame(2, new Uint8Array(4 << 20)));
          const stream = await upstream.stream(1, 30_000);
          stream.write(
            serverFrame(1, JSON.stringify({ id: "up-3", data: "ok" })),
          );
          await waitFor(
            () => sse.messages.some((m) => m.data === "ok"),
            20_000,
            "the event after the big frames",
          );
          const events = sse.messages.filter((m) => m.event !== "gap");
          assert.deepEqual(events.map((m) => m.data), ["ok"]);
          const held = await bufferBytes(relay);
          assert.ok(held <= MAX, `replay buffer holds ${held} bytes`);
        } finally {
          sse.close();
          await relay.stop();
          await upstream.close();
        }
      });
    },
  );
}

/**
 * Sends a POST that announces 1000 bytes and sends one, then waits for the
 * answer's head, or `untilClosed` for the server to close (8 s at most).
 */
function slowPost(
  port: number,
  untilClosed: boolean,
  path = "/events",
): Promise<RawAnswer> {
  return rawRequest(
    port,
    `POST ${path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: text/plain\r\n` +
      "Content-Length: 1000\r\n\r\nx",
    untilClosed ? "closed" : "head",
    8000,
  );
}

for (const server of SERVERS) {
  describe(`security: bounds and status (${server.name})`, {
    timeout: 90_000,
  }, () => {
    const hub = hubForSuite(server, [
      "--body-timeout",
      "500",
      "--status-token",
      "STAT",
    ]);

    test(
      server.name === "Deno.serve"
        ? "a body that stalls gets 408 within -body-timeout (Deno.serve keeps the connection until the client ends it: its server waits for the body)"
        : "a body that stalls gets 408 within -body-timeout and the connection is closed",
      async () => {
        const { answer, answeredMs, closedMs } = await slowPost(
          hub().port,
          server.name !== "Deno.serve",
        );
        assert.equal(statusOf(answer), 408, answer);
        assert.ok(answeredMs < 5000, `answered after ${answeredMs} ms`);
        assert.match(answer, /body_timeout/);
        if (server.name !== "Deno.serve") {
          assert.ok(closedMs >= 0 && closedMs < 5000, `closed: ${closedMs}`);
        }
      },
    );

    test(
      server.name === "Deno.serve"
        ? "a POST answered without its body being read (404) is answered at once (Deno.serve keeps the connection until the client ends it: its server waits for the body)"
        : "a POST answered without its body being read (404) is answered at once and the connection is closed, not held while the body trickles",
      async () => {
        const { answer, answeredMs, closedMs } = await slowPost(
          hub().port,
          server.name !== "Deno.serve",
          "/nope",
        );
        assert.equal(statusOf(answer), 404, answer);
        assert.ok(answeredMs < 5000, `answered after ${answeredMs} ms`);
        if (server.name !== "Deno.serve") {
          assert.ok(closedMs >= 0 && closedMs < 5000, `closed: ${closedMs}`);
        }
      },
    );

    test("a Last-Event-ID over 128 characters gets 400, and is not echoed", async () => {
      const long = "x".repeat(4000);
      const sse = await exchange(
        hub().port,
        sseHead("/events", "127.0.0.1", `Last-Event-ID: ${long}\r\n`),
      );
      assert.equal(statusOf(sse), 400, sse.slice(0, 300));
      assert.equal(sse.includes(long.slice(0, 200)), false);
      const ws = await exchange(
        hub().port,
        upgradeHead(`/events?lastEventId=${long}`, "127.0.0.1"),
      );
      assert.equal(statusOf(ws), 400, ws.slice(0, 300));
      // An id of our own length still resumes (a gap notice: not ours).
      const ok = await exchange(
        hub().port,
        sseHead(
          "/events",
          "127.0.0.1",
          `Last-Event-ID: ${"x".repeat(128)}\r\n`,
        ),
      );
      assert.equal(statusOf(ok), 200, ok.slice(0, 300));
    });

    test("a 404 does not echo the path and says nosniff", async () => {
      const answer = await fetch(
        `${hub().http}/%3Cscript%3Ealert(1)%3C/script%3E`,
      );
      const text = await answer.text();
      assert.equal(answer.status, 404);
      assert.doesNotMatch(text, /script/i);
      assert.equal(answer.headers.get("x-content-type-options"), "nosniff");
    });

    test("-status-token closes /, /metrics and the details of /readyz and /healthz", async () => {
      const open = async (path: string, token?: string) => {
        const response = await fetch(`${hub().http}${path}`, {
          headers: token ? { Authorization: `Bearer ${token}` } : {},
        });
        return { status: response.status, text: await response.text() };
      };
      assert.equal((await open("/metrics")).status, 401);
      assert.equal((await open("/metrics", "nope")).status, 401);
      assert.equal((await open("/")).status, 401);
      const metrics = await open("/metrics", "STAT");
      assert.equal(metrics.status, 200);
      assert.match(metrics.text, /wsevent_/);
      assert.equal((await open("/", "STAT")).status, 200);
      const ready = await open("/readyz");
      assert.equal(ready.status, 200);
      assert.deepEqual(JSON.parse(ready.text), { ready: true });
      assert.deepEqual(JSON.parse((await open("/healthz")).text), {
        status: "ok",
      });
      const health = JSON.parse((await open("/healthz", "STAT")).text);
      assert.equal(typeof health.version, "string");
    });
  });
}

describe("security: -buffer-bytes counts what the buffer holds", {
  timeout: 60_000,
}, () => {
  test("bodies of newlines, whose SSE form is 7 times their size, are counted with it", async () => {
    const hub = await startHub([
      "--buffer-bytes",
      "1000000",
    ]);
    const sse = connectSse(`${hub.http}/events`);
    try {
      await sse.headers;
      for (let i = 0; i < 10; i++) {
        const answer = await fetch(`${hub.http}/events`, {
          method: "POST",
          headers: { "Content-Type": "text/plain" },
          body: "\n".repeat(100_000),
        });
        assert.equal(answer.status, 202);
      }
      await waitFor(() => sse.messages.length >= 10, 20_000, "10 events");
      const text = await (await fetch(`${hub.http}/metrics`)).text();
      const value = (name: string): number => {
        const line = text.split("\n").find((l) => l.startsWith(name))!;
        return Number(line.slice(line.lastIndexOf(" ") + 1));
      };
      assert.ok(value("wsevent_replay_buffer_bytes") <= 1_000_000);
      // 100 KB of payload and about 700 KB of SSE form each.
      assert.ok(
        value("wsevent_replay_buffer_events") <= 2,
        `${value("wsevent_replay_buffer_events")} events buffered`,
      );
    } finally {
      sse.close();
      await hub.stop();
    }
  });
});
