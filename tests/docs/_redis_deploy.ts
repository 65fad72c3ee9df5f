/**
 * What deploy_redis_test.ts and deploy_redis_run_test.ts share: the Redis
 * deploy example's files, a redis-server on a test copy of
 * docs/deploy/redis.conf, the instance unit's ExecStart arguments.
 *
 * @module
 */
import assert from "node:assert/strict";
import { mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  type Child,
  freePort,
  parseUnit,
  startChild,
  unitValue,
  waitForPort,
} from "./_deploy_helpers.ts";
import { ROOT } from "./_plantuml.ts";
import { run } from "./_unit_checks.ts";

const DEPLOY = join(ROOT, "docs/deploy");
/** docs/deploy/redis.conf. */
export const REDIS_CONF: string = readFileSync(
  join(DEPLOY, "redis.conf"),
  "utf8",
);
/** docs/deploy/wsevent-redis.service. */
export const REDIS_UNIT: string = readFileSync(
  join(DEPLOY, "wsevent-redis.service"),
  "utf8",
);
/** docs/deploy/wsevent@.service. */
export const INSTANCE_UNIT: string = readFileSync(
  join(DEPLOY, "wsevent@.service"),
  "utf8",
);
/** docs/deploy/nginx.conf. */
export const NGINX_CONF: string = readFileSync(
  join(DEPLOY, "nginx.conf"),
  "utf8",
);

/** The value of a redis.conf directive (the last one wins, as in Redis). */
export function redisDirective(name: string): string | undefined {
  const lines = REDIS_CONF.split("\n").filter((line) =>
    new RegExp(`^${name}\\s`).test(line)
  );
  return lines.at(-1)?.slice(name.length).trim();
}

/** A redis-server running a test copy of docs/deploy/redis.conf. */
export interface TestRedis {
  port: number;
  dir: string;
  /** The running redis-server (a new one after {@link TestRedis.restart}). */
  readonly child: Child;
  configGet(name: string): string;
  /**
   * Stops it with `signal` (SIGTERM: Redis writes and syncs its AOF, as
   * `systemctl restart` does; SIGKILL: no chance to), then starts it again
   * on the same config, port and directory.
   */
  restart(signal: "SIGTERM" | "SIGKILL"): Promise<void>;
  stop(): Promise<void>;
}

/**
 * Starts redis-server on the shipped config with only the port, the bind
 * address and the directory changed (127.0.0.1, a free port, `dir`).
 */
export async function startRedis(dir: string): Promise<TestRedis> {
  mkdirSync(dir, { recursive: true });
  const port = await freePort();
  const config = REDIS_CONF
    .replace(/^port \d+$/m, `port ${port}`)
    .replace(/^bind .*$/m, "bind 127.0.0.1")
    .replace(/^dir .*$/m, `dir ${dir}`);
  assert.doesNotMatch(
    config.replace(/^#.*$/gm, ""),
    /\/var\//,
    "production paths left",
  );
  const file = join(dir, "redis.conf");
  writeFileSync(file, config);
  const launch = async (): Promise<Child> => {
    const started = startChild("redis-server", [file]);
    await waitForPort(port, started, 10_000);
    return started;
  };
  let child = await launch();
  return {
    port,
    dir,
    get child() {
      return child;
    },
    async restart(signal) {
      const exited = new Promise((resolve) =>
        child.process.once("exit", resolve)
      );
      if (!child.exited()) {
        child.process.kill(signal);
        await exited;
      }
      child = await launch();
    },
    configGet(name: string): string {
      const got = run("redis-cli", ["-p", String(port), "config", "get", name]);
      assert.equal(got.status, 0, got.output);
      const [key, value] = got.output.split("\n");
      assert.equal(key, name, got.output);
      return value;
    },
    stop: () => child.stop(),
  };
}

/** The template's ExecStart arguments for instance `port` (after the binary). */
export function instanceArgs(port: number | string): string[] {
  const exec = unitValue(parseUnit(INSTANCE_UNIT), "Service", "ExecStart");
  assert.ok(exec, "no ExecStart");
  return exec.replaceAll("%i", String(port)).split(/\s+/).slice(1);
}
