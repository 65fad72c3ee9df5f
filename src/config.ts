/**
 * Command-line flags to configuration, accepting Go's flag spellings
 * (`-flag value`, `--flag value`, `-flag=value`, `--flag=value`). No I/O:
 * it returns values or throws {@link UsageError}.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { type Address, parseAddress, parseUpstreamUrl } from "./address.ts";
import { UsageError } from "./errors.ts";
import { isPattern } from "./pattern.ts";
import {
  parseEnvBoolean,
  renameSource,
  withEnvironment,
} from "./config_compat.ts";
import { type EngineConfig, readEngineConfig } from "./engine/config.ts";

/** Log verbosity. */
export type LogLevel = "quiet" | "info" | "verbose";

/** Everything a serving instance needs to start. */
export interface Config {
  /** Where to listen. */
  serveAddress: Address;
  /** The serve address as typed, shown in demo messages. */
  serveAddressText: string;
  /** Paths served, without leading slash; the first is the relay's target. */
  servePaths: string[];
  /**
   * Patterns served (`rooms/*`, `*`): topics below them are created on
   * demand. A relay whose upstream URL ends in `/*` serves the first.
   */
  servePatterns: string[];
  /** Topics created on demand that may exist at once. */
  maxTopics: number;
  /** Idle time after which an on-demand topic is dropped, ms (0: never). */
  topicTtlMs: number;
  /** Upstream to relay, or null. */
  consumeUrl: URL | null;
  /** Whether the demo generator runs. */
  produce: boolean;
  /** Demo generator period. */
  intervalMs: number;
  /** Replay buffer per path, in events. */
  bufferSize: number;
  /** Replay buffer per path, in payload bytes. */
  bufferBytes: number;
  /** Largest published body or incoming frame, in bytes. */
  maxBodyBytes: number;
  /** Subscribers per instance. */
  maxSubscribers: number;
  /** Bytes queued for one subscriber before it counts as slow. */
  maxQueueBytes: number;
  /** What to do with a slow subscriber. */
  slowPolicy: "close" | "skip";
  /** Under load, how long an event may wait to go out with others. */
  coalesceMs: number;
  /** Heartbeat period for pings, SSE comments and upstream liveness. */
  heartbeatMs: number;
  /** Bearer token required to publish, or null. */
  publishToken: string | null;
  /** Bearer token required to subscribe, or null. */
  subscribeToken: string | null;
  /** Token presented to the upstream, or null. */
  upstreamToken: string | null;
  /** Bearer token required for `/`, `/metrics`, `/readyz` and /healthz details, or null. */
  statusToken: string | null;
  /** Time a published body has to arrive in full, in milliseconds. */
  bodyTimeoutMs: number;
  /**
   * JWT key as given: an HMAC secret, PEM or JWKS text, or `@FILE`; null
   * when tokens are not JWTs.
   */
  jwtKey: string | null;
  /** Seconds of clock skew allowed on a JWT's `exp` and `nbf`. */
  jwtLeewaySeconds: number;
  /** TLS certificate chain file (PEM), or null for plain HTTP. */
  tlsCert: string | null;
  /** TLS private key file (PEM), or null for plain HTTP. */
  tlsKey: string | null;
  /** Browser origins allowed to subscribe; empty allows every origin. */
  allowOrigins: string[];
  /** Relay a POST to the upstream instead of publishing it here. */
  forwardPublish: boolean;
  /** Log verbosity. */
  logLevel: LogLevel;
  /** Log lines as JSON. */
  logJson: boolean;
  /** Where events are stored: memory, or Redis shared by instances. */
  engine: EngineConfig;
}

/** What the command line asks for. */
export type Command =
  | { kind: "serve"; config: Config }
  | { kind: "help" }
  | { kind: "version" };

/** One flag: its name, kind, default and help line. */
interface FlagSpec {
  type: "string" | "boolean";
  help: string;
  value?: string;
  multiple?: boolean;
  env?: string;
}

const FLAGS: Record<string, FlagSpec> = {
  "serve-address": {
    type: "string",
    value: "localhost:8080",
    help: "address to serve on: host:port, :port, [::1]:port",
  },
  "serve-path": {
    type: "string",
    value: "events",
    multiple: true,
    help: "path to serve the stream at (repeat for several)",
  },
  "max-topics": {
    type: "string",
    value: "1000",
    help: "topics created on demand below -serve-path patterns (rooms/*)",
  },
  "topic-ttl": {
    type: "string",
    value: "5m",
    help:
      "drop an on-demand topic after this long without subscribers or publishes (90s, 10m, 2h; 0: never)",
  },
  "consume-address": {
    type: "string",
    help: "upstream host:port to consume from (relay)",
  },
  "consume-path": {
    type: "string",
    value: "consume",
    help: "upstream path to consume",
  },
  "consume-url": {
    type: "string",
    help: "full upstream URL: ws://, wss://, or http(s):// for SSE",
  },
  "no-produce": { type: "boolean", help: "do not generate demo events" },
  serve: {
    type: "string",
    help: "serve-address/serve-path in one, e.g. localhost:9090/proxy-events",
  },
  consume: {
    type: "string",
    help: "consume-address/consume-path in one, e.g. localhost:8080/events",
  },
  interval: {
    type: "string",
    value: "100",
    help: "demo event period in milliseconds",
  },
  buffer: {
    type: "string",
    value: "1000",
    help: "events kept per path for resume",
  },
  "buffer-bytes": {
    type: "string",
    value: "1048576",
    help: "payload bytes kept per path for resume",
  },
  "max-body": {
    type: "string",
    value: "1048576",
    help: "largest published body or incoming frame in bytes",
  },
  "max-subscribers": {
    type: "string",
    value: "10000",
    help: "subscribers per instance",
  },
  "max-queue": {
    type: "string",
    value: "4194304",
    help: "bytes queued for one subscriber before it is slow",
  },
  "slow-policy": {
    type: "string",
    value: "close",
    help: "slow subscriber: close (1008) or skip (gap notice)",
  },
  coalesce: {
    type: "string",
    value: "1",
    help: "under load, ms an event may wait to go out with others (0: never)",
  },
  heartbeat: {
    type: "string",
    value: "15000",
    help: "heartbeat period in milliseconds (pings, SSE comments)",
  },
  "publish-token": {
    type: "string",
    env: "WSEVENT_PUBLISH_TOKEN",
    help: "bearer token required to publish",
  },
  "subscribe-token": {
    type: "string",
    env: "WSEVENT_SUBSCRIBE_TOKEN",
    help: "bearer token required to subscribe",
  },
  "upstream-token": {
    type: "string",
    env: "WSEVENT_UPSTREAM_TOKEN",
    help: "token presented to the upstream",
  },
  "status-token": {
    type: "string",
    env: "WSEVENT_STATUS_TOKEN",
    help: "bearer token required for /, /metrics, /readyz (default: open)",
  },
  "body-timeout": {
    type: "string",
    value: "10000",
    help: "ms a published body has to arrive in full (then 408)",
  },
  "jwt-key": {
    type: "string",
    env: "WSEVENT_JWT_KEY",
    help:
      "JWT key for per-topic rights: HMAC secret, PEM public key or JWKS, or @FILE",
  },
  "tls-cert": {
    type: "string",
    help:
      "serve https/wss with this certificate chain (PEM file; SIGHUP re-reads)",
  },
  "tls-key": {
    type: "string",
    help: "the private key of -tls-cert (PEM file)",
  },
  "jwt-leeway": {
    type: "string",
    value: "5",
    help: "seconds of clock skew allowed on a JWT's exp and nbf",
  },
  "allow-origin": {
    type: "string",
    multiple: true,
    help: "browser origin allowed to subscribe (repeat); default any",
  },
  "forward-publish": {
    type: "boolean",
    help: "relay: forward POSTs to the upstream",
  },
  engine: {
    type: "string",
    value: "memory",
    env: "WSEVENT_ENGINE",
    help:
      "event store: memory, or redis://[user:password@]host:port[/db] / rediss:// shared by instances",
  },
  "engine-prefix": {
    type: "string",
    value: "wsevent:",
    help: "prefix of the engine's Redis keys",
  },
  "history-ttl": {
    type: "string",
    value: "0",
    help:
      "redis: drop a path's history after this long without a publish (90s, 10m, 2h, 7d; 0: keep)",
  },
  "engine-timeout": {
    type: "string",
    value: "5000",
    help:
      "redis: milliseconds Redis may take to answer before publishes and /readyz answer 503",
  },
  verbose: { type: "boolean", help: "log every event" },
  quiet: { type: "boolean", help: "log errors only" },
  "log-json": { type: "boolean", help: "log lines as JSON" },
  version: { type: "boolean", help: "print the version and exit" },
  help: { type: "boolean", help: "show this help and exit" },
  h: { type: "boolean", help: "show this help and exit" },
};

/**
 * Rewrites Go-style arguments into the `--name[=value]` form `parseArgs`
 * reads, checking each flag name and value on the way so errors name the
 * flag as the user typed it.
 *
 * @param args The arguments.
 * @param flags The known flags.
 * @returns Normalized arguments.
 * @throws {UsageError} On an unknown flag, a missing value or a bad boolean.
 */
export function normalizeFlags(
  args: readonly string[],
  flags: Readonly<Record<string, { type: "string" | "boolean" }>>,
): string[] {
  const out: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (arg === "--" || !arg.startsWith("-") || arg === "-") {
      out.push(...args.slice(i));
      break;
    }
    const body = arg.replace(/^--?/, "");
    const eq = body.indexOf("=");
    const name = eq < 0 ? body : body.slice(0, eq);
    const spec = flags[name];
    if (spec === undefined) throw new UsageError(`Unknown flag: "${arg}"`);
    if (spec.type === "boolean") {
      const value = eq < 0 ? "true" : body.slice(eq + 1);
      if (value !== "true" && value !== "false") {
        throw new UsageError(
          `Cannot parse flag -${name}: expected true or false, received "${value}"`,
        );
      }
      if (value === "true") out.push(`--${name}`);
      continue;
    }
    if (eq >= 0) {
      out.push(`--${name}=${body.slice(eq + 1)}`);
      continue;
    }
    const value = args[i + 1];
    if (value === undefined || (value.startsWith("-") && value.length > 1)) {
      throw new UsageError(`Missing value for flag -${name}`);
    }
    out.push(`--${name}=${value}`);
    i++;
  }
  return out;
}

function readInteger(
  name: string,
  text: string,
  min: number,
  max: number,
): number {
  const value = /^[0-9]+$/.test(text) ? Number(text) : NaN;
  if (!Number.isSafeInteger(value) || value < min || value > max) {
    throw new UsageError(
      `Cannot parse flag -${name}: expected an integer from ${min} to ${max}, received "${text}"`,
    );
  }
  return value;
}

function readPath(text: string): string {
  const path = text.replace(/^\/+/, "");
  if (!/^[A-Za-z0-9._~!$&'()*+,;=:@%/-]+$/.test(path) || path.endsWith("/")) {
    throw new UsageError(
      `Cannot parse flag -serve-path: expected a URL path such as "events", received "${text}"`,
    );
  }
  let decoded: string;
  try {
    decoded = decodeURIComponent(path);
  } catch {
    throw new UsageError(
      `Cannot parse flag -serve-path: malformed percent-encoding, received "${text}"`,
    );
  }
  if (path.includes("*") && !isPattern(path)) {
    throw new UsageError(
      `Cannot parse flag -serve-path: "*" may only be the last segment of a pattern such as "rooms/*", received "${text}"`,
    );
  }
  if (path === "healthz" || path === "readyz" || path === "metrics") {
    throw new UsageError(
      `Cannot serve a stream at "/${path}": the path is reserved`,
    );
  }
  // Topics are keyed by the decoded path, as the app decodes requests.
  return decoded;
}

/**
 * Parses the serving instance's command line.
 *
 * @example Usage
 * ```ts
 * import { parseConfig } from "../mod.ts";
 * const command = parseConfig(["-serve-address", ":9090", "--no-produce"]);
 * if (command.kind === "serve") console.log(command.config.serveAddress.port); // 9090
 * ```
 *
 * @param args Arguments after the program name.
 * @param env Environment variables to read tokens from.
 * @returns What to do.
 * @throws {UsageError} On any bad flag or value.
 */
export function parseConfig(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): Command {
  const options = Object.fromEntries(
    Object.entries(FLAGS).map((
      [name, spec],
    ) => [
      name,
      spec.multiple ? { type: spec.type, multiple: true } : { type: spec.type },
    ]),
  );
  let parsed;
  try {
    parsed = parseArgs({
      args: normalizeFlags(args, FLAGS),
      options,
      strict: true,
      allowPositionals: true,
    });
  } catch (error) {
    if (error instanceof UsageError) throw error;
    throw new UsageError(
      error instanceof Error ? error.message : String(error),
    );
  }
  if (parsed.positionals.length > 0) {
    throw new UsageError(`Unexpected argument: "${parsed.positionals[0]}"`);
  }
  const given = parsed.values as Record<
    string,
    string | string[] | boolean | undefined
  >;
  if (given.help || given.h) return { kind: "help" };
  if (given.version) return { kind: "version" };
  const { values, sources } = withEnvironment(args, given, env, FLAGS);
  const text = (name: string): string => {
    const value = values[name];
    if (typeof value === "string") return value;
    return env[FLAGS[name].env ?? ""] ?? FLAGS[name].value ?? "";
  };
  const list = (name: string): string[] => {
    const value = values[name];
    return Array.isArray(value)
      ? value
      : FLAGS[name].value
      ? [FLAGS[name].value]
      : [];
  };
  const token = (name: string): string | null => text(name) || null;
  try {
    return { kind: "serve", config: buildConfig(text, list, token, values) };
  } catch (error) {
    throw renameSource(error, sources);
  }
}

function buildConfig(
  text: (name: string) => string,
  list: (name: string) => string[],
  token: (name: string) => string | null,
  values: Record<string, unknown>,
): Config {
  const slowPolicy = text("slow-policy");
  if (slowPolicy !== "close" && slowPolicy !== "skip") {
    throw new UsageError(
      `Cannot parse flag -slow-policy: expected close or skip, received "${slowPolicy}"`,
    );
  }
  const bufferBytes = readInteger(
    "buffer-bytes",
    text("buffer-bytes"),
    0,
    2 ** 31,
  );
  const maxQueueBytes = readInteger(
    "max-queue",
    text("max-queue"),
    1024,
    2 ** 31,
  );
  const engine = readEngineConfig(
    text("engine"),
    text("engine-prefix"),
    text("history-ttl"),
  );
  const engineTimeoutMs = readInteger(
    "engine-timeout",
    text("engine-timeout"),
    100,
    600_000,
  );
  const consumeUrl = upstreamOf(text, values);
  const served = [...new Set(list("serve-path").map(readPath))];
  const servePatterns = served.filter(isPattern);
  if (consumeUrl !== null) relayTarget(consumeUrl, served, servePatterns);
  const tlsCert = text("tls-cert") || null;
  const tlsKey = text("tls-key") || null;
  if ((tlsCert === null) !== (tlsKey === null)) {
    throw new UsageError(
      `Missing value for flag -${
        tlsCert === null ? "tls-cert" : "tls-key"
      }: -tls-cert and -tls-key go together`,
    );
  }
  if (engine.kind !== "memory" && consumeUrl !== null) {
    throw new UsageError(
      "Cannot use -engine with -consume-url or -consume-address: a relay keeps its upstream's ids, so it runs on the memory engine",
    );
  }
  return {
    serveAddress: parseAddress(text("serve-address"), "serve-address"),
    serveAddressText: text("serve-address"),
    servePaths: served.filter((path) => !isPattern(path)),
    servePatterns,
    maxTopics: readInteger("max-topics", text("max-topics"), 0, 1_000_000),
    topicTtlMs: readTopicTtl(text("topic-ttl")),
    consumeUrl,
    produce: values["no-produce"] !== true,
    intervalMs: readInteger("interval", text("interval"), 1, 86_400_000),
    bufferSize: readInteger("buffer", text("buffer"), 0, 1_000_000),
    bufferBytes,
    maxBodyBytes: readInteger("max-body", text("max-body"), 1, 2 ** 30),
    maxSubscribers: readInteger(
      "max-subscribers",
      text("max-subscribers"),
      1,
      1_000_000,
    ),
    maxQueueBytes,
    slowPolicy,
    coalesceMs: readInteger("coalesce", text("coalesce"), 0, 1000),
    heartbeatMs: readInteger("heartbeat", text("heartbeat"), 100, 3_600_000),
    publishToken: token("publish-token"),
    subscribeToken: token("subscribe-token"),
    upstreamToken: token("upstream-token"),
    statusToken: token("status-token"),
    bodyTimeoutMs: readInteger(
      "body-timeout",
      text("body-timeout"),
      100,
      3_600_000,
    ),
    jwtKey: token("jwt-key"),
    jwtLeewaySeconds: readInteger("jwt-leeway", text("jwt-leeway"), 0, 3600),
    tlsCert,
    tlsKey,
    allowOrigins: list("allow-origin").map(readOrigin),
    forwardPublish: values["forward-publish"] === true,
    logLevel: values.quiet === true
      ? "quiet"
      : values.verbose === true
      ? "verbose"
      : "info",
    logJson: values["log-json"] === true,
    engine: engine.kind === "redis"
      ? { ...engine, commandTimeoutMs: engineTimeoutMs }
      : engine,
  };
}

const SECONDS_PER_UNIT: Record<string, number> = {
  "": 1,
  s: 1,
  m: 60,
  h: 3600,
};

function readTopicTtl(text: string): number {
  const match = /^([0-9]{1,7})([smh]?)$/.exec(text);
  const seconds = match === null
    ? NaN
    : Number(match[1]) * SECONDS_PER_UNIT[match[2]];
  if (!Number.isSafeInteger(seconds) || seconds > 7 * 86400) {
    throw new UsageError(
      `Cannot parse flag -topic-ttl: expected seconds or a duration such as 90s, 10m or 2h (at most 168h), received "${text}"`,
    );
  }
  return seconds * 1000;
}

/**
 * Checks what a relay serves its upstream as: an upstream URL ending in
 * `/*` feeds a pattern (one upstream topic per topic asked for here),
 * any other feeds the first plain path.
 */
function relayTarget(
  url: URL,
  served: readonly string[],
  patterns: readonly string[],
): void {
  if (url.pathname.endsWith("/*")) {
    if (patterns.length === 0) {
      throw new UsageError(
        `Cannot relay the upstream pattern "${url.pathname}": serve a pattern too, such as -serve-path "rooms/*"`,
      );
    }
    return;
  }
  if (served.length === patterns.length) {
    throw new UsageError(
      `Cannot relay "${url.pathname}" into a pattern: give a plain -serve-path for it, or an upstream URL ending in "/*"`,
    );
  }
}

function upstreamOf(
  text: (name: string) => string,
  values: Record<string, unknown>,
): URL | null {
  if (typeof values["consume-url"] === "string") {
    return parseUpstreamUrl(values["consume-url"], "consume-url");
  }
  if (typeof values["consume-address"] !== "string") return null;
  const address = parseAddress(values["consume-address"], "consume-address");
  const path = text("consume-path").replace(/^\/+/, "");
  return parseUpstreamUrl(
    `ws://${address.host}:${address.port}/${path}`,
    "consume-path",
  );
}

function readOrigin(text: string): string {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new UsageError(
      `Cannot parse flag -allow-origin: expected an origin such as "https://example.com", received "${text}"`,
    );
  }
  if (url.origin === "null") {
    throw new UsageError(
      `Cannot parse flag -allow-origin: expected an http(s) origin, received "${text}"`,
    );
  }
  return url.origin;
}

/**
 * Formats the usage text listing every flag with its default.
 *
 * @param program The program name to show.
 * @returns The usage text.
 */
export function formatUsage(program: string): string {
  const lines = [
    `Usage: ${program} [flags]`,
    `       ${program} subscribe URL [--json] [--count N] [--last-event-id ID] [--token T]`,
    "",
    "Flags (Go style: -flag value, --flag value, -flag=value, --flag=value):",
  ];
  for (const [name, spec] of Object.entries(FLAGS)) {
    if (name === "h") continue;
    const shown = name === "help" ? "-h, -help" : `-${name}`;
    const value = spec.type === "string" ? " value" : "";
    const defaults = spec.value !== undefined
      ? ` (default "${spec.value}")`
      : "";
    const env = spec.env !== undefined ? ` (env ${spec.env})` : "";
    lines.push(`  ${(shown + value).padEnd(26)} ${spec.help}${defaults}${env}`);
  }
  lines.push(
    "",
    "Environment: every flag also reads WSEVENT_<FLAG> (WSEVENT_SERVE_ADDRESS,",
    "WSEVENT_SERVE_PATH=a,b, WSEVENT_NO_PRODUCE=true) and, as the original did,",
    "SERVE_ENDPOINT, SERVE_ADDRESS, SERVE_PATH, CONSUME_ENDPOINT, CONSUME_ADDRESS,",
    "CONSUME_PATH, NO_PRODUCE (any non-empty value). First wins: flag, WSEVENT_*,",
    "the original's names, default.",
  );
  return lines.join("\n") + "\n";
}

/**
 * Builds flags from `WSEVENT_<FLAG>` environment variables, for platforms
 * that start us without a command line (`deno serve`, edge deployments):
 * `WSEVENT_SERVE_PATH=events,orders`, `WSEVENT_NO_PRODUCE=true`,
 * `WSEVENT_CONSUME_URL=wss://origin.example/events`, ...
 *
 * @example Usage
 * ```ts
 * import { parseEnvConfig } from "../mod.ts";
 * const config = parseEnvConfig({ WSEVENT_NO_PRODUCE: "true", WSEVENT_BUFFER: "50" });
 * console.log(config.produce, config.bufferSize); // false 50
 * ```
 *
 * @param env The environment.
 * @returns The configuration.
 * @throws {UsageError} On a bad value, naming the variable's flag.
 */
export function parseEnvConfig(
  env: Readonly<Record<string, string | undefined>>,
): Config {
  const args: string[] = [];
  for (const [name, spec] of Object.entries(FLAGS)) {
    if (name === "h" || name === "help" || name === "version") continue;
    const variable = `WSEVENT_${name.toUpperCase().replaceAll("-", "_")}`;
    const value = env[variable];
    if (value === undefined || value === "") continue;
    if (spec.type === "boolean") {
      args.push(`--${name}=${parseEnvBoolean(value, variable)}`);
    } else if (spec.multiple) {
      for (const item of value.split(",")) {
        args.push(`--${name}=${item.trim()}`);
      }
    } else {
      args.push(`--${name}=${value}`);
    }
  }
  const command = parseConfig(args, env);
  if (command.kind !== "serve") {
    throw new UsageError("Cannot configure from the environment");
  }
  if (
    !env.WSEVENT_SERVE_ADDRESS && !env.SERVE_ADDRESS && !env.SERVE_ENDPOINT
  ) {
    command.config.serveAddressText = "edge";
  }
  return command.config;
}
