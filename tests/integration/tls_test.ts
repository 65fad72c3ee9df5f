/**
 * TLS served directly (issue 15): self-signed certificates made by openssl
 * in the test; https, wss and SSE; HTTP/2 where the runtime serves it; a
 * relay consuming a wss:// upstream it trusts through NODE_EXTRA_CA_CERTS
 * (Node, Bun) or DENO_CERT (Deno); SIGHUP with a new certificate picked up
 * by new connections while open ones stay; bad TLS flags and files.
 */

import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { connect as connectHttp2 } from "node:http2";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { connect as connectTls, type TLSSocket } from "node:tls";
import { after, before, describe, test } from "node:test";
import {
  type Child,
  connectWs,
  ROOT,
  RUNTIME,
  runtimeCommand,
  type Service,
  startChild,
  startService,
  waitFor,
} from "./_helpers.ts";
import { rawConnect } from "./_raw_ws.ts";
import { type Cert, makeCa, makeCert } from "./_tls.ts";

/** An HTTP/1.1 exchange over TLS that stays open; records what arrives. */
interface TlsExchange {
  text(): string;
  /** Subject CN of the certificate the server presented. */
  subject: string;
  ended: Promise<void>;
  close(): void;
}

function tlsExchange(
  port: number,
  ca: string[],
  request: string,
): Promise<TlsExchange> {
  return new Promise((resolve, reject) => {
    const socket: TLSSocket = connectTls({ host: "127.0.0.1", port, ca });
    let text = "";
    const ended = new Promise<void>((done) => socket.once("close", done));
    socket.setEncoding("utf8");
    socket.on("data", (chunk: string) => (text += chunk));
    socket.once("error", reject);
    socket.once("secureConnect", () => {
      socket.write(request);
      resolve({
        text: () => text,
        subject: String(socket.getPeerCertificate().subject?.CN ?? ""),
        ended,
        close: () => socket.destroy(),
      });
    });
  });
}

function httpRequest(
  method: string,
  path: string,
  headers: Record<string, string> = {},
  body = "",
): string {
  const lines = [`${method} ${path} HTTP/1.1`, "Host: 127.0.0.1"];
  for (const [name, value] of Object.entries(headers)) {
    lines.push(`${name}: ${value}`);
  }
  if (method === "POST") lines.push(`Content-Length: ${body.length}`);
  return lines.join("\r\n") + "\r\n\r\n" + body;
}

async function tlsGet(port: number, ca: string[], path: string) {
  const exchange = await tlsExchange(
    port,
    ca,
    httpRequest("GET", path, { Connection: "close" }),
  );
  await exchange.ended;
  return exchange;
}

async function tlsPublish(
  port: number,
  ca: string[],
  path: string,
  body: string,
): Promise<string> {
  const exchange = await tlsExchange(
    port,
    ca,
    httpRequest("POST", path, { Connection: "close" }, body),
  );
  await exchange.ended;
  const match = /"id":"([^"]+)"/.exec(exchange.text());
  assert.ok(match, exchange.text());
  return match[1];
}

function serveArgs(dir: string, extra: string[] = []): string[] {
  return [
    "--serve-address",
    "127.0.0.1:0",
    "--no-produce",
    "--tls-cert",
    join(dir, "live.crt"),
    "--tls-key",
    join(dir, "live.key"),
    ...extra,
  ];
}

/**
 * The child's exit, or null if it still ran after `ms` (it is then killed):
 * no process or timer outlives the test.
 */
async function exitedWithin(
  child: Child,
  ms: number,
): Promise<{ code: number | null; signal: string | null } | null> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  const result = await Promise.race([
    child.exited,
    new Promise<null>((r) => (timer = setTimeout(() => r(null), ms))),
  ]);
  clearTimeout(timer);
  if (result === null) await child.stop("SIGKILL");
  return result;
}

describe("wsevent --tls-cert --tls-key", () => {
  let dir: string;
  let ca: Cert;
  let first: Cert;
  let second: Cert;
  let origin: Service;

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "wsevent-tls-"));
    ca = makeCa(dir);
    first = makeCert(dir, "first");
    second = makeCert(dir, "second");
    writeFileSync(join(dir, "live.crt"), first.cert);
    writeFileSync(join(dir, "live.key"), first.key);
    origin = await startService(serveArgs(dir));
  });

  after(async () => {
    await origin?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("prints a wss:// URL and serves https, wss and SSE", async () => {
    assert.match(origin.url, /^wss:\/\/127\.0\.0\.1:\d+\/events$/);
    const trusted = [ca.cert];
    const health = await tlsGet(origin.port, trusted, "/healthz");
    assert.match(health.text(), /^HTTP\/1\.1 200/);
    assert.match(health.text(), /"status":"ok"/);
    assert.equal(health.subject, "wsevent test first");
    const ws = await rawConnect(`${origin.url}?format=json`, {
      tls: { ca: trusted },
    });
    assert.equal(ws.status, 101);
    const sse = await tlsExchange(
      origin.port,
      trusted,
      httpRequest("GET", "/events", { Accept: "text/event-stream" }),
    );
    await waitFor(() => sse.text().includes(": connected"), 5000, "SSE");
    const id = await tlsPublish(origin.port, trusted, "/events", "over tls");
    await waitFor(
      () => ws.messages.length > 0 && sse.text().includes("over tls"),
      5000,
      "the event on wss and SSE",
    );
    assert.deepEqual(JSON.parse(ws.messages[0]), { id, data: "over tls" });
    assert.match(sse.text(), new RegExp(`id: ${id}\ndata: over tls\n`));
    ws.destroy();
    sse.close();
  });

  test("a second instance on the same TLS port exits 1: address already in use", async () => {
    // Bun binds TLS servers with SO_REUSEPORT (for reloads): without a
    // check, a second one shares the port and splits the subscribers.
    const [command, base] = runtimeCommand(join(ROOT, "cli.ts"));
    const child = startChild(command, [
      ...base,
      "--serve-address",
      `127.0.0.1:${origin.port}`,
      "--no-produce",
      "--tls-cert",
      join(dir, "live.crt"),
      "--tls-key",
      join(dir, "live.key"),
    ]);
    const result = await exitedWithin(child, 20_000);
    assert.equal(result?.code, 1, child.stderr());
    assert.match(
      child.stderr(),
      new RegExp(
        `error: Cannot listen on 127\\.0\\.0\\.1:${origin.port}: address already in use`,
      ),
    );
  });

  test("plain HTTP on the TLS port gets no answer", async () => {
    const response = await fetch(`http://127.0.0.1:${origin.port}/healthz`)
      .then((r) => r.status, () => "refused");
    assert.notEqual(response, 200);
  });

  test(
    RUNTIME === "bun"
      ? "serves HTTP/1.1 only on Bun (Bun.serve has no HTTP/2)"
      : "serves HTTP/2 (ALPN h2) beside HTTP/1.1, SSE included",
    async () => {
      const session = connectHttp2(`https://127.0.0.1:${origin.port}`, {
        ca: [ca.cert],
      });
      session.on("error", () => {});
      try {
        const alpn = await new Promise<string>((resolve) => {
          session.once(
            "connect",
            () => resolve(String(session.alpnProtocol ?? "")),
          );
          session.once("error", () => resolve("failed"));
          setTimeout(() => resolve("timeout"), 5000);
        });
        if (RUNTIME === "bun") {
          assert.notEqual(alpn, "h2");
          return;
        }
        assert.equal(alpn, "h2");
        const stream = session.request({
          ":path": "/events",
          accept: "text/event-stream",
        });
        let text = "";
        stream.setEncoding("utf8");
        stream.on("data", (chunk: string) => (text += chunk));
        await waitFor(() => text.includes(": connected"), 5000, "h2 SSE");
        const id = await tlsPublish(origin.port, [ca.cert], "/events", "h2");
        await waitFor(() => text.includes(`id: ${id}`), 5000, "the h2 event");
        stream.close();
      } finally {
        session.destroy();
      }
    },
  );

  test("a relay consumes the wss:// upstream when it trusts the certificate", async () => {
    const caFile = join(dir, "ca.crt");
    const args = [
      "--serve-address",
      "127.0.0.1:0",
      "--serve-path",
      "relayed",
      "--no-produce",
      "--consume-url",
      `wss://127.0.0.1:${origin.port}/events`,
      "--heartbeat",
      "1000",
    ];
    const relay = await startService(args, {
      NODE_EXTRA_CA_CERTS: caFile,
      DENO_CERT: caFile,
    });
    const untrusted = await startService(args, {
      NODE_EXTRA_CA_CERTS: "",
      DENO_CERT: "",
    });
    try {
      await waitFor(
        () => /upstream (connected|open)|connected to/i.test(relay.stderr()),
        10_000,
        "the relay to connect",
      );
      const ws = connectWs(
        `${relay.http.replace("http", "ws")}/relayed?format=json`,
      );
      await ws.opened;
      const id = await tlsPublish(
        origin.port,
        [ca.cert],
        "/events",
        "relayed",
      );
      await waitFor(() => ws.messages.length > 0, 5000, "the relayed event");
      assert.deepEqual(JSON.parse(ws.messages[0]), { id, data: "relayed" });
      ws.close();
      const ready = await fetch(`${untrusted.http}/readyz`);
      assert.equal(ready.status, 503, "a relay that does not trust the CA");
      await ready.body?.cancel();
    } finally {
      await relay.stop();
      await untrusted.stop();
    }
  });

  test("SIGHUP: new connections get the new certificate, open ones stay", async () => {
    const both = [ca.cert];
    const ws = await rawConnect(`${origin.url}?format=json`, {
      tls: { ca: both },
    });
    assert.equal(ws.status, 101);
    const sse = await tlsExchange(
      origin.port,
      both,
      httpRequest("GET", "/events", { Accept: "text/event-stream" }),
    );
    assert.equal(sse.subject, "wsevent test first");
    writeFileSync(join(dir, "live.crt"), second.cert);
    writeFileSync(join(dir, "live.key"), second.key);
    const logged = () => origin.stderr().split("new connections use").length;
    const before = logged();
    process.kill(origin.proc.pid!, "SIGHUP");
    await waitFor(() => logged() > before, 10_000, "the reload log line");
    // Bun swaps SO_REUSEPORT listeners: where Linux would reset the old
    // one's queued connections, the log says how to avoid it.
    let migrate: string | null = null;
    try {
      migrate = readFileSync("/proc/sys/net/ipv4/tcp_migrate_req", "utf8");
    } catch {
      // Not Linux.
    }
    assert.equal(
      /tcp_migrate_req=1/.test(origin.stderr()),
      RUNTIME === "bun" && migrate?.trim() === "0",
      origin.stderr(),
    );
    // Several new connections: with the old listener still open beside
    // the new one, some would land on the old certificate.
    for (let i = 0; i < 8; i++) {
      const fresh = await tlsGet(origin.port, both, "/healthz");
      assert.equal(fresh.subject, "wsevent test second", `connection ${i}`);
      assert.match(fresh.text(), /^HTTP\/1\.1 200/);
    }
    const id = await tlsPublish(origin.port, both, "/events", "after reload");
    await waitFor(
      () =>
        ws.messages.some((m) => m.includes("after reload")) &&
        sse.text().includes("after reload"),
      5000,
      "the event on the connections opened before the reload",
    );
    assert.ok(!ws.isEnded());
    assert.match(sse.text(), new RegExp(`id: ${id}`));
    // A broken pair is refused and the current one stays.
    writeFileSync(join(dir, "live.key"), first.key);
    const errors = () => origin.stderr().split("keeping the old one").length;
    const errorsBefore = errors();
    process.kill(origin.proc.pid!, "SIGHUP");
    await waitFor(() => errors() > errorsBefore, 10_000, "the refusal");
    assert.equal(
      (await tlsGet(origin.port, both, "/healthz")).subject,
      "wsevent test second",
    );
    ws.destroy();
    sse.close();
  });
});

describe("wsevent TLS flags and files that cannot be used", () => {
  let dir: string;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "wsevent-tls-bad-"));
    makeCa(dir);
    const cert = makeCert(dir, "a");
    const other = makeCert(dir, "b");
    writeFileSync(join(dir, "live.crt"), cert.cert);
    writeFileSync(join(dir, "live.key"), other.key);
    writeFileSync(join(dir, "text.crt"), "not a certificate");
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  async function run(args: string[]) {
    const [command, base] = runtimeCommand(join(ROOT, "cli.ts"));
    const child = startChild(command, [...base, ...args]);
    const result = await exitedWithin(child, 20_000);
    return { code: result?.code, stderr: child.stderr() };
  }

  test("-tls-cert without -tls-key exits 2 naming the missing flag", async () => {
    const { code, stderr } = await run([
      "--tls-cert",
      join(dir, "live.crt"),
    ]);
    assert.equal(code, 2);
    assert.match(stderr, /Missing value for flag -tls-key/);
  });

  test("a missing or non-PEM file exits 2 naming it", async () => {
    const missing = await run(serveArgs(dir, [
      "--tls-cert",
      join(dir, "nope.crt"),
    ]));
    assert.equal(missing.code, 2);
    assert.match(
      missing.stderr,
      /Cannot read flag -tls-cert file ".*nope\.crt"/,
    );
    const text = await run(
      serveArgs(dir, ["--tls-cert", join(dir, "text.crt")]),
    );
    assert.equal(text.code, 2);
    assert.match(text.stderr, /expected PEM/);
  });

  test("a key that does not match the certificate exits 1 with a clear line", async () => {
    const { code, stderr } = await run(serveArgs(dir));
    assert.equal(code, 1);
    assert.match(stderr, /^error: Cannot serve TLS: /m);
    assert.doesNotMatch(stderr, /\n\s+at /, "no stack trace");
  });
});

describe("Deno least privilege with TLS and a JWT key file (spawns Deno on every runtime: the flags are Deno's)", () => {
  const DENO = join(ROOT, "node_modules", ".bin", "deno");
  let dir: string;
  let ca: Cert;
  before(() => {
    dir = mkdtempSync(join(tmpdir(), "wsevent-tls-deno-"));
    ca = makeCa(dir);
    const cert = makeCert(dir, "live");
    writeFileSync(join(dir, "live.crt"), cert.cert);
    writeFileSync(join(dir, "live.key"), cert.key);
    writeFileSync(
      join(dir, "jwt.secret"),
      "a-secret-of-at-least-thirty-two-bytes",
    );
  });
  after(() => rmSync(dir, { recursive: true, force: true }));

  const args = () => [
    join(ROOT, "cli.ts"),
    ...serveArgs(dir, ["--jwt-key", `@${join(dir, "jwt.secret")}`]),
  ];

  test("--allow-read for the three files only serves https and h2", async () => {
    const files = ["live.crt", "live.key", "jwt.secret"].map((f) =>
      join(dir, f)
    );
    const child = startChild(DENO, [
      "run",
      "--allow-net",
      `--allow-read=${files.join(",")}`,
      ...args(),
    ]);
    try {
      await waitFor(
        () =>
          /Serving on: wss:/.test(child.stdout()) ||
          child.proc.exitCode !== null,
        20_000,
        "Serving on:",
      );
      const port = Number(
        /wss:\/\/127\.0\.0\.1:(\d+)/.exec(child.stdout())?.[1],
      );
      assert.ok(port > 0, child.stderr());
      assert.match(child.stderr(), /serving TLS \(h2, http\/1\.1\)/);
      const health = await tlsGet(port, [ca.cert], "/healthz");
      assert.match(health.text(), /^HTTP\/1\.1 200/);
      const refused = await tlsGet(port, [ca.cert], "/events");
      assert.match(refused.text(), /^HTTP\/1\.1 401/, "the JWT key was read");
    } finally {
      await child.stop();
    }
  });

  test("without --allow-read it exits 2 naming the file", async () => {
    const child = startChild(DENO, [
      "run",
      "--allow-net",
      "--no-prompt",
      ...args(),
    ]);
    const result = await exitedWithin(child, 20_000);
    assert.equal(result?.code, 2, child.stderr());
    assert.match(
      child.stderr(),
      /Cannot (read flag -tls-cert file|use flag -jwt-key: Cannot read the JWT key file)/,
    );
  });
});
