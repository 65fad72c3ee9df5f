/**
 * connectUpstream() (src/upstream.ts, the relays' consumer) with the
 * platform's fetch and WebSocket replaced by fakes, so no port is opened:
 * the retry schedule (first retry within 250 ms, doubling, capped at 5 s,
 * jittered), and the URL and headers of each attempt (replay, resume, token,
 * format). Retry waits are fast-forwarded: a timeout of exactly the delay the
 * consumer announced fires at once, every other timer runs as usual.
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { connectUpstream, type UpstreamOptions } from "../src/upstream.ts";

interface Attempted {
  url: string;
  headers: Headers;
}

/** Fakes installed on globalThis until `restore()`. */
interface Fakes {
  /** Every fetch and WebSocket attempt, in order. */
  attempts: Attempted[];
  /** Retry delays announced ("retrying in N ms"), in order. */
  delays: number[];
  /** Timeouts set with an announced delay (fast-forwarded). */
  retryTimers: number[];
  /** Every state line. */
  states: string[];
  restore(): void;
}

type Answer = "refuse" | { sse: string } | { ws: string[] };

/**
 * Installs a fetch and a WebSocket that answer attempt n with `answers[n]`
 * (the last one repeats): refused, an SSE stream that sends `sse` then ends,
 * or a WebSocket that sends `ws` then closes.
 */
function installFakes(answers: Answer[]): Fakes {
  const original = {
    fetch: globalThis.fetch,
    WebSocket: globalThis.WebSocket,
    setTimeout: globalThis.setTimeout,
  };
  const fakes: Fakes = {
    attempts: [],
    delays: [],
    retryTimers: [],
    states: [],
    restore() {
      globalThis.fetch = original.fetch;
      globalThis.WebSocket = original.WebSocket;
      globalThis.setTimeout = original.setTimeout;
    },
  };
  const next = (): Answer =>
    answers[Math.min(fakes.attempts.length - 1, answers.length - 1)];
  globalThis.fetch = ((input: string | URL | Request, init?: RequestInit) => {
    fakes.attempts.push({
      url: String(input instanceof Request ? input.url : input),
      headers: new Headers(init?.headers),
    });
    const answer = next();
    if (answer === "refuse" || !("sse" in answer)) {
      // As Deno's fetch does, the error quotes the URL, secrets included.
      return Promise.reject(
        new TypeError(
          `error sending request for url (${
            fakes.attempts.at(-1)!.url
          }): connection refused`,
        ),
      );
    }
    const body = new TextEncoder().encode(answer.sse);
    return Promise.resolve(
      new Response(
        new ReadableStream({
          start(controller) {
            controller.enqueue(body);
            controller.close();
          },
        }),
        { headers: { "content-type": "text/event-stream" } },
      ),
    );
  }) as typeof fetch;
  class FakeWebSocket {
    binaryType = "blob";
    readyState = 0;
    onopen: (() => void) | null = null;
    onmessage: ((event: { data: unknown }) => void) | null = null;
    onerror: (() => void) | null = null;
    onclose: ((event: { code: number; reason: string }) => void) | null = null;
    constructor(url: string) {
      fakes.attempts.push({ url, headers: new Headers() });
      const answer = next();
      original.setTimeout(() => {
        if (answer === "refuse" || !("ws" in answer)) {
          this.readyState = 3;
          this.onerror?.();
          this.onclose?.({ code: 1006, reason: "" });
          return;
        }
        this.readyState = 1;
        this.onopen?.();
        for (const data of answer.ws) this.onmessage?.({ data });
        this.readyState = 3;
        this.onclose?.({ code: 1000, reason: "" });
      }, 0);
    }
    close(): void {
      this.readyState = 3;
    }
  }
  globalThis.WebSocket = FakeWebSocket as unknown as typeof WebSocket;
  globalThis.setTimeout = ((task: () => void, ms?: number) => {
    if (ms !== undefined && ms === fakes.delays.at(-1)) {
      fakes.retryTimers.push(ms);
      return original.setTimeout(task, 0);
    }
    return original.setTimeout(task, ms);
  }) as typeof setTimeout;
  return fakes;
}

/** Runs a consumer until `until()` holds, then closes it. */
async function consume(
  fakes: Fakes,
  options: Partial<UpstreamOptions> & { url: URL },
  until: () => boolean,
): Promise<{ ids: (string | null)[]; data: unknown[] }> {
  const ids: (string | null)[] = [];
  const data: unknown[] = [];
  const upstream = connectUpstream({
    ...options,
    onEvent(event) {
      ids.push(event.id);
      data.push(event.data);
    },
    onState(_state, detail) {
      fakes.states.push(detail);
      const delay = /retrying in (\d+) ms/.exec(detail);
      if (delay) fakes.delays.push(Number(delay[1]));
    },
  });
  const deadline = Date.now() + 10_000;
  while (!until()) {
    if (Date.now() > deadline) {
      upstream.close();
      throw new Error(`Gave up waiting: ${JSON.stringify(fakes.states)}`);
    }
    await new Promise<void>((resolve) => queueMicrotask(resolve));
    await new Promise<void>((resolve) => setImmediateOr0(resolve));
  }
  upstream.close();
  return { ids, data };
}

function setImmediateOr0(task: () => void): void {
  const immediate = (globalThis as { setImmediate?: (t: () => void) => void })
    .setImmediate;
  if (immediate) immediate(task);
  else setTimeout(task, 0);
}

/** The bound b of the n-th retry in a row (from 0): min(5000, 250 * 2^n). */
const bound = (n: number): number => Math.min(5000, 250 * 2 ** n);

describe("connectUpstream()", () => {
  test("connectUpstream() retries a refused upstream after a delay in [b/2, b], b = 250 ms doubling per failure up to 5 s, jittered, and waits exactly that", async () => {
    const fakes = installFakes(["refuse"]);
    try {
      await consume(
        fakes,
        { url: new URL("http://127.0.0.1:9/events") },
        () => fakes.retryTimers.length >= 16,
      );
    } finally {
      fakes.restore();
    }
    const { delays } = fakes;
    assert.ok(delays[0] >= 125 && delays[0] <= 250, `first: ${delays[0]} ms`);
    delays.forEach((delay, n) =>
      assert.ok(
        delay >= bound(n) / 2 && delay <= bound(n),
        `retry ${n}: ${delay} ms, expected ${bound(n) / 2}..${bound(n)}`,
      )
    );
    assert.equal(Math.max(...delays), Math.min(Math.max(...delays), 5000));
    // Jitter: the delays at the cap (from the 6th retry on) differ.
    const capped = delays.slice(5);
    assert.ok(capped.length >= 10);
    assert.ok(
      new Set(capped).size >= capped.length / 2,
      `capped delays are jittered: ${capped.join(", ")}`,
    );
    // Each announced delay is the wait that follows it.
    assert.deepEqual(fakes.retryTimers, delays.slice(0, 16));
  });

  test("connectUpstream() starts over at the first delay after a connection that opened", async () => {
    const fakes = installFakes([
      "refuse",
      "refuse",
      "refuse",
      { sse: "retry: 1000\n\n" },
      "refuse",
    ]);
    try {
      await consume(
        fakes,
        { url: new URL("http://127.0.0.1:9/events") },
        () => fakes.delays.length >= 5,
      );
    } finally {
      fakes.restore();
    }
    const [a, b, c, afterOpen, next] = fakes.delays;
    assert.ok(a <= bound(0) && b > bound(0) / 2 && c > bound(1) / 2);
    assert.ok(afterOpen >= 125 && afterOpen <= 250, `after open: ${afterOpen}`);
    assert.ok(next >= 250 && next <= 500, `then: ${next}`);
    assert.ok(
      fakes.states.some((s) =>
        /connected to http:\/\/127\.0\.0\.1:9\/events/.test(s)
      ),
    );
  });

  test("connectUpstream() over SSE asks for the whole buffer first (replay=all), then resumes after the last id it saw (header and query), with the token as a bearer header and hidden in every log line", async () => {
    const token = "s3cret-upstream-token";
    const fakes = installFakes([
      { sse: "retry: 1000\n\nid: ab-7\ndata: seven\n\n: heartbeat\n\n" },
      { sse: "id: ab-8\ndata: eight\n\n" },
      "refuse",
    ]);
    let got: { ids: (string | null)[]; data: unknown[] };
    try {
      got = await consume(
        fakes,
        {
          url: new URL(`http://127.0.0.1:9/events?token=${token}`),
          token,
          replayAll: true,
        },
        () => fakes.delays.length >= 3,
      );
    } finally {
      fakes.restore();
    }
    assert.deepEqual(got.ids, ["ab-7", "ab-8"]);
    assert.deepEqual(got.data, ["seven", "eight"]);
    const [first, second, third] = fakes.attempts;
    const params = (a: Attempted) => new URL(a.url).searchParams;
    assert.equal(params(first).get("replay"), "all");
    assert.equal(params(first).get("lastEventId"), null);
    assert.equal(first.headers.get("last-event-id"), null);
    assert.equal(params(second).get("lastEventId"), "ab-7");
    assert.equal(second.headers.get("last-event-id"), "ab-7");
    assert.equal(params(second).get("replay"), null);
    assert.equal(params(third).get("lastEventId"), "ab-8");
    for (const attempt of fakes.attempts) {
      assert.equal(attempt.headers.get("authorization"), `Bearer ${token}`);
      assert.equal(attempt.headers.get("accept"), "text/event-stream");
    }
    // The refusal's line quotes the error, whose URL has the token hidden.
    assert.ok(
      fakes.states.some((line) => line.includes("error sending request")),
      `no refusal line: ${JSON.stringify(fakes.states)}`,
    );
    for (const line of fakes.states) {
      assert.ok(!line.includes(token), `token in a log line: ${line}`);
    }
  });

  test("connectUpstream() over WebSocket adds format=json and ?token=, resumes with lastEventId, keeps a format already given, and reads bare frames as events without id", async () => {
    const token = "ws-t0ken";
    const fakes = installFakes([
      { ws: ['{"id":"cd-1","data":"one"}', "bare frame"] },
      { ws: ['{"type":"heartbeat"}'] },
      "refuse",
    ]);
    let got: { ids: (string | null)[]; data: unknown[] };
    try {
      got = await consume(
        fakes,
        { url: new URL("ws://127.0.0.1:9/events"), token },
        () => fakes.attempts.length >= 3,
      );
    } finally {
      fakes.restore();
    }
    assert.deepEqual(got.ids, ["cd-1", null]);
    assert.deepEqual(got.data, ["one", "bare frame"]);
    const [first, second] = fakes.attempts.map((a) => new URL(a.url));
    assert.equal(first.searchParams.get("format"), "json");
    assert.equal(first.searchParams.get("token"), token);
    assert.equal(first.searchParams.get("replay"), null, "not asked for");
    assert.equal(first.searchParams.get("lastEventId"), null);
    assert.equal(second.searchParams.get("lastEventId"), "cd-1");
    for (const line of fakes.states) {
      assert.ok(!line.includes(token), `token in a log line: ${line}`);
    }

    const raw = installFakes(["refuse"]);
    try {
      await consume(
        raw,
        { url: new URL("ws://127.0.0.1:9/events?format=raw") },
        () => raw.attempts.length >= 1,
      );
    } finally {
      raw.restore();
    }
    assert.equal(
      new URL(raw.attempts[0].url).searchParams.get("format"),
      "raw",
    );
  });
});
