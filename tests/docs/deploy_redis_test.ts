/**
 * The Redis deploy example in docs/deploy/ (issue 13): redis.conf is run by
 * a real redis-server (on a free 127.0.0.1 port, in a temporary directory)
 * and its settings read back; the units wsevent-redis.service and
 * wsevent@.service are parsed and given to systemd-analyze verify. The
 * whole example is run by deploy_redis_run_test.ts.
 *
 * @module
 */
import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../mod.ts";
import { BOOLEAN, parseUnit, UNIT_KEYS, unitValue } from "./_deploy_helpers.ts";
import {
  INSTANCE_UNIT,
  instanceArgs,
  REDIS_UNIT,
  redisDirective,
  startRedis,
  type TestRedis,
} from "./_redis_deploy.ts";
import { assertKnownKeys, assertVerifies } from "./_unit_checks.ts";
import { serveConfig } from "../_config.ts";
import { waitFor } from "../integration/_helpers.ts";

const SERVER_TEST = { timeout: 60_000 };

describe("docs/deploy/redis.conf", () => {
  test("keeps every event (AOF), never evicts, listens on loopback", () => {
    assert.equal(redisDirective("appendonly"), "yes");
    assert.match(redisDirective("appendfsync") ?? "", /^(everysec|always)$/);
    assert.equal(redisDirective("maxmemory-policy"), "noeviction");
    assert.match(redisDirective("bind") ?? "", /^127\.0\.0\.1( -::1)?$/);
    assert.equal(redisDirective("protected-mode"), "yes");
    assert.equal(redisDirective("supervised"), "systemd");
    assert.equal(redisDirective("daemonize"), "no");
  });

  test(
    "a real redis-server runs it and reports those settings",
    SERVER_TEST,
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "wsevent-redis-conf-"));
      let redis: TestRedis | undefined;
      try {
        redis = await startRedis(dir);
        for (
          const name of [
            "appendonly",
            "appendfsync",
            "maxmemory-policy",
            "protected-mode",
            "save",
            "timeout",
            "tcp-keepalive",
            "maxclients",
          ]
        ) {
          // CONFIG GET shows "" for save "" and numbers without units.
          const expected = (redisDirective(name) ?? "").replace(/^""$/, "");
          assert.equal(redis.configGet(name), expected, name);
        }
        assert.equal(
          redis.configGet("maxmemory"),
          String(1024 ** 3),
          "maxmemory 1gb",
        );
        // Redis 7 keeps the AOF in appendonlydir/, Redis 6 in one file.
        await waitFor(
          () =>
            existsSync(join(dir, "appendonlydir")) ||
            existsSync(join(dir, "appendonly.aof")),
          10_000,
          "the AOF to be created",
        );
      } finally {
        await redis?.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});

describe("docs/deploy/wsevent-redis.service", () => {
  const unit = parseUnit(REDIS_UNIT);

  test("has known sections and keys with valid values", () => {
    assertKnownKeys(unit, {
      ...UNIT_KEYS,
      Service: {
        ...UNIT_KEYS.Service,
        // Redis has no JIT: W^X memory may be enforced here.
        MemoryDenyWriteExecute: BOOLEAN,
        StateDirectory: /^[a-z][a-z0-9-]*$/,
        StateDirectoryMode: /^0[0-7]{3}$/,
      },
    });
  });

  test("runs redis-server on /etc/wsevent/redis.conf under systemd supervision, in the config's dir", () => {
    assert.equal(
      unitValue(unit, "Service", "ExecStart"),
      "/usr/bin/redis-server /etc/wsevent/redis.conf --supervised systemd --daemonize no",
    );
    assert.equal(unitValue(unit, "Service", "Type"), "notify");
    assert.equal(unitValue(unit, "Service", "Restart"), "always");
    assert.equal(
      `/var/lib/${unitValue(unit, "Service", "StateDirectory")}`,
      redisDirective("dir"),
      "StateDirectory is redis.conf's dir",
    );
    assert.equal(unitValue(unit, "Install", "WantedBy"), "multi-user.target");
  });

  test("systemd-analyze verify reports nothing", () => {
    // /usr/bin/redis-server exists here (scripts/setup installs it).
    assertVerifies("wsevent-redis.service", REDIS_UNIT);
  });
});

describe("docs/deploy/wsevent@.service", () => {
  const unit = parseUnit(INSTANCE_UNIT);

  test("has known sections and keys with valid values", () => {
    assertKnownKeys(unit, UNIT_KEYS);
  });

  test("runs each instance on 127.0.0.1:%i with the Redis engine of docs/deploy/redis.conf, after it", () => {
    const exec = unitValue(unit, "Service", "ExecStart") ?? "";
    assert.match(exec, /^\/usr\/local\/bin\/wsevent /);
    const config = serveConfig(instanceArgs(8080));
    assert.equal(config.serveAddress.host, "127.0.0.1");
    assert.equal(config.serveAddress.port, 8080);
    assert.ok(!config.produce, "no demo producer in production");
    assert.equal(config.engine.kind, "redis");
    if (config.engine.kind !== "redis") return;
    assert.equal(config.engine.url.hostname, "127.0.0.1");
    assert.equal(config.engine.url.port, redisDirective("port"));
    for (const key of ["After", "Wants"]) {
      assert.match(
        unitValue(unit, "Unit", key) ?? "",
        /(^| )wsevent-redis\.service( |$)/,
        key,
      );
    }
    assert.equal(unitValue(unit, "Service", "Restart"), "on-failure");
    assert.equal(unitValue(unit, "Service", "DynamicUser"), "yes");
    assert.doesNotMatch(
      INSTANCE_UNIT,
      /^MemoryDenyWriteExecute=(yes|true)/m,
      "the V8 JIT needs it off",
    );
  });

  test("the deno alternative allows only the network and the environment", () => {
    const line = /^#ExecStart=(\S*deno run .*)$/m.exec(INSTANCE_UNIT)?.[1];
    assert.ok(line, "no commented deno ExecStart alternative");
    const args = line.replaceAll("%i", "8080").split(/\s+/).slice(2);
    const script = args.findIndex((arg) => arg.endsWith("cli.ts"));
    assert.ok(script > 0);
    assert.deepEqual(
      args.slice(0, script).filter((arg) => arg.startsWith("-")),
      ["--allow-net", "--allow-env", "--cached-only"],
    );
    const command = parseConfig(args.slice(script + 1));
    assert.ok(
      command.kind === "serve" && command.config.engine.kind === "redis",
    );
  });

  test("systemd-analyze verify reports nothing for an instance", () => {
    assertVerifies(
      "wsevent@8080.service",
      INSTANCE_UNIT.replace(
        /^ExecStart=\/usr\/local\/bin\/wsevent/m,
        "ExecStart=/bin/true",
      ),
    );
  });
});
