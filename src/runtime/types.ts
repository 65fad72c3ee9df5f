/**
 * The shape every runtime adapter exports.
 *
 * @module
 */

import type { ProcessStats } from "../http/metrics.ts";
import type { WebSocketSupport } from "../http/types.ts";

/** A listening server. */
export interface RunningServer {
  /** The bound host. */
  hostname: string;
  /** The bound port (resolved when 0 was asked). */
  port: number;
  /** Stops accepting and resolves once closed (bounded by the caller). */
  shutdown(): Promise<void>;
  /** The HTTP versions served, for the start-up log ("h2, http/1.1"). */
  protocols?: string;
  /**
   * Serves new TLS connections with another certificate; open connections
   * keep theirs. Absent when serving plain HTTP, or where the runtime
   * cannot.
   *
   * @returns A warning for the log, if the reload may have cost something.
   * @throws {Error} When the certificate or key is unusable (the old pair
   * stays in force).
   */
  setTls?(tls: TlsPair): Promise<void | string>;
}

/** A certificate chain and its private key, PEM. */
export interface TlsPair {
  /** The certificate chain, PEM. */
  cert: string;
  /** The private key, PEM. */
  key: string;
}

/** Options of {@link Runtime.serve}. */
export interface ServeOptions {
  /** Host to bind. */
  hostname: string;
  /** Port to bind, 0 for any. */
  port: number;
  /** Largest incoming WebSocket frame. */
  maxFrameBytes: number;
  /** Serve HTTPS (and WSS) with this pair; plain HTTP when absent. */
  tls?: TlsPair;
}

/** A runtime adapter: the only code that touches Deno, Bun or node:http. */
export interface Runtime {
  /** Which runtime. */
  readonly name: "deno" | "bun" | "node";
  /** A line for the start-up log about how this adapter serves, if any. */
  readonly notice?: string;
  /** WebSocket support for the app. */
  websocketSupport(
    options: {
      heartbeatMs: number;
      maxFrameBytes: number;
      maxQueueBytes?: number;
    },
  ): WebSocketSupport;
  /**
   * WebSocket support for an app that a server other than {@link serve}
   * answers (`deno serve mod.ts`, an edge), where the runtime's own one
   * needs its server (Deno). Defaults to {@link websocketSupport}.
   */
  fetchWebSocketSupport?(
    options: {
      heartbeatMs: number;
      maxFrameBytes: number;
      maxQueueBytes?: number;
    },
  ): WebSocketSupport;
  /**
   * Serves `fetch` on the address.
   *
   * @throws {ServeError} When the address cannot be bound.
   */
  serve(
    fetch: (request: Request, env?: unknown) => Response | Promise<Response>,
    options: ServeOptions,
  ): Promise<RunningServer>;
  /** Calls `handler` once on SIGINT or SIGTERM. */
  onShutdownSignal(handler: (signal: string) => void): void;
  /** Calls `handler` on every SIGHUP (certificate reload). */
  onReloadSignal(handler: () => void): void;
  /** Writes to stdout. */
  stdout(text: string): void;
  /** Writes to stderr. */
  stderr(text: string): void;
  /** Exits the process. */
  exit(code: number): never;
  /** Command-line arguments after the script. */
  args(): string[];
  /** Environment variables. */
  env(): Record<string, string | undefined>;
  /** True when stderr is a terminal. */
  stderrIsTerminal(): boolean;
  /** Reads a text file (keys, certificates); Deno needs --allow-read for it. */
  readTextFile(path: string): Promise<string>;
  /**
   * The process's memory and open file descriptors, for /metrics; fields
   * the runtime cannot read (or may not, without a permission) are left
   * out.
   */
  processStats?(): ProcessStats;
  /**
   * A test and benchmark aid, off by default: when the runtime was started
   * with its garbage collector exposed (`node --expose-gc`,
   * `bun --expose-gc`, `deno run --v8-flags=--expose-gc`), each SIGUSR2
   * runs a full collection and then calls `collected`. Otherwise it
   * listens to nothing and returns false.
   */
  collectOnSignal?(collected: () => void): boolean;
}

/**
 * The engine's `gc()`, present only when the runtime was started with it
 * exposed (see {@link Runtime.collectOnSignal}).
 *
 * @returns The function, or undefined.
 */
export function exposedGc(): (() => void) | undefined {
  const gc = (globalThis as { gc?: unknown }).gc;
  if (typeof gc !== "function") return undefined;
  // V8 (Node, Deno): "last-resort" also gives back the young generation
  // and pooled pages, which a plain major collection keeps; after churn
  // that is most of the resident memory a collection can free.
  // JavaScriptCore (Bun) ignores the argument and collects fully.
  return () =>
    void gc({ type: "major", execution: "sync", flavor: "last-resort" });
}

/** The address could not be bound: in use, not permitted, not local. */
export class ServeError extends Error {
  /** @param message What failed, naming the address. */
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = "ServeError";
  }
}

/**
 * Words for a listen failure, from the error's code.
 *
 * @param error What the runtime threw.
 * @param address The address, as host:port.
 * @returns A ServeError naming the address and the cause.
 */
export function listenError(error: unknown, address: string): ServeError {
  const text = error instanceof Error
    ? `${(error as { code?: string }).code ?? error.name} ${error.message}`
    : String(error);
  let why = "cannot listen";
  if (/EADDRINUSE|AddrInUse|in use/i.test(text)) why = "address already in use";
  else if (/EACCES|PermissionDenied|permission/i.test(text)) {
    why = "permission denied";
  } else if (
    /EADDRNOTAVAIL|AddrNotAvailable|not available|assign/i.test(text)
  ) why = "address not available on this machine";
  else if (/ENOTFOUND|EAI_|lookup|resolve/i.test(text)) {
    why = "host name does not resolve";
  }
  return new ServeError(`Cannot listen on ${address}: ${why}`, {
    cause: error,
  });
}

/**
 * Calls `handler` once, on the first SIGINT or SIGTERM.
 *
 * @param listen Adds a listener for one signal, the runtime's way.
 * @param handler What to call, with the signal's name.
 */
export function onceOnSignals(
  listen: (signal: "SIGINT" | "SIGTERM", listener: () => void) => void,
  handler: (signal: string) => void,
): void {
  let called = false;
  for (const signal of ["SIGINT", "SIGTERM"] as const) {
    listen(signal, () => {
      if (!called) handler(signal);
      called = true;
    });
  }
}
