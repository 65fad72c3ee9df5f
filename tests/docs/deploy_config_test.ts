/**
 * The production examples in docs/deploy/: nginx and HAProxy configs are
 * checked by the real servers (nginx -t, haproxy -c) and then run, from a
 * temporary copy whose addresses, ports and paths point at this machine's
 * 127.0.0.1 only, in front of a tiny backend: a GET, an SSE stream that
 * stays open and a WebSocket must pass through. The systemd unit is parsed
 * here (and given to systemd-analyze verify where it exists).
 *
 * @module
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  type Backend,
  firstWebSocketMessage,
  freePort,
  nginxTestCopy,
  parseUnit,
  readUntil,
  SSE_FIRST,
  startBackend,
  startChild,
  UNIT_KEYS,
  unitValue as value,
  waitForPort,
  WS_MESSAGE,
} from "./_deploy_helpers.ts";
import { ROOT } from "./_plantuml.ts";
import { serveConfig } from "../_config.ts";
import { assertKnownKeys, assertVerifies, run } from "./_unit_checks.ts";

const DEPLOY = join(ROOT, "docs/deploy");
const NGINX_CONF = readFileSync(join(DEPLOY, "nginx.conf"), "utf8");
const HAPROXY_CFG = readFileSync(join(DEPLOY, "haproxy.cfg"), "utf8");
const UNIT = readFileSync(join(DEPLOY, "wsevent.service"), "utf8");
const SERVER_TEST = { timeout: 30_000 };

function defaultHeartbeatSeconds(): number {
  return serveConfig([]).heartbeatMs / 1000;
}

/** Seconds in an nginx time ("120s", "1h", "75" = seconds) or HAProxy time ("120s", "5000" = ms). */
function seconds(text: string, bareUnit: "s" | "ms"): number {
  const match = /^(\d+)(ms|s|m|h|d)?$/.exec(text.trim());
  assert.ok(match, `not a duration: ${text}`);
  const factors: Record<string, number> = {
    ms: 0.001,
    s: 1,
    m: 60,
    h: 3600,
    d: 86400,
  };
  const factor = factors[match[2] ?? bareUnit];
  assert.ok(factor !== undefined, `unknown unit in ${text}`);
  return Number(match[1]) * factor;
}

function directive(text: string, pattern: RegExp): string {
  const match = pattern.exec(text);
  assert.ok(match, `missing: ${pattern}`);
  return match[1];
}

/** Every address a test config listens on or proxies to must be 127.0.0.1. */
function assertLoopbackOnly(config: string, patterns: RegExp[]): void {
  for (const pattern of patterns) {
    for (const match of config.matchAll(pattern)) {
      assert.match(match[1], /^127\.0\.0\.1:\d+$/, `not loopback: ${match[0]}`);
    }
  }
}

/** The checks a proxy in front of wsevent instances must pass. */
async function assertProxies(port: number, backend: Backend): Promise<void> {
  const base = `http://127.0.0.1:${port}`;
  const health = await fetch(`${base}/healthz`);
  assert.equal(health.status, 200);
  assert.deepEqual(await health.json(), { status: "ok" });
  const proxied = backend.seen.find((r) =>
    r.url === "/healthz" && r.headers["x-forwarded-for"]
  );
  assert.ok(proxied, "backend saw no /healthz with X-Forwarded-For");

  // The backend writes one event and keeps the response open: the proxy
  // must pass it on while the stream lasts. (nginx streams this small event
  // even with buffering on, so "proxy_buffering off" is checked statically.)
  const abort = new AbortController();
  try {
    const stream = await fetch(`${base}/events`, {
      headers: { accept: "text/event-stream" },
      signal: abort.signal,
    });
    assert.equal(stream.status, 200);
    assert.match(
      stream.headers.get("content-type") ?? "",
      /^text\/event-stream/,
    );
    assert.ok(stream.body);
    assert.ok(
      (await readUntil(stream.body, "data: first", 5_000)).includes(SSE_FIRST),
    );
  } finally {
    abort.abort();
  }

  assert.equal(
    await firstWebSocketMessage(`ws://127.0.0.1:${port}/events`, 5_000),
    WS_MESSAGE,
  );
  const upgrade = backend.seen.find((r) => r.upgrade);
  assert.ok(upgrade, "backend saw no upgrade");
  assert.equal(upgrade.headers.upgrade?.toLowerCase(), "websocket");
  assert.match(String(upgrade.headers.connection), /upgrade/i);

  const metrics = await fetch(`${base}/metrics`);
  assert.equal(metrics.status, 200, "local clients may read /metrics");
  await metrics.body?.cancel();
}

describe("docs/deploy/nginx.conf", () => {
  test("has what WebSocket and SSE need behind nginx", () => {
    assert.match(NGINX_CONF, /map \$http_upgrade \$connection_upgrade \{/);
    assert.match(NGINX_CONF, /proxy_http_version 1\.1;/);
    assert.match(NGINX_CONF, /proxy_set_header Upgrade \$http_upgrade;/);
    assert.match(
      NGINX_CONF,
      /proxy_set_header Connection \$connection_upgrade;/,
    );
    assert.match(NGINX_CONF, /proxy_buffering off;/);
    const readTimeout = seconds(
      directive(NGINX_CONF, /proxy_read_timeout\s+([^;]+);/),
      "s",
    );
    assert.ok(
      readTimeout >= 2 * defaultHeartbeatSeconds(),
      `proxy_read_timeout ${readTimeout}s`,
    );
    const upstream = directive(NGINX_CONF, /upstream wsevent \{([^}]*)\}/);
    assert.ok(
      (upstream.match(/^\s*server /gm) ?? []).length >= 2,
      "several instances",
    );
  });

  test(
    "nginx -t accepts it, and nginx passes GET, SSE and WebSocket through",
    SERVER_TEST,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "wsevent-nginx-"));
      const backend = await startBackend();
      let nginx: ReturnType<typeof startChild> | undefined;
      try {
        const port = await freePort();
        const config = nginxTestCopy(NGINX_CONF, dir, port, () => backend.port);
        assert.doesNotMatch(
          config,
          /\/var\/|\/run\/|^user /m,
          "production paths left in the test copy",
        );
        assertLoopbackOnly(config.replace(/#.*$/gm, ""), [
          /listen[ \t]+([^;\s]+)/g,
          /^[ \t]*server[ \t]+([^;\s{]+)[^{;]*;/gm,
        ]);
        const file = join(dir, "nginx.conf");
        writeFileSync(file, config);
        mkdirSync(join(dir, "logs"));

        const check = run("nginx", ["-t", "-p", `${dir}/`, "-c", file]);
        assert.equal(check.status, 0, `nginx -t failed:\n${check.output}`);
        assert.match(check.output, /test is successful/);

        nginx = startChild("nginx", [
          "-p",
          `${dir}/`,
          "-c",
          file,
          "-g",
          "daemon off;",
        ]);
        await waitForPort(port, nginx, 10_000);
        await assertProxies(port, backend);
      } finally {
        await nginx?.stop();
        await backend.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe("docs/deploy/haproxy.cfg", () => {
  test("has WebSocket tunnel and SSE timeouts above the heartbeat, and /healthz checks", () => {
    const heartbeat = defaultHeartbeatSeconds();
    for (const name of ["client", "server"]) {
      const value = seconds(
        directive(HAPROXY_CFG, new RegExp(`timeout ${name}\\s+(\\S+)`)),
        "ms",
      );
      assert.ok(value >= 2 * heartbeat, `timeout ${name} ${value}s`);
    }
    assert.ok(
      seconds(directive(HAPROXY_CFG, /timeout tunnel\s+(\S+)/), "ms") >=
        2 * heartbeat,
    );
    assert.match(HAPROXY_CFG, /^\s*option httpchk\s*$/m);
    assert.match(HAPROXY_CFG, /http-check send meth GET uri \/healthz/);
    assert.ok(
      (HAPROXY_CFG.match(/^\s*server \S+ \S+ check/gm) ?? []).length >= 2,
    );
  });

  test("haproxy -c accepts it as shipped", () => {
    const check = run("haproxy", ["-c", "-f", join(DEPLOY, "haproxy.cfg")]);
    assert.equal(check.status, 0, `haproxy -c failed:\n${check.output}`);
  });

  test(
    "haproxy health-checks /healthz and passes GET, SSE and WebSocket through",
    SERVER_TEST,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "wsevent-haproxy-"));
      const backend = await startBackend();
      let haproxy: ReturnType<typeof startChild> | undefined;
      try {
        const port = await freePort();
        // Drop what needs root or a syslog: chroot, user, group, daemon, sockets.
        const config = HAPROXY_CFG
          .replace(
            /^\s*(log \/dev\/log.*|chroot .*|user .*|group .*|daemon|stats socket .*)$/gm,
            "",
          )
          // A test machine may not allow the production connection limit.
          .replace(
            /^(\s*maxconn )\d+/m,
            (_, maxconn: string) => `${maxconn}1000`,
          )
          .replace(
            /^(\s*bind )\S+/m,
            (_, bind: string) => `${bind}127.0.0.1:${port}`,
          )
          .replace(
            /^(\s*server \S+ )127\.0\.0\.1:\d+/gm,
            (_, server: string) => `${server}127.0.0.1:${backend.port}`,
          );
        assertLoopbackOnly(config.replace(/#.*$/gm, ""), [
          /^[ \t]*bind[ \t]+(\S+)/gm,
          /^[ \t]*server[ \t]+\S+[ \t]+(\S+)/gm,
        ]);
        const file = join(dir, "haproxy.cfg");
        writeFileSync(file, config);
        const check = run("haproxy", ["-c", "-f", file]);
        assert.equal(check.status, 0, `haproxy -c failed:\n${check.output}`);

        haproxy = startChild("haproxy", ["-db", "-f", file]);
        await waitForPort(port, haproxy, 10_000);
        await backend.waitFor(
          (r) =>
            r.url === "/healthz" && r.headers.host === "localhost" &&
            !r.headers["x-forwarded-for"],
          "a health check GET /healthz",
          10_000,
        );
        await assertProxies(port, backend);
      } finally {
        await haproxy?.stop();
        await backend.close();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

/** The wsevent flags of an ExecStart line must be ones cli.ts accepts. */
function assertServeFlags(args: string[]): void {
  const config = serveConfig(args);
  assert.equal(
    config.serveAddress.host,
    "127.0.0.1",
    "serve behind the proxy only",
  );
  assert.ok(
    !config.produce,
    "production serves published events, no demo",
  );
}

describe("docs/deploy/wsevent.service", () => {
  const unit = parseUnit(UNIT);

  test("has known sections and keys with valid values", () => {
    assertKnownKeys(unit, UNIT_KEYS);
  });

  test("runs the binary with flags cli.ts accepts, hardened, restarting on failure", () => {
    const exec = value(unit, "Service", "ExecStart")?.split(/\s+/) ?? [];
    assert.equal(exec[0], "/usr/local/bin/wsevent");
    assertServeFlags(exec.slice(1));
    const expected: Array<[string, RegExp]> = [
      ["DynamicUser", /^yes$/],
      ["Restart", /^on-failure$/],
      ["KillSignal", /^SIGTERM$/],
      ["EnvironmentFile", /^-\/etc\/wsevent\/wsevent\.env$/],
      ["NoNewPrivileges", /^yes$/],
      ["ProtectSystem", /^strict$/],
      ["CapabilityBoundingSet", /^$/],
      ["RestrictAddressFamilies", /AF_INET AF_INET6/],
      ["SystemCallFilter", /@system-service/],
    ];
    for (const [key, pattern] of expected) {
      assert.match(value(unit, "Service", key) ?? "(unset)", pattern, key);
    }
    assert.equal(value(unit, "Install", "WantedBy"), "multi-user.target");
    assert.doesNotMatch(
      UNIT,
      /^MemoryDenyWriteExecute=(yes|true)/m,
      "the V8 JIT needs it off",
    );
    assert.doesNotMatch(
      UNIT,
      /^ExecStart=.*token/im,
      "tokens belong in the EnvironmentFile",
    );
  });

  test("the deno alternative allows only the network and the environment", () => {
    const line = /^#ExecStart=(\S*deno run .*)$/m.exec(UNIT)?.[1];
    assert.ok(line, "no commented deno ExecStart alternative");
    const [, , ...rest] = line.split(/\s+/);
    const script = rest.findIndex((arg) => arg.endsWith("cli.ts"));
    assert.ok(script > 0);
    assert.deepEqual(
      rest.slice(0, script).filter((arg) => arg.startsWith("--allow")),
      ["--allow-net", "--allow-env"],
    );
    assert.ok(
      !rest.slice(0, script).some((arg) => /^(-A|--allow-all)$/.test(arg)),
    );
    assertServeFlags(rest.slice(script + 1));
  });

  test("systemd-analyze verify reports nothing (scripts/setup installs systemd)", () => {
    // verify wants ExecStart to exist: point it at /bin/true, keep the rest.
    assertVerifies(
      "wsevent.service",
      UNIT.replace(
        /^ExecStart=\/usr\/local\/bin\/wsevent/m,
        "ExecStart=/bin/true",
      ),
    );
  });
});
