/**
 * The `subscribe` client: prints a stream, resuming from the last id after
 * every drop. Web APIs only; output goes through the given writers.
 *
 * @module
 */

import { parseArgs } from "node:util";
import { parseUpstreamUrl } from "./address.ts";
import { normalizeFlags } from "./config.ts";
import { type EventData, formatJsonEvent } from "./event.ts";
import { UsageError } from "./errors.ts";
import { createStatusLine } from "./status_line.ts";
import { escapeControl } from "./log.ts";
import { redactUrl } from "./redact.ts";
import { subscribe, TokenExpiredError } from "./client.ts";

/** What `subscribe` was asked to do. */
export interface SubscribeCommand {
  /** The stream: ws(s):// or http(s):// (SSE). */
  url: URL;
  /** Print `{"id","data"}` lines instead of bare data. */
  json: boolean;
  /** Stop after this many events, or null. */
  count: number | null;
  /** Resume after this id. */
  lastEventId: string | null;
  /** Token for the stream. */
  token: string | null;
  /** Log connection changes on stderr. */
  quiet: boolean;
}

const FLAGS = {
  json: { type: "boolean" },
  count: { type: "string" },
  "last-event-id": { type: "string" },
  token: { type: "string" },
  quiet: { type: "boolean" },
  help: { type: "boolean" },
  h: { type: "boolean" },
} as const;

/**
 * Parses `subscribe URL [--json] [--count N] [--last-event-id ID] [--token T]`.
 *
 * @param args Arguments after `subscribe`.
 * @param env Environment, for WSEVENT_SUBSCRIBE_TOKEN.
 * @returns The command, or "help".
 * @throws {UsageError} On bad flags or URL.
 */
export function parseSubscribeArgs(
  args: readonly string[],
  env: Readonly<Record<string, string | undefined>> = {},
): SubscribeCommand | "help" {
  const { values, positionals } = parseArgs({
    args: normalizeFlags(reorder(args), FLAGS),
    options: FLAGS,
    allowPositionals: true,
    strict: true,
  });
  if (values.help || values.h) return "help";
  if (positionals.length !== 1) {
    throw new UsageError(
      positionals.length === 0
        ? "Missing the stream URL to subscribe to"
        : `Unexpected argument: "${positionals[1]}"`,
    );
  }
  const text = /^[a-z]+:\/\//i.test(positionals[0])
    ? positionals[0]
    : `ws://${positionals[0]}`;
  let count: number | null = null;
  if (values.count !== undefined) {
    count = /^[0-9]+$/.test(values.count) ? Number(values.count) : NaN;
    if (!Number.isSafeInteger(count) || count < 1) {
      throw new UsageError(
        `Cannot parse flag -count: expected a positive integer, received "${values.count}"`,
      );
    }
  }
  return {
    url: parseUpstreamUrl(text, "subscribe URL"),
    json: values.json === true,
    count,
    lastEventId: values["last-event-id"] ?? null,
    token: values.token ?? env.WSEVENT_SUBSCRIBE_TOKEN ?? null,
    quiet: values.quiet === true,
  };
}

// Go's flag package stops at the first positional; users write the URL
// first, so move flags before it.
function reorder(args: readonly string[]): string[] {
  const flags: string[] = [];
  const rest: string[] = [];
  for (let i = 0; i < args.length; i++) {
    const arg = args[i];
    if (!arg.startsWith("-") || arg === "-") {
      rest.push(arg);
      continue;
    }
    flags.push(arg);
    const name = arg.replace(/^--?/, "");
    const spec = (FLAGS as Record<string, { type: string }>)[name];
    if (spec?.type === "string" && !arg.includes("=")) {
      if (i + 1 >= args.length) {
        throw new UsageError(`Missing value for flag -${name}`);
      }
      flags.push(args[++i]);
    }
  }
  return [...flags, ...rest];
}

/** Where `subscribe` writes. */
export interface SubscribeIo {
  /** Event output. */
  stdout(text: string): void;
  /** Connection messages. */
  stderr(text: string): void;
  /** Stops the client. */
  signal?: AbortSignal;
  /** Draw a live status line on stderr (when it is a terminal). */
  statusLine?: boolean;
}

const DECODER = new TextDecoder();

function render(id: string | null, data: EventData, json: boolean): string {
  if (json) return formatJsonEvent(id, data) + "\n";
  const text = typeof data === "string" ? data : DECODER.decode(data);
  return text.endsWith("\n") ? text : text + "\n";
}

/**
 * Runs the client until `count` events arrived or the signal aborts.
 *
 * @param command What to subscribe to.
 * @param io Where to write.
 * @returns The exit code.
 * @throws {Error} When the server ended the subscription because the token
 *   expired (the message says how to resume).
 */
export async function runSubscribe(
  command: SubscribeCommand,
  io: SubscribeIo,
): Promise<number> {
  let received = 0;
  const status = io.statusLine && !command.quiet
    ? createStatusLine(redactUrl(command.url), io.stderr)
    : undefined;
  const events = subscribe(command.url, {
    token: command.token ?? undefined,
    lastEventId: command.lastEventId ?? undefined,
    signal: io.signal,
    onGap(notice) {
      // Reasons and ids come from the network: one line, no escape codes.
      const line = escapeControl(
        `gap: ${notice.reason} (after ${notice.lastEventId ?? "no id"})`,
      );
      if (status) status.print(line);
      else io.stderr(line + "\n");
      if (command.json) {
        io.stdout(JSON.stringify({ type: "gap", ...notice }) + "\n");
      }
    },
    onState(state, text) {
      const detail = escapeControl(text);
      if (status) status.state(state, detail);
      else if (!command.quiet) io.stderr(detail + "\n");
    },
  });
  try {
    for await (const event of events) {
      io.stdout(render(event.id, event.data, command.json));
      status?.event(event.id);
      if (++received === command.count) break;
    }
  } catch (error) {
    // Say how to go on from where it stopped.
    if (error instanceof TokenExpiredError && error.lastEventId !== null) {
      throw new Error(
        `${error.message}; resume with --last-event-id ${error.lastEventId} and a fresh token`,
      );
    }
    throw error;
  } finally {
    status?.stop();
  }
  return 0;
}
