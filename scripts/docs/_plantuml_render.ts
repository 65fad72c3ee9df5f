/**
 * Renders PlantUML text with the local `plantuml` command (`-pipe`), through
 * `node:child_process` so it runs on Deno, Bun and Node. Used by
 * puml_server.ts.
 *
 * @module
 */
import { spawn } from "node:child_process";

/** Output formats the renderer knows, with PlantUML's flag and the media type. */
export const FORMATS = {
  svg: { flag: "-tsvg", contentType: "image/svg+xml" },
  png: { flag: "-tpng", contentType: "image/png" },
  txt: { flag: "-ttxt", contentType: "text/plain; charset=utf-8" },
} as const;

/** One of the keys of {@linkcode FORMATS}. */
export type Format = keyof typeof FORMATS;

/** Tells whether a string names one of the {@linkcode FORMATS}. */
export function isFormat(name: string): name is Format {
  return Object.hasOwn(FORMATS, name);
}

/** Where PlantUML found a syntax error, as it reports it on stderr. */
export interface DiagramError {
  /** Line of the error, counted from 0 at `@startuml`, as PlantUML servers report it. */
  line: number;
  /** Short message, e.g. `Syntax Error?`. */
  message: string;
  /** Longer description, may be empty. */
  description: string;
}

/** What a render produced: an image, and the error when the diagram is invalid. */
export interface RenderResult {
  /** The image; for an invalid diagram, PlantUML's picture of the error. */
  image: Uint8Array;
  /** Set when the diagram has a syntax error. */
  diagramError?: DiagramError;
}

/** Options of {@linkcode renderPlantUml}. */
export interface RenderOptions {
  /**
   * The command to run.
   * @default {"plantuml"}
   */
  command?: string;
  /**
   * Page of a multi-page diagram (`newpage`), from 0.
   * @default {0}
   */
  index?: number;
  /**
   * Time a render may take before PlantUML is killed.
   * @default {60000}
   */
  timeoutMs?: number;
  /**
   * Largest image accepted; PlantUML is killed past it.
   * @default {33554432}
   */
  maxOutputBytes?: number;
}

/** Stable codes of {@linkcode RenderError}. */
export type RenderErrorCode =
  | "BUSY"
  | "NO_DIAGRAM"
  | "NOT_INSTALLED"
  | "TIMEOUT"
  | "TOO_LARGE"
  | "FAILED";

/** A render that produced nothing usable; `code` says why. */
export class RenderError extends Error {
  /** Why the render failed. */
  readonly code: RenderErrorCode;

  /**
   * Creates the error.
   *
   * @param code Why the render failed.
   * @param message What happened, for people.
   * @param options The underlying error, if any.
   */
  constructor(code: RenderErrorCode, message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = "RenderError";
    this.code = code;
  }
}

const STDERR_KEEP_BYTES = 64 * 1024;
/** Exit status PlantUML uses when a diagram has errors (it still draws them). */
const PLANTUML_ERROR_STATUS = 200;
/** Exit status PlantUML uses when its input holds no diagram. */
const PLANTUML_NO_DIAGRAM_STATUS = 100;

/**
 * Renders one diagram by piping its text to `plantuml -pipe`.
 *
 * @param text The diagram source.
 * @param format The output format.
 * @param options Command, page, limits.
 * @returns The image, and the diagram error when there is one.
 * @throws {RenderError} When PlantUML is missing, too slow, too large or fails.
 */
export function renderPlantUml(
  text: string,
  format: Format,
  options: RenderOptions = {},
): Promise<RenderResult> {
  const command = options.command ?? "plantuml";
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxOutputBytes = options.maxOutputBytes ?? 32 * 1024 * 1024;
  // -nometadata: no copy of the source and of the Java version in the image.
  const args = [
    "-pipe",
    "-nometadata",
    "-charset",
    "UTF-8",
    FORMATS[format].flag,
    "-pipeimageindex",
    String(options.index ?? 0),
  ];
  return new Promise((resolve, reject) => {
    const child = spawn(command, args, { stdio: ["pipe", "pipe", "pipe"] });
    const stdout: Uint8Array[] = [];
    let stdoutBytes = 0;
    let stderr = "";
    let failure: RenderError | undefined;
    const stop = (error: RenderError): void => {
      failure ??= error;
      child.kill("SIGKILL");
    };
    const timer = setTimeout(
      () =>
        stop(
          new RenderError("TIMEOUT", `plantuml took more than ${timeoutMs} ms`),
        ),
      timeoutMs,
    );
    child.stdout.on("data", (chunk: Uint8Array) => {
      stdoutBytes += chunk.length;
      if (stdoutBytes > maxOutputBytes) {
        stop(
          new RenderError(
            "TOO_LARGE",
            `image larger than ${maxOutputBytes} bytes`,
          ),
        );
      } else stdout.push(chunk);
    });
    child.stderr.setEncoding("utf8");
    child.stderr.on("data", (chunk: string) => {
      if (stderr.length < STDERR_KEEP_BYTES) stderr += chunk;
    });
    // PlantUML may exit before reading everything (e.g. killed): ignore EPIPE.
    child.stdin.on("error", () => {});
    child.on("error", (error: Error & { code?: string }) => {
      clearTimeout(timer);
      reject(
        error.code === "ENOENT"
          ? new RenderError(
            "NOT_INSTALLED",
            `${command} not found; install it with: apt-get install plantuml graphviz`,
            { cause: error },
          )
          : new RenderError(
            "FAILED",
            `cannot run ${command}: ${error.message}`,
            {
              cause: error,
            },
          ),
      );
    });
    child.on("close", (status: number | null) => {
      clearTimeout(timer);
      if (failure) return reject(failure);
      const image = concat(stdout, stdoutBytes);
      if (status === 0 && image.length > 0) return resolve({ image });
      if (status === 0) {
        // PlantUML says "numImage is too big" and draws nothing.
        return reject(
          new RenderError(
            "NO_DIAGRAM",
            `No image ${options.index ?? 0} in the text`,
          ),
        );
      }
      const diagramError = status === PLANTUML_ERROR_STATUS
        ? parseDiagramError(stderr)
        : undefined;
      if (diagramError && image.length > 0) {
        return resolve({ image, diagramError });
      }
      reject(
        status === PLANTUML_NO_DIAGRAM_STATUS
          ? new RenderError("NO_DIAGRAM", `No diagram found in the text`)
          : new RenderError(
            "FAILED",
            `plantuml exited with status ${status}: ${firstLine(stderr)}`,
          ),
      );
    });
    child.stdin.end(text);
  });
}

/**
 * Reads PlantUML's stderr report of a syntax error:
 * `ERROR`, the line, the message, then the description.
 */
function parseDiagramError(stderr: string): DiagramError | undefined {
  const lines = stderr.split(/\r?\n/).map((line) => line.trim());
  const at = lines.indexOf("ERROR");
  if (at < 0) return undefined;
  const line = Number.parseInt(lines[at + 1] ?? "", 10);
  return {
    line: Number.isFinite(line) ? line : 0,
    message: lines[at + 2] || "Syntax Error?",
    description: lines.slice(at + 3).filter((l) => l !== "").join(" "),
  };
}

function firstLine(text: string): string {
  return text.trim().split(/\r?\n/)[0] || "no message";
}

function concat(chunks: Uint8Array[], length: number): Uint8Array {
  const out = new Uint8Array(length);
  let at = 0;
  for (const chunk of chunks) {
    out.set(chunk, at);
    at += chunk.length;
  }
  return out;
}

/** Runs at most a few renders at once; each is a JVM that wants memory. */
export interface Limiter {
  /**
   * Runs `task` when a slot is free.
   * @throws {RenderError} With code `BUSY` when too many tasks are already waiting.
   */
  run<T>(task: () => Promise<T>): Promise<T>;
}

/**
 * Creates a {@linkcode Limiter}.
 *
 * @param maxActive Tasks that may run at once.
 * @param maxWaiting Tasks that may wait for a slot; more are refused.
 * @returns The limiter.
 */
export function createLimiter(maxActive: number, maxWaiting: number): Limiter {
  let active = 0;
  const waiting: Array<() => void> = [];
  const release = (): void => {
    // Hand the slot straight to the next task, so none can overtake it.
    const next = waiting.shift();
    if (next) next();
    else active--;
  };
  return {
    async run<T>(task: () => Promise<T>): Promise<T> {
      if (active < maxActive) active++;
      else if (waiting.length < maxWaiting) {
        await new Promise<void>((resolve) => waiting.push(resolve));
      } else {
        throw new RenderError(
          "BUSY",
          `Too many renders waiting: limit is ${maxWaiting}, try again`,
        );
      }
      try {
        return await task();
      } finally {
        release();
      }
    },
  };
}
