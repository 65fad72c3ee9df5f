/**
 * Helpers for integration tests: real wsevent processes on loopback, real
 * nginx, WebSocket and SSE clients that record what they receive.
 */

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import process from "node:process";
import { createSseParser } from "../../src/sse_parser.ts";

export const ROOT: string = resolve(import.meta.dirname ?? ".", "../..");

/** The runtime running this test, which also runs the children. */
export const RUNTIME: "deno" | "bun" | "node" = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";

/** The command that runs a TypeScript file on this runtime. */
export function runtimeCommand(file: string): [string, string[]] {
  const exe = process.execPath;
  if (RUNTIME === "deno") return [exe, ["run", "-A", file]];
  return [exe, [file]];
}

/** Waits until `check` returns true, polling; throws after `timeoutMs`. */
export async function waitFor(
  check: () => boolean,
  timeoutMs: number,
  what: string,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!check()) {
    if (Date.now() > deadline) {
      throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}`);
    }
    await new Promise((r) => setTimeout(r, 10));
  }
}

/** A free TCP port on 127.0.0.1 (for processes that must restart on the same port). */
export function freePort(): Promise<number> {
  return new Promise((resolvePort, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null
        ? address.port
        : 0;
      server.close(() => resolvePort(port));
    });
  });
}

/** A running child process with its output collected. */
export interface Child {
  proc: ChildProcess;
  stdout: () => string;
  stderr: () => string;
  exited: Promise<{ code: number | null; signal: string | null }>;
  /** Sends a signal and waits for the exit (kills hard after 5 s). */
  stop(
    signal?: NodeJS.Signals,
  ): Promise<{ code: number | null; signal: string | null }>;
}

/** Starts a child process, collecting its output. */
export function startChild(
  command: string,
  args: string[],
  env: Record<string, string> = {},
  cwd: string = ROOT,
): Child {
  const proc = spawn(command, args, {
    cwd,
    env: { ...process.env, NO_COLOR: "1", ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  let err = "";
  proc.stdout?.setEncoding("utf8");
  proc.stderr?.setEncoding("utf8");
  proc.stdout?.on("data", (chunk: string) => (out += chunk));
  proc.stderr?.on("data", (chunk: string) => (err += chunk));
  const exited = new Promise<{ code: number | null; signal: string | null }>(
    (done) => {
      proc.once("exit", (code, signal) => done({ code, signal }));
    },
  );
  return {
    proc,
    stdout: () => out,
    stderr: () => err,
    exited,
    async stop(signal = "SIGTERM") {
      // process.kill, not proc.kill: Deno's child_process reports a child
      // that was sent a signal as killed by it even when it exited 0.
      const kill = (s: NodeJS.Signals): void => {
        try {
          if (proc.exitCode === null && proc.pid !== undefined) {
            process.kill(proc.pid, s);
          }
        } catch {
          // Already gone.
        }
      };
      if (proc.exitCode === null && proc.signalCode === null) kill(signal);
      const timer = setTimeout(() => kill("SIGKILL"), 5000);
      const result = await exited;
      clearTimeout(timer);
      return result;
    },
  };
}

/** A running wsevent instance. */
export interface Service extends Child {
  port: number;
  /** ws:// URL of the first path. */
  url: string;
  /** http:// base. */
  http: string;
}

/** Starts `cli.ts` with `args` on this runtime and waits for "Serving on:". */
export function startService(
  args: string[],
  env: Record<string, string> = {},
): Promise<Service> {
  return startServiceWith(runtimeCommand(join(ROOT, "cli.ts")), args, env);
}

/**
 * Starts wsevent by `command` (a program and the arguments that make it run
 * cli.ts, e.g. Deno with narrower permissions), then `args`, and waits for
 * "Serving on:".
 */
export async function startServiceWith(
  [command, base]: [string, string[]],
  args: string[],
  env: Record<string, string> = {},
): Promise<Service> {
  const child = startChild(command, [...base, ...args], env);
  let exited = false;
  child.exited.then(() => (exited = true));
  try {
    await waitFor(
      () => /Serving on: \S+/.test(child.stdout()) || exited,
      20_000,
      "Serving on:",
    );
  } catch (error) {
    await child.stop("SIGKILL");
    throw new Error(
      `${
        (error as Error).message
      }\nstdout: ${child.stdout()}\nstderr: ${child.stderr()}`,
    );
  }
  if (exited) {
    throw new Error(
      `wsevent exited early:\n${child.stdout()}\n${child.stderr()}`,
    );
  }
  const url = /Serving on: (\S+)/.exec(child.stdout())![1];
  const port = Number(new URL(url).port);
  return { ...child, port, url, http: `http://127.0.0.1:${port}` };
}

/**
 * Starts a hub: `cli.ts` on a free port of 127.0.0.1 without the demo
 * producer, then `args`.
 */
export function startHub(
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<Service> {
  return startHubOn(0, args, env);
}

/**
 * Starts a hub as {@link startHub} does, on `port` of 127.0.0.1 (for an
 * instance that restarts on the same port).
 */
export function startHubOn(
  port: number,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<Service> {
  return startService(
    ["--serve-address", `127.0.0.1:${port}`, "--no-produce", ...args],
    env,
  );
}

/**
 * Starts an instance whose demo producer publishes every `intervalMs`:
 * `cli.ts` on a free port of 127.0.0.1.
 */
export function startProducer(intervalMs: number): Promise<Service> {
  return startService([
    "--serve-address",
    "127.0.0.1:0",
    "--interval",
    String(intervalMs),
  ]);
}

/**
 * Starts a relay of `upstream` (its --consume-url): `cli.ts` on a free port
 * of 127.0.0.1 without the demo producer, then `args`.
 */
export function startRelay(
  upstream: string,
  args: string[] = [],
  env: Record<string, string> = {},
): Promise<Service> {
  return startHub(["--consume-url", upstream, ...args], env);
}

/** Waits (`timeoutMs`, 5 s by default, at most) until a relay's log says it connected to its upstream. */
export function relayConnected(
  relay: Child,
  timeoutMs = 5_000,
): Promise<void> {
  return waitFor(
    () => /connected to/.test(relay.stderr()),
    timeoutMs,
    "relay connected",
  );
}

/** A WebSocket client that records messages. */
export interface WsClient {
  messages: string[];
  opened: Promise<void>;
  closed: Promise<{ code: number; reason: string }>;
  isClosed: () => boolean;
  close(): void;
}

/** Connects a WebSocket client. */
export function connectWs(url: string): WsClient {
  const socket = new WebSocket(url);
  socket.binaryType = "arraybuffer";
  const messages: string[] = [];
  let isClosed = false;
  const opened = new Promise<void>((ok, fail) => {
    socket.onopen = () => ok();
    socket.onerror = () => fail(new Error(`WebSocket to ${url} failed`));
  });
  opened.catch(() => {});
  const closed = new Promise<{ code: number; reason: string }>((done) => {
    socket.onclose = (event) => {
      isClosed = true;
      done({ code: event.code, reason: event.reason });
    };
  });
  socket.onmessage = (event) => {
    messages.push(
      typeof event.data === "string"
        ? event.data
        : `<binary ${(event.data as ArrayBuffer).byteLength}>`,
    );
  };
  return {
    messages,
    opened,
    closed,
    isClosed: () => isClosed,
    close: () => socket.close(),
  };
}

/** One SSE message as received. */
export interface SseReceived {
  event: string;
  data: string;
  id: string;
}

/** An SSE client that records messages and raw text. */
export interface SseClient {
  messages: SseReceived[];
  raw: () => string;
  headers: Promise<Headers>;
  done: Promise<void>;
  close(): void;
}

/** Connects an SSE client with fetch. */
export function connectSse(
  url: string,
  headers: Record<string, string> = {},
): SseClient {
  const controller = new AbortController();
  const messages: SseReceived[] = [];
  let raw = "";
  const parser = createSseParser({
    onMessage: (m) =>
      messages.push({ event: m.event, data: m.data, id: m.lastEventId }),
  });
  let resolveHeaders!: (h: Headers) => void;
  const headersPromise = new Promise<Headers>((r) => (resolveHeaders = r));
  const done = (async () => {
    try {
      const response = await fetch(url, {
        headers: { Accept: "text/event-stream", ...headers },
        signal: controller.signal,
      });
      resolveHeaders(response.headers);
      const reader = response.body!.pipeThrough(new TextDecoderStream())
        .getReader();
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        raw += value;
        parser.feed(value);
      }
    } catch {
      // Aborted or dropped: the test looks at what arrived.
    }
  })();
  return {
    messages,
    raw: () => raw,
    headers: headersPromise,
    done,
    close: () => controller.abort(),
  };
}

/** Publishes one event over HTTP and returns its id. */
export async function publish(
  base: string,
  path: string,
  body: string,
): Promise<string> {
  const response = await fetch(`${base}/${path}`, {
    method: "POST",
    body,
    headers: { "Content-Type": "text/plain" },
  });
  const json = await response.json() as { id?: string };
  if (response.status !== 202 || typeof json.id !== "string") {
    throw new Error(
      `publish answered ${response.status} ${JSON.stringify(json)}`,
    );
  }
  return json.id;
}

/** A running nginx with its own prefix directory. */
export interface Nginx {
  port: number;
  stop(): Promise<void>;
}

/** Starts nginx in the foreground from a config template; `{{PORT}}` and `{{UPSTREAMS}}` are filled in. */
export async function startNginx(
  template: string,
  backends: number[],
): Promise<Nginx> {
  const port = await freePort();
  const prefix = mkdtempSync(join(tmpdir(), "wsevent-nginx-"));
  mkdirSync(join(prefix, "logs"), { recursive: true });
  const conf = template
    .replaceAll("{{PORT}}", String(port))
    .replaceAll("{{PREFIX}}", prefix)
    .replaceAll(
      "{{UPSTREAMS}}",
      backends.map((p) => `server 127.0.0.1:${p} max_fails=1 fail_timeout=5s;`)
        .join("\n    "),
    );
  const file = join(prefix, "nginx.conf");
  writeFileSync(file, conf);
  const child = startChild("nginx", [
    "-p",
    prefix,
    "-c",
    file,
    "-g",
    "daemon off;",
  ]);
  let exited = false;
  child.exited.then(() => (exited = true));
  await waitFor(
    () => exited || readFileSafe(join(prefix, "logs", "nginx.pid")) !== "",
    10_000,
    "nginx to start",
  );
  if (exited) throw new Error(`nginx failed: ${child.stderr()}`);
  await waitForPort(port);
  return {
    port,
    async stop() {
      await child.stop("SIGQUIT");
      rmSync(prefix, { recursive: true, force: true });
    },
  };
}

function readFileSafe(path: string): string {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return "";
  }
}

async function waitForPort(port: number): Promise<void> {
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    try {
      await fetch(`http://127.0.0.1:${port}/nginx-ready-probe`);
      return;
    } catch {
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  throw new Error(`port ${port} never answered`);
}

/** Reads the project's nginx config used by scripts/wsproxy, as a test template. */
export function nginxTemplate(): string {
  return readFileSync(join(ROOT, "scripts/config/nginx.conf"), "utf8");
}

/** Parses the seq of an id `<epoch>-<seq>`. */
export function seqOf(id: string): number {
  return Number(id.slice(id.lastIndexOf("-") + 1));
}

/** One line of `cli.ts subscribe URL --json`: an event, or a control message. */
export interface SubscriberLine {
  id?: string;
  data?: string;
  type?: string;
}

/** Runs `cli.ts subscribe URL --json` (it reconnects and resumes by itself) and parses its stdout lines. */
export function startSubscriber(
  url: string,
): Child & { lines(): SubscriberLine[] } {
  const [command, base] = runtimeCommand(join(ROOT, "cli.ts"));
  const child = startChild(command, [...base, "subscribe", url, "--json"]);
  return {
    ...child,
    lines: () =>
      child.stdout().split("\n").filter((l) => l !== "").map((l) =>
        JSON.parse(l) as SubscriberLine
      ),
  };
}

/** The status `/readyz` answers, or 0 when the instance does not answer. */
export async function readyStatus(http: string): Promise<number> {
  try {
    const response = await fetch(`${http}/readyz`);
    await response.body?.cancel();
    return response.status;
  } catch {
    return 0;
  }
}

/** Waits until `/readyz` answers 200 (`ready`) or 503; throws after `timeoutMs`. */
export async function waitForReady(
  http: string,
  ready: boolean,
  timeoutMs = 15_000,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while ((await readyStatus(http)) !== (ready ? 200 : 503)) {
    if (Date.now() > deadline) {
      throw new Error(`${http}/readyz never answered ${ready ? 200 : 503}`);
    }
    await new Promise((r) => setTimeout(r, 50));
  }
}

/** Ids of the events a WebSocket JSON client got, and its gap notices as `gap`. */
export function wsIds(client: Pick<WsClient, "messages">): string[] {
  const ids: string[] = [];
  for (const m of client.messages) {
    const message = JSON.parse(m) as { id?: string; type?: string };
    if (message.type === "gap") ids.push("gap");
    else if (message.type !== "heartbeat") ids.push(message.id!);
  }
  return ids;
}

/** Ids of the events an SSE client got, and its gap notices as `gap`. */
export function sseIds(client: Pick<SseClient, "messages">): string[] {
  return client.messages.map((m) => m.event === "gap" ? "gap" : m.id);
}

/** Asserts that engine ids follow each other: one epoch, each seq the last plus one, no gap notice. */
export function assertContiguous(ids: string[], what: string): void {
  assert.ok(
    !ids.includes("gap"),
    `${what}: no gap notice, got one after ${ids[ids.indexOf("gap") - 1]}`,
  );
  assert.equal(new Set(ids).size, ids.length, `${what}: no duplicate`);
  for (let i = 1; i < ids.length; i++) {
    assert.equal(
      seqOf(ids[i]),
      seqOf(ids[i - 1]) + 1,
      `${what}: ${ids[i]} follows ${ids[i - 1]} (event ${i} of ${ids.length})`,
    );
    assert.equal(ids[i].split("-")[0], ids[0].split("-")[0], "one epoch");
  }
}
