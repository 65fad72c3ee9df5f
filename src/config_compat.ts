/**
 * Settings from the environment and the original Go service's endpoint
 * flags, layered under the command line. No I/O.
 *
 * Order, first wins, per setting: a flag on the command line (a specific
 * one such as `-serve-address` before the part of `-serve` it overrides),
 * then `WSEVENT_<FLAG>`, then the original's names (`SERVE_ADDRESS` before
 * the part of `SERVE_ENDPOINT`), then the default.
 *
 * @module
 */

import { parseAddress } from "./address.ts";
import { redactText } from "./redact.ts";
import { UsageError } from "./errors.ts";

/** Parsed flag values, by flag name. */
export type FlagValues = Record<
  string,
  string | string[] | boolean | undefined
>;

/** What {@link withEnvironment} needs to know about each flag. */
export interface FlagKind {
  /** A flag taking a value, or a switch. */
  type: "string" | "boolean";
  /** Whether it may repeat. */
  multiple?: boolean;
}

/** Values with where each one that did not come from its own flag came from. */
export interface LayeredValues {
  /** Every setting, command line first. */
  values: FlagValues;
  /** Flag name to its source, as shown in errors: `flag -serve`, `environment variable SERVE_PATH`. */
  sources: Record<string, string>;
}

/** An endpoint flag or variable: `address/path`, split at the first `/`. */
const ENDPOINTS = [
  {
    flag: "serve",
    variable: "SERVE_ENDPOINT",
    address: "serve-address",
    path: "serve-path",
  },
  {
    flag: "consume",
    variable: "CONSUME_ENDPOINT",
    address: "consume-address",
    path: "consume-path",
  },
] as const;

/** The original's variable for each flag it reads from the environment. */
const GO_VARIABLES: Readonly<Record<string, string>> = {
  "serve-address": "SERVE_ADDRESS",
  "serve-path": "SERVE_PATH",
  "consume-address": "CONSUME_ADDRESS",
  "consume-path": "CONSUME_PATH",
  "no-produce": "NO_PRODUCE",
};

/** Flags never read from the environment. */
const COMMAND_ONLY = new Set(["h", "help", "version", "serve", "consume"]);

/**
 * The name of the `WSEVENT_*` variable of a flag.
 *
 * @param flag The flag name, such as `serve-address`.
 * @returns The variable, such as `WSEVENT_SERVE_ADDRESS`.
 */
export function envVariableOf(flag: string): string {
  return `WSEVENT_${flag.toUpperCase().replaceAll("-", "_")}`;
}

/**
 * Splits an endpoint at its first `/` into address and path, checking the
 * address: `localhost:9090/proxy-events`, `:8080/events`, `[::1]:9090`.
 *
 * @param text The endpoint.
 * @param source Where it came from, for the message.
 * @returns The address and, when there is a `/`, the path.
 * @throws {UsageError} When the address is bad or the path empty.
 */
export function splitEndpoint(
  text: string,
  source: string,
): { address: string; path?: string } {
  const slash = text.indexOf("/");
  const address = slash < 0 ? text : text.slice(0, slash);
  const fail = (why: string): never => {
    throw new UsageError(
      `Cannot parse ${source}: ${why}, received "${redactText(text)}"`,
    );
  };
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(text);
  if (scheme !== null) {
    const hint = /consume/i.test(source)
      ? ` (give a full ${scheme[0]} URL to -consume-url)`
      : "";
    fail(`expected address/path without a scheme${hint}`);
  }
  try {
    parseAddress(address);
  } catch (error) {
    const why = error instanceof Error
      ? error.message.replace(/^Cannot parse flag -[a-z-]+: /, "")
        .replace(/, received ".*"$/s, "")
      : String(error);
    fail(`${why} before the first "/" (address/path)`);
  }
  if (slash < 0) return { address };
  const path = text.slice(slash + 1);
  if (path === "") fail('expected a path after the "/" (address/path)');
  return { address, path };
}

/**
 * Fills the settings the command line left unset from the endpoint flags
 * (`-serve`, `-consume`) and the environment.
 *
 * @param args The raw arguments, to tell an explicit `-flag=false` from none.
 * @param given The values parsed from the command line.
 * @param env The environment.
 * @param flags The known flags.
 * @returns The layered values and their sources.
 * @throws {UsageError} On a bad endpoint, naming the flag or variable.
 */
export function withEnvironment(
  args: readonly string[],
  given: FlagValues,
  env: Readonly<Record<string, string | undefined>>,
  flags: Readonly<Record<string, FlagKind>>,
): LayeredValues {
  const values: FlagValues = { ...given };
  const sources: Record<string, string> = {};
  const set = (name: string, value: string, source: string): void => {
    values[name] = flags[name].multiple ? [value] : value;
    sources[name] = source;
  };
  for (const endpoint of ENDPOINTS) {
    const text = given[endpoint.flag];
    if (typeof text !== "string") continue;
    const source = `flag -${endpoint.flag}`;
    const { address, path } = splitEndpoint(text, source);
    if (values[endpoint.address] === undefined) {
      set(endpoint.address, address, source);
    }
    if (path !== undefined && values[endpoint.path] === undefined) {
      set(endpoint.path, path, source);
    }
  }
  const settled = (name: string): boolean =>
    values[name] !== undefined || explicitlyGiven(args, name);
  for (const [name, kind] of Object.entries(flags)) {
    if (COMMAND_ONLY.has(name) || settled(name)) continue;
    const variable = envVariableOf(name);
    const text = env[variable];
    if (text === undefined || text === "") continue;
    const source = `environment variable ${variable}`;
    if (kind.type === "boolean") {
      values[name] = parseEnvBoolean(text, variable);
    } else if (kind.multiple) {
      values[name] = text.split(",").map((item) => item.trim());
    } else {
      values[name] = text;
    }
    sources[name] = source;
  }
  for (const [name, variable] of Object.entries(GO_VARIABLES)) {
    if (settled(name)) continue;
    const text = env[variable];
    if (text === undefined || text === "") continue;
    // As the original: any non-empty NO_PRODUCE means true, even "false".
    if (flags[name].type === "boolean") {
      values[name] = true;
      sources[name] = `environment variable ${variable}`;
    } else {
      set(name, text, `environment variable ${variable}`);
    }
  }
  for (const endpoint of ENDPOINTS) {
    const text = env[endpoint.variable];
    if (text === undefined || text === "") continue;
    const source = `environment variable ${endpoint.variable}`;
    const { address, path } = splitEndpoint(text, source);
    if (!settled(endpoint.address)) {
      set(endpoint.address, address, source);
    }
    if (path !== undefined && !settled(endpoint.path)) {
      set(endpoint.path, path, source);
    }
  }
  return { values, sources };
}

/**
 * Reads a `WSEVENT_*` switch: `1`, `true`, `yes`, `on` or `0`, `false`,
 * `no`, `off` (any case); anything else is refused, so a typo such as
 * `ture` is not silently read as false.
 *
 * @param text The variable's value.
 * @param variable Its name, for the message.
 * @returns The switch's value.
 * @throws {UsageError} On any other value.
 */
export function parseEnvBoolean(text: string, variable: string): boolean {
  const value = text.trim().toLowerCase();
  if (["1", "true", "yes", "on"].includes(value)) return true;
  if (["0", "false", "no", "off"].includes(value)) return false;
  throw new UsageError(
    `Cannot parse environment variable ${variable}: expected true or false (1, 0, yes, no, on, off), received "${text}"`,
  );
}

/** True when `args` names the flag before any `--`, in any Go spelling. */
function explicitlyGiven(args: readonly string[], name: string): boolean {
  const pattern = new RegExp(`^--?${name.replace(/[-]/g, "\\-")}(=|$)`);
  for (const arg of args) {
    if (arg === "--") return false;
    if (pattern.test(arg)) return true;
  }
  return false;
}

/**
 * Names the true source of a bad value in an error about its flag: a value
 * from `SERVE_ENDPOINT` is reported as that variable, not `-serve-address`.
 *
 * @param error What parsing threw.
 * @param sources Where each value came from.
 * @returns The error, renamed when its flag's value came from elsewhere.
 */
export function renameSource(
  error: unknown,
  sources: Readonly<Record<string, string>>,
): unknown {
  if (!(error instanceof UsageError)) return error;
  const match = /^Cannot parse flag -([a-z-]+):/.exec(error.message);
  const source = match === null ? undefined : sources[match[1]];
  if (match === null || source === undefined) return error;
  return new UsageError(
    `Cannot parse ${source}:${error.message.slice(match[0].length)}`,
  );
}
