import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { createServer } from "node:net";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  connectSse,
  connectWs,
  nginxTemplate,
  relayConnected,
  ROOT,
  runtimeCommand,
  startChild,
  startHub,
  startNginx,
  startRelay,
  startService,
  waitFor,
} from "./_helpers.ts";

describe("publish and formats", { timeout: 60_000 }, () => {
  test("POST answers 202 with the id; 400 empty; 413 over the limit; events reach SSE and WebSocket", async () => {
    const hub = await startHub([
      "--max-body",
      "100",
    ]);
    const ws = connectWs(hub.url);
    const json = connectWs(`${hub.url}?format=json`);
    const sse = connectSse(`${hub.http}/events`);
    try {
      await Promise.all([ws.opened, json.opened, sse.headers]);
      const ok = await fetch(`${hub.http}/events`, {
        method: "POST",
        body: "hello",
      });
      assert.equal(ok.status, 202);
      const { id } = await ok.json() as { id: string };
      assert.match(id, /^[0-9a-z]+-0$/);
      const empty = await fetch(`${hub.http}/events`, {
        method: "POST",
        body: "",
      });
      assert.equal(empty.status, 400);
      assert.equal((await empty.json()).code, "empty_body");
      const big = await fetch(`${hub.http}/events`, {
        method: "POST",
        body: "x".repeat(101),
      });
      assert.equal(big.status, 413);
      assert.equal((await big.json()).code, "body_too_large");
      await waitFor(
        () =>
          ws.messages.length >= 1 && json.messages.length >= 1 &&
          sse.messages.length >= 1,
        5_000,
        "delivery",
      );
      assert.deepEqual(ws.messages, ["hello"]);
      assert.deepEqual(json.messages.map((m) => JSON.parse(m)), [{
        id,
        data: "hello",
      }]);
      assert.deepEqual(sse.messages, [{ event: "message", data: "hello", id }]);
    } finally {
      ws.close();
      json.close();
      sse.close();
      await hub.stop();
    }
  });

  test("payloads of every frame length class (1 B to 150 KB) arrive intact, bare and JSON", async () => {
    const hub = await startHub([
      "--max-body",
      "200000",
    ]);
    const bare = connectWs(hub.url);
    const json = connectWs(`${hub.url}?format=json`);
    try {
      await Promise.all([bare.opened, json.opened]);
      const bodies = [1, 125, 126, 127, 65535, 65536, 70000, 150000].map((n) =>
        "é".repeat(Math.floor(n / 2)) + "x".repeat(n % 2)
      );
      for (const body of bodies) {
        await fetch(`${hub.http}/events`, { method: "POST", body });
      }
      await waitFor(
        () =>
          bare.messages.length >= bodies.length &&
          json.messages.length >= bodies.length,
        10_000,
        "all sizes",
      );
      assert.deepEqual(bare.messages, bodies);
      assert.deepEqual(json.messages.map((m) => JSON.parse(m).data), bodies);
    } finally {
      bare.close();
      json.close();
      await hub.stop();
    }
  });

  test("binary payloads stay binary on WebSocket and through a relay", async () => {
    const hub = await startHub();
    const relay = await startRelay(hub.url);
    const direct = connectWs(hub.url);
    const relayed = connectWs(relay.url);
    try {
      await Promise.all([direct.opened, relayed.opened]);
      await relayConnected(relay);
      const body = new Uint8Array([0, 255, 1, 2, 3]);
      const response = await fetch(`${hub.http}/events`, {
        method: "POST",
        body,
        headers: { "Content-Type": "application/octet-stream" },
      });
      assert.equal(response.status, 202);
      await waitFor(
        () => direct.messages.length >= 1 && relayed.messages.length >= 1,
        5_000,
        "binary delivery",
      );
      assert.deepEqual(direct.messages, ["<binary 5>"]);
      assert.deepEqual(relayed.messages, ["<binary 5>"]);
    } finally {
      direct.close();
      relayed.close();
      await Promise.all([hub.stop(), relay.stop()]);
    }
  });

  test("SSE framing: multi-line data, trailing newline, retry hint, heartbeat comments, no-buffering headers", async () => {
    const hub = await startHub([
      "--heartbeat",
      "200",
    ]);
    const sse = connectSse(`${hub.http}/events`);
    try {
      const headers = await sse.headers;
      assert.match(headers.get("content-type") ?? "", /^text\/event-stream/);
      assert.match(headers.get("cache-control") ?? "", /no-cache/);
      assert.equal(headers.get("x-accel-buffering"), "no");
      await fetch(`${hub.http}/events`, {
        method: "POST",
        body: "one\ntwo\r\nthree\n",
      });
      await waitFor(
        () => sse.messages.length >= 1 && /: heartbeat/.test(sse.raw()),
        5_000,
        "event and heartbeat",
      );
      assert.match(sse.raw(), /^retry: \d+\n/);
      assert.match(
        sse.raw(),
        /id: \S+\ndata: one\ndata: two\ndata: three\ndata: \n\n/,
      );
      assert.equal(sse.messages[0].data, "one\ntwo\nthree\n");
      // Nothing but SSE in the body: no second HTTP head from the server
      // framework (@hono/node-server once wrote one after ours).
      assert.doesNotMatch(sse.raw(), /HTTP\/1\.1|x-hono-already-sent/i);
      assert.match(
        sse.raw(),
        /^(?:(?:retry|id|data|event): [^\n]*\n|: [^\n]*\n|\n)*$/,
      );
    } finally {
      sse.close();
      await hub.stop();
    }
  });

  test("the live view and the index page arrive over HTTP with their Content-Security-Policy header (the nonce of the page's inline code)", async () => {
    const hub = await startHub();
    try {
      for (const path of ["/events", "/"]) {
        const response = await fetch(`${hub.http}${path}`, {
          headers: { Accept: "text/html" },
        });
        const page = await response.text();
        assert.equal(response.status, 200, path);
        const nonce = /<(?:script|style) nonce="([^"]+)"/.exec(page)?.[1];
        assert.ok(nonce, `${path} has an inline script or style with a nonce`);
        const policy = response.headers.get("content-security-policy") ?? "";
        assert.match(policy, /default-src 'none'/, path);
        assert.ok(
          policy.includes(`style-src 'nonce-${nonce}'`),
          `${path}: ${policy}`,
        );
      }
    } finally {
      await hub.stop();
    }
  });

  test("an SSE upstream (http://) can be relayed, keeping ids", async () => {
    const hub = await startHub();
    const relay = await startRelay(`${hub.http}/events`);
    const json = connectWs(`${relay.url}?format=json`);
    try {
      await json.opened;
      await relayConnected(relay);
      const response = await fetch(`${hub.http}/events`, {
        method: "POST",
        body: "via sse\n",
      });
      const { id } = await response.json() as { id: string };
      await waitFor(
        () => json.messages.some((m) => m.includes(id)),
        5_000,
        "relayed event",
      );
      assert.deepEqual(JSON.parse(json.messages.find((m) => m.includes(id))!), {
        id,
        data: "via sse\n",
      });
    } finally {
      json.close();
      await Promise.all([hub.stop(), relay.stop()]);
    }
  });

  test("SSE and WebSocket work through nginx", async () => {
    const hub = await startHub([
      "--heartbeat",
      "200",
    ]);
    const nginx = await startNginx(nginxTemplate(), [hub.port]);
    const sse = connectSse(`http://127.0.0.1:${nginx.port}/events`);
    const ws = connectWs(`ws://127.0.0.1:${nginx.port}/events`);
    try {
      await Promise.all([sse.headers, ws.opened]);
      const response = await fetch(`http://127.0.0.1:${nginx.port}/events`, {
        method: "POST",
        body: "through nginx",
      });
      assert.equal(response.status, 202);
      // Unbuffered: the event and a heartbeat arrive while the stream stays open.
      await waitFor(
        () =>
          sse.messages.length >= 1 && ws.messages.length >= 1 &&
          /: heartbeat/.test(sse.raw()),
        5_000,
        "delivery through nginx",
      );
      assert.equal(sse.messages[0].data, "through nginx");
      assert.deepEqual(ws.messages, ["through nginx"]);
    } finally {
      sse.close();
      ws.close();
      await nginx.stop();
      await hub.stop();
    }
  });
});

describe("command line", { timeout: 60_000 }, () => {
  const run = async (
    args: string[],
  ): Promise<{ code: number | null; stdout: string; stderr: string }> => {
    const [command, base] = runtimeCommand(join(ROOT, "cli.ts"));
    const child = startChild(command, [...base, ...args]);
    const { code } = await child.exited;
    return { code, stdout: child.stdout(), stderr: child.stderr() };
  };

  test("-h, -help and --help print every flag of README's flag table, and README's table has every flag they print", async () => {
    const readme = readFileSync(join(ROOT, "README.md"), "utf8");
    const section = readme.slice(
      readme.indexOf("### Flags"),
      readme.indexOf("\n## ", readme.indexOf("### Flags")),
    );
    const documented = new Set(
      section.split("\n").filter((line) => line.startsWith("| `-"))
        .flatMap((line) =>
          [...line.split("|")[1].matchAll(/`(-[a-z-]+)`/g)].map((m) => m[1])
        ),
    );
    assert.ok(documented.size >= 20, `README's table: ${[...documented]}`);
    let printed: string[] = [];
    for (const flag of ["-h", "-help", "--help"]) {
      const { code, stdout } = await run([flag]);
      assert.equal(code, 0);
      // Flag lines: two spaces, then the flag (and its aliases).
      const names = stdout.split("\n").flatMap((line) =>
        /^ {2}-/.test(line)
          ? line.trim().split(/\s{2,}| value/)[0].split(", ").map((f) =>
            f.trim()
          )
          : []
      );
      if (flag === "-h") printed = names;
      else assert.deepEqual(names, printed, `${flag} prints what -h prints`);
    }
    for (const name of documented) {
      assert.ok(printed.includes(name), `${name} (README) is not in -h`);
    }
    for (const name of printed) {
      // -help is -h's long spelling, which README's row lists as -h.
      if (name === "-help") continue;
      assert.ok(documented.has(name), `${name} (-h) is not in README's table`);
    }
  });

  test("--version prints the version and exits 0", async () => {
    const { code, stdout } = await run(["--version"]);
    assert.equal(code, 0);
    assert.match(stdout, /^wsevent \d+\.\d+\.\d+/);
  });

  test("usage errors: one line naming the problem, exit 2, no stack trace", async () => {
    const cases: [string[], RegExp][] = [
      [["-bogus"], /Unknown flag: "-bogus"/],
      [["-serve-address"], /Missing value for flag -serve-address/],
      [["-serve-address", "localhost:abc"], /expected a port/],
      [["-serve-address", "localhost:70000"], /expected a port/],
      [["-interval", "0"], /-interval/],
      [["--consume-url", "ftp://x"], /ws, wss, http or https/],
      [["subscribe"], /Missing the stream URL/],
    ];
    for (const [args, pattern] of cases) {
      const { code, stderr } = await run(args);
      assert.equal(code, 2, `exit code for ${args.join(" ")}`);
      assert.match(stderr, pattern);
      assert.match(stderr, /^error: /);
      assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
    }
  });

  test("a port in use: one clear line and exit 1", async () => {
    const blocker = createServer();
    await new Promise<void>((r) => blocker.listen(0, "127.0.0.1", r));
    const address = blocker.address();
    const port = typeof address === "object" && address !== null
      ? address.port
      : 0;
    try {
      const { code, stderr } = await run([
        "-serve-address",
        `127.0.0.1:${port}`,
      ]);
      assert.equal(code, 1);
      assert.match(
        stderr,
        new RegExp(
          `error: Cannot listen on 127\\.0\\.0\\.1:${port}: address already in use`,
        ),
      );
      assert.doesNotMatch(stderr, /\n\s+at /);
    } finally {
      blocker.close();
    }
  });

  test("IPv6 loopback [::1] serves", async () => {
    const service = await startService([
      "-serve-address",
      "[::1]:0",
      "-no-produce",
    ]);
    try {
      assert.match(service.url, /^ws:\/\/\[::1\]:\d+\/events$/);
      const response = await fetch(`http://[::1]:${service.port}/healthz`);
      assert.equal(response.status, 200);
    } finally {
      await service.stop();
    }
  });
});
