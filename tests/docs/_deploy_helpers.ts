/**
 * Helpers of deploy_config_test.ts: a tiny backend that speaks just enough
 * of wsevent's HTTP contract (health, metrics, an SSE stream that stays
 * open, a WebSocket that sends one message), child processes, free ports.
 * Everything listens on 127.0.0.1 only.
 *
 * @module
 */
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { createServer, type IncomingHttpHeaders } from "node:http";
import {
  connect,
  createServer as createNetServer,
  type Socket,
} from "node:net";

/** A request the backend received. */
export interface SeenRequest {
  method: string;
  url: string;
  headers: IncomingHttpHeaders;
  upgrade: boolean;
}

/** The running backend. */
export interface Backend {
  port: number;
  seen: SeenRequest[];
  /** Resolves once a request matching `match` arrived; rejects after `timeoutMs`. */
  waitFor(
    match: (request: SeenRequest) => boolean,
    what: string,
    timeoutMs: number,
  ): Promise<void>;
  close(): Promise<void>;
}

const WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";

/** First SSE event the backend sends; the stream then stays open. */
export const SSE_FIRST = "id: 1\ndata: first\n\n";
/** The one WebSocket message the backend sends after the handshake. */
export const WS_MESSAGE = "hello-ws";

/** Starts the backend on 127.0.0.1 and a free port. */
export async function startBackend(): Promise<Backend> {
  const seen: SeenRequest[] = [];
  const waiters = new Set<() => void>();
  const sockets = new Set<Socket>();
  const record = (request: SeenRequest): void => {
    seen.push(request);
    for (const check of [...waiters]) check();
  };
  const server = createServer((req, res) => {
    record({
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      upgrade: false,
    });
    const path = (req.url ?? "").split("?")[0];
    if (path === "/healthz") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"status":"ok"}');
    } else if (path === "/metrics") {
      res.writeHead(200, { "content-type": "text/plain; version=0.0.4" });
      res.end("wsevent_subscribers 0\n");
    } else if (
      path === "/events" && req.headers.accept === "text/event-stream"
    ) {
      // No X-Accel-Buffering header here: the proxy config alone must stream.
      res.writeHead(200, {
        "content-type": "text/event-stream",
        "cache-control": "no-cache",
      });
      res.write(SSE_FIRST);
    } else {
      res.writeHead(404, { "content-type": "text/plain" });
      res.end("not found\n");
    }
  });
  server.on("connection", (socket: Socket) => {
    sockets.add(socket);
    socket.on("close", () => sockets.delete(socket));
  });
  server.on("upgrade", (req, socket: Socket) => {
    record({
      method: req.method ?? "",
      url: req.url ?? "",
      headers: req.headers,
      upgrade: true,
    });
    sockets.add(socket);
    const key = String(req.headers["sec-websocket-key"] ?? "");
    const accept = createHash("sha1").update(key + WEBSOCKET_GUID).digest(
      "base64",
    );
    socket.write(
      "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n" +
        `Sec-WebSocket-Accept: ${accept}\r\n\r\n`,
    );
    const payload = new TextEncoder().encode(WS_MESSAGE);
    // One unmasked text frame (FIN + opcode 1), payload under 126 bytes.
    socket.write(new Uint8Array([0x81, payload.length, ...payload]));
    socket.on("error", () => {});
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") {
    throw new Error("backend has no port");
  }
  return {
    port: address.port,
    seen,
    waitFor(match, what, timeoutMs) {
      return new Promise((resolve, reject) => {
        const check = (): void => {
          if (!seen.some(match)) return;
          waiters.delete(check);
          clearTimeout(timer);
          resolve();
        };
        const timer = setTimeout(() => {
          waiters.delete(check);
          reject(
            new Error(`backend did not see ${what} within ${timeoutMs} ms`),
          );
        }, timeoutMs);
        waiters.add(check);
        check();
      });
    },
    close() {
      for (const socket of sockets) socket.destroy();
      return new Promise((resolve) => server.close(() => resolve()));
    },
  };
}

/** A child process with its output kept. */
export interface Child {
  process: ChildProcess;
  output(): string;
  exited(): boolean;
  stop(): Promise<void>;
}

/** Starts a command; `stop()` sends SIGTERM, then SIGKILL after 3 s. */
export function startChild(command: string, args: string[]): Child {
  const child = spawn(command, args, { stdio: ["ignore", "pipe", "pipe"] });
  let output = "";
  let exited = false;
  const exit = new Promise<void>((resolve) => {
    child.on("exit", () => {
      exited = true;
      resolve();
    });
    child.on("error", (error) => {
      output += `${error.message}\n`;
      exited = true;
      resolve();
    });
  });
  const keep = (chunk: Uint8Array): void => {
    output += new TextDecoder().decode(chunk);
  };
  child.stdout?.on("data", keep);
  child.stderr?.on("data", keep);
  return {
    process: child,
    output: () => output,
    exited: () => exited,
    async stop() {
      if (exited) return;
      child.kill("SIGTERM");
      const timer = setTimeout(() => child.kill("SIGKILL"), 3_000);
      await exit;
      clearTimeout(timer);
    },
  };
}

/** A port that was free on 127.0.0.1 a moment ago. */
export async function freePort(): Promise<number> {
  const server = createNetServer();
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  await new Promise<void>((resolve) => server.close(() => resolve()));
  if (address === null || typeof address === "string") {
    throw new Error("no port");
  }
  return address.port;
}

/** Resolves once 127.0.0.1:port accepts a connection; fails if `child` exits first. */
export async function waitForPort(
  port: number,
  child: Child,
  timeoutMs: number,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (child.exited()) {
      throw new Error(`exited before listening:\n${child.output()}`);
    }
    const open = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1");
      socket.once("connect", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (open) return;
    await new Promise((resolve) => setTimeout(resolve, 50));
  }
  throw new Error(
    `nothing listened on 127.0.0.1:${port} within ${timeoutMs} ms:\n${child.output()}`,
  );
}

/** Reads a stream until `needle` appears; rejects after `timeoutMs`. */
export async function readUntil(
  body: ReadableStream<Uint8Array>,
  needle: string,
  timeoutMs: number,
): Promise<string> {
  const reader = body.getReader();
  const decoder = new TextDecoder();
  let text = "";
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new Error(
            `"${needle}" did not arrive within ${timeoutMs} ms; got ${
              JSON.stringify(text)
            }`,
          ),
        ),
      timeoutMs,
    );
  });
  try {
    while (!text.includes(needle)) {
      const { done, value } = await Promise.race([reader.read(), timeout]);
      if (done) {
        throw new Error(
          `stream ended before "${needle}"; got ${JSON.stringify(text)}`,
        );
      }
      text += decoder.decode(value, { stream: true });
    }
    return text;
  } finally {
    clearTimeout(timer);
    reader.cancel().catch(() => {});
  }
}

/** Opens a WebSocket and resolves with its first message. */
export function firstWebSocketMessage(
  url: string,
  timeoutMs: number,
): Promise<string> {
  return new Promise((resolve, reject) => {
    const socket = new WebSocket(url);
    const timer = setTimeout(() => {
      socket.close();
      reject(
        new Error(`no WebSocket message from ${url} within ${timeoutMs} ms`),
      );
    }, timeoutMs);
    socket.onmessage = (event) => {
      clearTimeout(timer);
      socket.close();
      resolve(String(event.data));
    };
    socket.onerror = () => {
      clearTimeout(timer);
      reject(new Error(`WebSocket to ${url} failed`));
    };
  });
}

/** A parsed systemd unit: section name to its Key=Value entries, in order. */
export type Unit = Map<string, Array<[string, string]>>;

/** Parses a systemd unit: sections, Key=Value lines, comments, continuations. */
export function parseUnit(text: string): Unit {
  const unit: Unit = new Map();
  let section: Array<[string, string]> | undefined;
  const lines = text.replace(/\\\n/g, " ").split("\n");
  lines.forEach((raw, index) => {
    const line = raw.trim();
    if (line === "" || line.startsWith("#") || line.startsWith(";")) return;
    const header = /^\[([A-Za-z]+)\]$/.exec(line);
    if (header) {
      assert.ok(
        !unit.has(header[1]),
        `line ${index + 1}: section [${header[1]}] twice`,
      );
      section = [];
      unit.set(header[1], section);
      return;
    }
    const entry = /^([A-Za-z][A-Za-z0-9]*)=(.*)$/.exec(line);
    assert.ok(entry, `line ${index + 1}: not Key=Value: ${line}`);
    assert.ok(section, `line ${index + 1}: ${entry[1]} before any [Section]`);
    section.push([entry[1], entry[2].trim()]);
  });
  return unit;
}

/** A systemd boolean. */
export const BOOLEAN: RegExp = /^(yes|no|true|false|on|off|1|0)$/;
/** The keys the deploy units may use, with the values each accepts. */
export const UNIT_KEYS: Record<string, Record<string, RegExp>> = {
  Unit: {
    Description: /.+/,
    Documentation: /.+/,
    After: /.+/,
    Wants: /.+/,
    Requires: /.+/,
  },
  Service: {
    Type: /^(simple|exec|notify)$/,
    EnvironmentFile: /^-?\/\S+$/,
    Environment: /^\S+=.*/,
    ExecStart: /^\/\S+/,
    KillSignal: /^SIG[A-Z]+$/,
    TimeoutStopSec: /^\d+(s|min)?$/,
    Restart: /^(no|on-success|on-failure|on-abnormal|on-abort|always)$/,
    RestartSec: /^\d+(ms|s|min)?$/,
    LimitNOFILE: /^\d+$/,
    DynamicUser: BOOLEAN,
    NoNewPrivileges: BOOLEAN,
    CapabilityBoundingSet: /^$|^~?CAP_/,
    AmbientCapabilities: /^$|^CAP_/,
    ProtectSystem: /^(yes|no|full|strict)$/,
    ProtectHome: /^(yes|no|read-only|tmpfs)$/,
    PrivateTmp: BOOLEAN,
    PrivateDevices: BOOLEAN,
    PrivateUsers: BOOLEAN,
    ProtectHostname: BOOLEAN,
    ProtectClock: BOOLEAN,
    ProtectKernelTunables: BOOLEAN,
    ProtectKernelModules: BOOLEAN,
    ProtectKernelLogs: BOOLEAN,
    ProtectControlGroups: BOOLEAN,
    ProtectProc: /^(noaccess|invisible|ptraceable|default)$/,
    ProcSubset: /^(all|pid)$/,
    RestrictAddressFamilies: /^(~?AF_[A-Z0-9]+)( AF_[A-Z0-9]+)*$/,
    RestrictNamespaces: BOOLEAN,
    RestrictRealtime: BOOLEAN,
    RestrictSUIDSGID: BOOLEAN,
    LockPersonality: BOOLEAN,
    RemoveIPC: BOOLEAN,
    UMask: /^0[0-7]{3}$/,
    SystemCallArchitectures: /^native$/,
    SystemCallFilter: /^~?@?[a-z-]+( @?[a-z-]+)*$/,
    SystemCallErrorNumber: /^E[A-Z]+$/,
    MemoryDenyWriteExecute: /^(no|false|0|off)$/,
  },
  Install: { WantedBy: /\.target$/ },
};

/** The last value of `key` in `section`. */
export function unitValue(
  unit: Unit,
  section: string,
  key: string,
): string | undefined {
  return unit.get(section)?.findLast(([k]) => k === key)?.[1];
}

/**
 * A copy of an nginx config that runs unprivileged in `dir` on
 * 127.0.0.1:`port`: no user, one worker, pid, logs and temp files in `dir`;
 * the n-th upstream `server 127.0.0.1:N` goes to `upstream(n)`.
 */
export function nginxTestCopy(
  text: string,
  dir: string,
  port: number,
  upstream: (index: number) => number,
): string {
  const temp = ["client_body", "proxy", "fastcgi", "uwsgi", "scgi"]
    .map((name) => `    ${name}_temp_path ${dir}/${name};`).join("\n");
  let index = 0;
  return text
    .replace(/^user\s+[^;]+;\n/m, "")
    .replace(/^worker_processes\s+[^;]+;/m, "worker_processes 1;")
    .replace(/^worker_rlimit_nofile\s+[^;]+;\n/m, "")
    .replace(/^pid\s+[^;]+;/m, `pid ${dir}/nginx.pid;`)
    .replace(/^error_log\s+\S+/m, `error_log ${dir}/error.log`)
    .replace(/access_log\s+\/\S+/g, `access_log ${dir}/access.log`)
    .replace(/listen\s+80;/g, `listen 127.0.0.1:${port};`)
    .replace(
      /server\s+127\.0\.0\.1:\d+/g,
      () => `server 127.0.0.1:${upstream(index++)}`,
    )
    .replace(/^http \{\n/m, `http {\n${temp}\n`);
}
