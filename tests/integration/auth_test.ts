/**
 * Auth and origins (issue 4): every combination of token and origin for
 * WebSocket, SSE and publish against a real process; tokens from the
 * environment; relays presenting a token to a protected upstream.
 */

import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { after, before, describe, test } from "node:test";
import {
  connectWs,
  relayConnected,
  type Service,
  startHub,
  startRelay,
  startService,
  waitFor,
} from "./_helpers.ts";
import {
  metric,
  rawConnect,
  type RawPublisher,
  rawPublisher,
  type RawSse,
  rawSse,
  type RawWs,
} from "./_raw_ws.ts";

const PUBLISH = "pub-token-P";
const SUBSCRIBE = "sub-token-S";
const ALLOWED = "http://allowed.example";

interface TokenCase {
  name: string;
  headers: Record<string, string>;
  query: string;
  valid: boolean;
}

/** Ways a subscriber can present (or not) a token. */
const SUBSCRIBE_TOKENS: TokenCase[] = [
  { name: "no token", headers: {}, query: "", valid: false },
  {
    name: "wrong bearer header",
    headers: { Authorization: "Bearer nope" },
    query: "",
    valid: false,
  },
  { name: "wrong ?token=", headers: {}, query: "token=nope", valid: false },
  {
    name: "the publish token",
    headers: { Authorization: `Bearer ${PUBLISH}` },
    query: "",
    valid: false,
  },
  {
    name: "the token without Bearer",
    headers: { Authorization: SUBSCRIBE },
    query: "",
    valid: false,
  },
  {
    name: "a prefix of the token",
    headers: { Authorization: `Bearer ${SUBSCRIBE.slice(0, -1)}` },
    query: "",
    valid: false,
  },
  {
    name: "a wrong header with a right ?token= (the header wins)",
    headers: { Authorization: "Bearer nope" },
    query: `token=${SUBSCRIBE}`,
    valid: false,
  },
  {
    name: "right bearer header",
    headers: { Authorization: `Bearer ${SUBSCRIBE}` },
    query: "",
    valid: true,
  },
  {
    name: "right bearer header, lower-case scheme",
    headers: { Authorization: `bearer ${SUBSCRIBE}` },
    query: "",
    valid: true,
  },
  {
    name: "right ?token=",
    headers: {},
    query: `token=${SUBSCRIBE}`,
    valid: true,
  },
];

interface OriginCase {
  name: string;
  origin: string | null;
  allowed: boolean;
}

function originCases(port: number): OriginCase[] {
  return [
    { name: "no Origin", origin: null, allowed: true },
    { name: "allowed Origin", origin: ALLOWED, allowed: true },
    // No implicit same-origin (DNS rebinding): only listed origins pass.
    { name: "same-origin", origin: `http://127.0.0.1:${port}`, allowed: false },
    { name: "denied Origin", origin: "http://evil.example", allowed: false },
    {
      name: "denied Origin that extends an allowed one",
      origin: "http://allowed.example.evil.example",
      allowed: false,
    },
    { name: "Origin null", origin: "null", allowed: false },
  ];
}

function expected(token: TokenCase, origin: OriginCase): number {
  // The origin is checked first: a page from a denied origin learns nothing
  // about tokens.
  if (!origin.allowed) return 403;
  return token.valid ? 0 : 401;
}

function withQuery(path: string, query: string): string {
  return query === ""
    ? path
    : `${path}${path.includes("?") ? "&" : "?"}${query}`;
}

function headersFor(
  token: TokenCase,
  origin: OriginCase,
): Record<string, string> {
  return origin.origin === null
    ? { ...token.headers }
    : { ...token.headers, Origin: origin.origin };
}

/** How many "refused" warnings for a subscriber's 401 the hub logged. */
function refusedLines(hub: Service): number {
  return (hub.stderr().match(
    /refused GET \/events: Cannot subscribe: missing or wrong token/g,
  ) ?? []).length;
}

/** A subscriber's answer: its status and (lower-case) headers. */
interface Answered {
  status: number;
  headers: Record<string, string>;
}

/** The subscribers {@link openEveryCase} opened, and how many it expects refused. */
interface Opened<C> {
  accepted: [string, C][];
  refused: [string, C][];
  unauthorized: number;
  forbidden: number;
}

/**
 * Opens a subscriber for every token x origin case, into `opened` (so the
 * caller closes them all, whatever fails), and asserts each status: `ok`
 * where expected() passes it, else expected()'s refusal, a 401 with a
 * Bearer challenge; `check` asserts more of each answer.
 */
async function openEveryCase<C extends Answered>(
  port: number,
  opened: Opened<C>,
  options: {
    ok: number;
    open(token: TokenCase, origin: OriginCase): Promise<C>;
    check?(name: string, client: C, accepted: boolean): void;
  },
): Promise<void> {
  for (const token of SUBSCRIBE_TOKENS) {
    for (const origin of originCases(port)) {
      const name = `${token.name}, ${origin.name}`;
      const client = await options.open(token, origin);
      const want = expected(token, origin);
      if (want === 0) {
        assert.equal(client.status, options.ok, name);
        options.check?.(name, client, true);
        opened.accepted.push([name, client]);
      } else {
        assert.equal(client.status, want, name);
        options.check?.(name, client, false);
        if (want === 401) {
          opened.unauthorized++;
          assert.match(
            client.headers["www-authenticate"] ?? "",
            /^Bearer/,
            name,
          );
        } else opened.forbidden++;
        opened.refused.push([name, client]);
      }
    }
  }
}

/** Waits (5 s at most) for, and asserts, one "refused" warning per 401. */
async function assertRefusalsLogged(
  hub: Service,
  loggedBefore: number,
  unauthorized: number,
): Promise<void> {
  await waitFor(
    () => refusedLines(hub) - loggedBefore >= unauthorized,
    5_000,
    `${unauthorized} "refused" warnings in the hub's log`,
  ).catch(() => {});
  assert.equal(refusedLines(hub) - loggedBefore, unauthorized);
}

describe("auth and origins", { timeout: 90_000 }, () => {
  let hub: Service;
  let publisher: RawPublisher;
  let counter = 0;

  before(async () => {
    hub = await startHub([
      "--publish-token",
      PUBLISH,
      "--subscribe-token",
      SUBSCRIBE,
      "--allow-origin",
      ALLOWED,
    ]);
    publisher = await rawPublisher(hub.port, "events");
  });

  after(async () => {
    publisher?.close();
    await hub?.stop();
  });

  const publishOne = async (): Promise<string> => {
    const body = `secret-${++counter}`;
    const answer = await publisher.post(body, {
      "Content-Type": "text/plain",
      Authorization: `Bearer ${PUBLISH}`,
    });
    assert.equal(answer.status, 202, answer.body);
    return body;
  };

  test("WebSocket: every token x origin combination: 403 for a denied origin, 401 for a missing or wrong token (before any upgrade, nothing streamed), 101 and events otherwise", async () => {
    const opened: Opened<RawWs> = {
      accepted: [],
      refused: [],
      unauthorized: 0,
      forbidden: 0,
    };
    const { accepted, refused } = opened;
    const unauthorizedBefore = await metric(
      hub.http,
      "wsevent_unauthorized_total",
    );
    const forbiddenBefore = await metric(
      hub.http,
      "wsevent_forbidden_origin_total",
    );
    const loggedBefore = refusedLines(hub);
    try {
      await openEveryCase(hub.port, opened, {
        ok: 101,
        open: (token, origin) =>
          rawConnect(
            withQuery(`${hub.url}?format=json`, token.query),
            { headers: headersFor(token, origin) },
          ),
      });
      const body = await publishOne();
      await waitFor(
        () =>
          accepted.every(([, c]) => c.messages.some((m) => m.includes(body))),
        5_000,
        "the event on every accepted subscriber",
      );
      for (const [name, client] of refused) {
        assert.deepEqual(client.frames, [], `${name}: nothing streamed`);
        assert.ok(!client.body.includes(body), name);
      }
      assert.equal(
        await metric(hub.http, "wsevent_unauthorized_total"),
        unauthorizedBefore + opened.unauthorized,
      );
      assert.equal(
        await metric(hub.http, "wsevent_forbidden_origin_total"),
        forbiddenBefore + opened.forbidden,
      );
      // Each refused upgrade is logged as a warning, as SSE's are.
      await assertRefusalsLogged(hub, loggedBefore, opened.unauthorized);
    } finally {
      for (const [, c] of [...accepted, ...refused]) c.destroy();
    }
  });

  test("SSE: every token x origin combination: 403 for a denied origin, 401 for a missing or wrong token (a JSON error, no stream), 200 and events otherwise", async () => {
    const opened: Opened<RawSse> = {
      accepted: [],
      refused: [],
      unauthorized: 0,
      forbidden: 0,
    };
    const { accepted, refused } = opened;
    const loggedBefore = refusedLines(hub);
    try {
      await openEveryCase(hub.port, opened, {
        ok: 200,
        open: (token, origin) =>
          rawSse(
            hub.port,
            withQuery("/events", token.query),
            headersFor(token, origin),
          ),
        check: (name, client, isAccepted) =>
          assert.match(
            client.headers["content-type"] ?? "",
            isAccepted ? /^text\/event-stream/ : /json/,
            name,
          ),
      });
      const body = await publishOne();
      await waitFor(
        () => accepted.every(([, c]) => c.text().includes(`data: ${body}\n`)),
        5_000,
        "the event on every accepted SSE subscriber",
      );
      for (const [name, client] of refused) {
        assert.ok(
          !client.text().includes("data:"),
          `${name}: nothing streamed`,
        );
        assert.ok(
          !client.text().includes("retry:"),
          `${name}: no stream opened`,
        );
      }
      await assertRefusalsLogged(hub, loggedBefore, opened.unauthorized);
    } finally {
      for (const [, c] of [...accepted, ...refused]) c.close();
    }
  });

  test("publish: only `Authorization: Bearer <publish token>` publishes (no query token, no subscribe token), and a denied browser Origin gets 403 first", async () => {
    const json = connectWs(`${hub.url}?format=json&token=${SUBSCRIBE}`);
    try {
      await json.opened;
      const cases: [string, string, Record<string, string>, boolean][] = [
        ["no token", "", {}, false],
        ["wrong token", "", { Authorization: "Bearer nope" }, false],
        [
          "the subscribe token",
          "",
          { Authorization: `Bearer ${SUBSCRIBE}` },
          false,
        ],
        ["?token= only", `?token=${PUBLISH}`, {}, false],
        ["right token", "", { Authorization: `Bearer ${PUBLISH}` }, true],
      ];
      const bodies: string[] = [];
      for (const [name, query, headers, ok] of cases) {
        for (const origin of [null, ALLOWED, "http://evil.example"]) {
          const body = `publish ${name} ${origin}`;
          const connection = await rawPublisher(hub.port, `events${query}`);
          try {
            const answer = await connection.post(body, {
              "Content-Type": "text/plain",
              ...headers,
              ...(origin === null ? {} : { Origin: origin }),
            });
            const denied = origin === "http://evil.example";
            assert.equal(
              answer.status,
              denied ? 403 : ok ? 202 : 401,
              `${name}, Origin ${origin}`,
            );
            if (ok && !denied) bodies.push(body);
            else {
              assert.equal(
                JSON.parse(answer.body).code,
                denied ? "forbidden_origin" : "unauthorized",
              );
            }
          } finally {
            connection.close();
          }
        }
      }
      const marker = await publishOne();
      await waitFor(
        () => json.messages.some((m) => m.includes(marker)),
        5_000,
        "the marker",
      );
      const data = json.messages.map((m) => JSON.parse(m) as { data?: string })
        .map((m) => m.data).filter((d) => d?.startsWith("publish "));
      assert.deepEqual(data, bodies, "only the authorized publishes went out");
    } finally {
      json.close();
    }
  });
});

describe("tokens from the environment", { timeout: 60_000 }, () => {
  test("WSEVENT_PUBLISH_TOKEN and WSEVENT_SUBSCRIBE_TOKEN protect publish and subscribe, and stay out of the command line", async () => {
    const hub = await startService(
      ["--serve-address", "127.0.0.1:0", "--no-produce"],
      {
        WSEVENT_PUBLISH_TOKEN: "env-pub-42",
        WSEVENT_SUBSCRIBE_TOKEN: "env-sub-42",
      },
    );
    const clients: RawWs[] = [];
    try {
      const cmdline = readFileSync(`/proc/${hub.proc.pid}/cmdline`, "utf8");
      assert.ok(
        !cmdline.includes("env-pub-42") && !cmdline.includes("env-sub-42"),
      );
      const denied = await rawConnect(hub.url);
      clients.push(denied);
      assert.equal(denied.status, 401);
      const deniedSse = await rawSse(hub.port, "/events");
      deniedSse.close();
      assert.equal(deniedSse.status, 401);
      const ws = await rawConnect(`${hub.url}?token=env-sub-42`);
      const header = await rawConnect(hub.url, {
        headers: { Authorization: "Bearer env-sub-42" },
      });
      clients.push(ws, header);
      assert.equal(ws.status, 101);
      assert.equal(header.status, 101);
      const sse = await rawSse(hub.port, "/events?token=env-sub-42");
      try {
        assert.equal(sse.status, 200);
        // A fresh connection each: a server may close a keep-alive
        // connection after refusing a request whose body it did not read.
        const post = async (
          body: string,
          headers: Record<string, string>,
        ): Promise<number> => {
          const publisher = await rawPublisher(hub.port, "events");
          try {
            return (await publisher.post(body, headers)).status;
          } finally {
            publisher.close();
          }
        };
        assert.equal(await post("nope", {}), 401);
        assert.equal(
          await post("nope", { Authorization: "Bearer env-sub-42" }),
          401,
        );
        assert.equal(
          await post("from env", {
            "Content-Type": "text/plain",
            Authorization: "Bearer env-pub-42",
          }),
          202,
        );
        await waitFor(
          () =>
            ws.messages.includes("from env") &&
            header.messages.includes("from env") &&
            sse.text().includes("data: from env\n"),
          5_000,
          "the event",
        );
        assert.ok(!ws.messages.includes("nope"));
      } finally {
        sse.close();
      }
    } finally {
      for (const c of clients) c.destroy();
      await hub.stop();
    }
  });
});

describe("relays and protected upstreams", { timeout: 90_000 }, () => {
  let upstream: Service;
  before(async () => {
    upstream = await startHub([
      "--publish-token",
      PUBLISH,
      "--subscribe-token",
      SUBSCRIBE,
    ]);
  });
  after(async () => {
    await upstream?.stop();
  });

  for (const kind of ["ws", "sse"] as const) {
    const url = (): string =>
      kind === "ws" ? upstream.url : `${upstream.http}/events`;

    test(`a relay with --upstream-token consumes a protected ${kind} upstream`, async () => {
      const relay = await startRelay(url(), [
        "--upstream-token",
        SUBSCRIBE,
      ]);
      const client = connectWs(relay.url);
      try {
        await client.opened;
        await relayConnected(relay);
        const publisher = await rawPublisher(upstream.port, "events");
        try {
          const answer = await publisher.post(`through ${kind}`, {
            "Content-Type": "text/plain",
            Authorization: `Bearer ${PUBLISH}`,
          });
          assert.equal(answer.status, 202);
        } finally {
          publisher.close();
        }
        await waitFor(
          () => client.messages.includes(`through ${kind}`),
          5_000,
          "the event through the relay",
        );
        assert.ok(
          !relay.stderr().includes(SUBSCRIBE),
          "the token is not logged",
        );
        assert.equal((await fetch(`${relay.http}/readyz`)).status, 200);
      } finally {
        client.close();
        await relay.stop();
      }
    });

    test(
      `a relay without a token gets 401 from a protected ${kind} upstream ${
        kind === "sse"
          ? "(its log says 401)"
          : "(its log says the handshake failed: the WebSocket API hides the status)"
      } and keeps retrying without crashing`,
      async () => {
        const before = await metric(
          upstream.http,
          "wsevent_unauthorized_total",
        );
        const relay = await startRelay(url());
        try {
          await waitFor(
            () => (relay.stderr().match(/retrying in/g) ?? []).length >= 3,
            8_000,
            "three retries in the relay's log",
          );
          const refusals =
            await metric(upstream.http, "wsevent_unauthorized_total") - before;
          assert.ok(refusals >= 3, `${refusals} refusals counted upstream`);
          // Every attempt's line: SSE reads the status; a WebSocket client
          // only learns that the handshake failed (an error event), on every
          // runtime. That it was a 401 shows in the upstream's count above.
          const attempts =
            relay.stderr().match(/upstream \S+ .*; retrying in/g) ??
              [];
          assert.ok(attempts.length >= 3, relay.stderr());
          for (const line of attempts) {
            assert.match(
              line,
              kind === "sse" ? / answered 401; / : / failed; /,
            );
          }
          assert.equal(relay.proc.exitCode, null, "still running");
          const ready = await fetch(`${relay.http}/readyz`);
          assert.equal(ready.status, 503);
          await ready.body?.cancel();
          assert.equal((await fetch(`${relay.http}/healthz`)).status, 200);
          assert.equal(
            await metric(
              relay.http,
              "wsevent_upstream_connected",
              `{path="events",upstream="${url()}"}`,
            ),
            0,
          );
        } finally {
          await relay.stop();
        }
      },
    );
  }
});
