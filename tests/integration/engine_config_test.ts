/**
 * Instances with a Redis engine configured in ways that must be verified
 * end to end: `rediss://` to a TLS-only redis-server whose certificate a
 * test CA signed (made by openssl), the wrong scheme for a port, a URL
 * that Redis refuses (database, password), and `-buffer` differing
 * between instances. Real redis-server and wsevent processes on loopback.
 */

import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, describe, test } from "node:test";
import {
  connectWs,
  publish,
  type Service,
  startService,
  waitFor,
} from "./_helpers.ts";
import { type RedisServer, startRedis } from "./_redis.ts";
import { makeCa, makeCert } from "./_tls.ts";

async function readyz(
  http: string,
): Promise<{ status: number; problem?: string }> {
  const response = await fetch(`${http}/readyz`);
  const body = await response.json() as { engine?: { problem?: string } };
  return { status: response.status, problem: body.engine?.problem };
}

async function waitForReadyz(http: string, status: number): Promise<void> {
  const deadline = Date.now() + 20_000;
  while ((await readyz(http)).status !== status) {
    if (Date.now() > deadline) {
      throw new Error(`${http}/readyz never answered ${status}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

async function publishStatus(http: string): Promise<[number, string]> {
  const response = await fetch(`${http}/events`, {
    method: "POST",
    body: "x",
  });
  return [response.status, await response.text()];
}

function args(engine: string, extra: string[] = []): string[] {
  return [
    "--serve-address",
    "127.0.0.1:0",
    "--no-produce",
    "--engine",
    engine,
    ...extra,
  ];
}

describe("engine: rediss://, refused URLs, -buffer", {
  timeout: 120_000,
}, () => {
  let dir: string;
  let caFile: string;
  let tls: RedisServer;
  let plain: RedisServer;
  const services: Service[] = [];
  const start = async (
    argv: string[],
    env: Record<string, string> = {},
  ): Promise<Service> => {
    const service = await startService(argv, env);
    services.push(service);
    return service;
  };

  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "wsevent-engine-tls-"));
    makeCa(dir);
    makeCert(dir, "redis");
    caFile = join(dir, "ca.crt");
    [tls, plain] = await Promise.all([
      startRedis({}, {
        cert: join(dir, "redis.crt"),
        key: join(dir, "redis.key"),
        ca: caFile,
      }),
      startRedis(),
    ]);
  });
  after(async () => {
    await Promise.all(services.map((s) => s.stop()));
    await tls?.stop();
    await plain?.stop();
    rmSync(dir, { recursive: true, force: true });
  });

  test("an instance with -engine rediss:// that trusts the test CA (NODE_EXTRA_CA_CERTS on Node and Bun, DENO_CERT on Deno) stores and delivers through a TLS-only Redis; one that does not trust it stays unready, naming the certificate", async () => {
    assert.match(tls.url, /^rediss:\/\/127\.0\.0\.1:\d+$/);
    const [trusted, untrusted] = await Promise.all([
      start(args(tls.url), { NODE_EXTRA_CA_CERTS: caFile, DENO_CERT: caFile }),
      start(args(tls.url), { NODE_EXTRA_CA_CERTS: "", DENO_CERT: "" }),
    ]);
    await waitForReadyz(trusted.http, 200);
    const ws = connectWs(`${trusted.url}?format=json`);
    try {
      await ws.opened;
      const id = await publish(trusted.http, "events", "over TLS");
      await waitFor(() => ws.messages.length > 0, 10_000, "the event");
      assert.deepEqual(JSON.parse(ws.messages[0]), { id, data: "over TLS" });
    } finally {
      ws.close();
    }
    // Stored in that Redis, read over TLS by redis-cli.
    assert.equal(await tls.cli("XLEN", "wsevent:{events}:log"), "1");

    await waitFor(
      () => /certificate/.test(untrusted.stderr()),
      15_000,
      "the untrusted instance's log",
    );
    assert.match(
      untrusted.stderr(),
      /engine cannot reach rediss:\/\/127\.0\.0\.1:\d+: self[- ]signed certificate in certificate chain/,
    );
    const state = await readyz(untrusted.http);
    assert.equal(state.status, 503);
    assert.match(state.problem ?? "", /self[- ]signed certificate/);
    const [status, body] = await publishStatus(untrusted.http);
    assert.equal(status, 503, body);
    assert.match(body, /engine_unavailable/);
  });

  test("the wrong scheme for a port is named in the log: rediss:// at a plain Redis, redis:// at a TLS one", async () => {
    const plainPort = new URL(plain.url).port;
    const tlsPort = new URL(tls.url).port;
    const [tlsAtPlain, plainAtTls] = await Promise.all([
      start(args(`rediss://127.0.0.1:${plainPort}`)),
      start(args(`redis://127.0.0.1:${tlsPort}`)),
    ]);
    await waitFor(
      () => /is that port a TLS one\?/.test(tlsAtPlain.stderr()),
      15_000,
      `the hint in ${tlsAtPlain.stderr()}`,
    );
    assert.match(
      tlsAtPlain.stderr(),
      /engine cannot reach rediss:\/\/127\.0\.0\.1:\d+: .*\(rediss:\/\/ speaks TLS: is that port a TLS one\?\)/,
    );
    await waitFor(
      () => /use rediss:\/\//.test(plainAtTls.stderr()),
      15_000,
      `the hint in ${plainAtTls.stderr()}`,
    );
    for (const service of [tlsAtPlain, plainAtTls]) {
      assert.equal((await readyz(service.http)).status, 503);
    }
  });

  test("an instance whose URL Redis refuses (a database beyond `databases`; a wrong password given in WSEVENT_ENGINE) logs one error line naming it with the URL redacted, stays up and unready with the problem on /readyz, and answers a publish 503", async () => {
    const port = plain.port;
    await plain.cli(
      "ACL",
      "SETUSER",
      "app",
      "on",
      ">right",
      "~*",
      "&*",
      "+@all",
    );
    const [db, password] = await Promise.all([
      start(args(`redis://127.0.0.1:${port}/99`)),
      start(
        ["--serve-address", "127.0.0.1:0", "--no-produce"],
        { WSEVENT_ENGINE: `redis://app:wr0ngpw@127.0.0.1:${port}` },
      ),
    ]);
    const cases = [
      {
        service: db,
        line: new RegExp(
          `ERROR engine: Redis refuses redis://127\\.0\\.0\\.1:${port}/99: ERR DB index is out of range \\(the database number in -engine \\(/N\\) must be below Redis's \`databases\``,
        ),
      },
      {
        service: password,
        line: new RegExp(
          `ERROR engine: Redis refuses redis://\\*\\*\\*:\\*\\*\\*@127\\.0\\.0\\.1:${port}: WRONGPASS .*\\(check the user and password in -engine \\(WSEVENT_ENGINE\\)`,
        ),
      },
    ];
    for (const { service, line } of cases) {
      await waitFor(
        () => line.test(service.stderr()),
        15_000,
        `the error line in ${service.stderr()}`,
      );
      const state = await readyz(service.http);
      assert.equal(state.status, 503);
      assert.match(state.problem ?? "", /^Redis refuses redis:\/\//);
      const [status, body] = await publishStatus(service.http);
      assert.equal(status, 503, body);
    }
    // A few retries later: still one line each, still running, no secret.
    await new Promise((r) => setTimeout(r, 3000));
    for (const { service } of cases) {
      const lines = service.stderr().split("\n");
      assert.equal(
        lines.filter((l) => l.includes("Redis refuses")).length,
        1,
        service.stderr(),
      );
      assert.equal(service.proc.exitCode, null, "still running");
      assert.ok(!service.stderr().includes("wr0ngpw"), service.stderr());
      assert.ok(!(await readyz(service.http)).problem?.includes("wr0ngpw"));
    }
  });

  test("an instance started with another -buffer than the last one to publish warns that each publish trims the stream to its publisher's -buffer", async () => {
    const first = await start(args(plain.url, ["--buffer", "50"]));
    await waitForReadyz(first.http, 200);
    await publish(first.http, "events", "trimmed to 50");
    const second = await start(args(plain.url));
    await waitForReadyz(second.http, 200);
    assert.match(
      second.stderr(),
      /WARN engine: wsevent:\{events\}:log was last trimmed to 50 events by an instance with -buffer 50, this one has -buffer 1000: each publish trims the stream to its publisher's -buffer, so give every instance the same -buffer/,
    );
    assert.doesNotMatch(first.stderr(), /last trimmed/);
  });
});
