/**
 * A local PlantUML server for previews, written with this project's stack
 * (Hono). It answers what the VSCode PlantUML extension asks a server for in
 * its `PlantUMLServer` render mode, and renders with the local `plantuml`:
 *
 * - `GET /svg/<encoded>`, `GET /png/<encoded>`, `GET /txt/<encoded>`, and
 *   `GET /<format>/<page>/<encoded>` for a page of a `newpage` diagram;
 *   `<encoded>` is PlantUML's text encoding (deflate) or `~h` + hex.
 * - `POST /<format>[/<page>[/...]]` with the diagram text as the body (the
 *   extension tries this first and falls back to GET).
 * - The same under `/plantuml/...`, where PlantUML servers usually live.
 *
 * A diagram with a syntax error gets 400 with PlantUML's picture of the error
 * and the `X-PlantUML-Diagram-Error*` headers a PlantUML server sends; a bad
 * encoding gets 400 with a one-line message. Only loopback host names are
 * served, so a web page cannot read diagrams through DNS rebinding.
 *
 * Run: `scripts/docs/puml2preview [PORT]`, or
 * `deno run --allow-net=127.0.0.1 --allow-run=plantuml --allow-env scripts/docs/puml_server.ts [PORT]`
 * (`bun` and `node` run it too).
 *
 * @example Render through the app, without a port
 * ```ts ignore
 * import { createPreviewApp } from "./puml_server.ts";
 * import { encodePlantUml } from "./plantuml_encoding.ts";
 * const app = createPreviewApp();
 * const encoded = await encodePlantUml("@startuml\nAlice -> Bob\n@enduml");
 * const response = await app.request(`/svg/${encoded}`);
 * ```
 *
 * @module
 */
import { Hono } from "hono";
import type { Context } from "hono";
import { bodyLimit } from "hono/body-limit";
import process from "node:process";
import { decodePlantUml, MAX_TEXT_BYTES } from "./plantuml_encoding.ts";
import type { DecodeOptions } from "./plantuml_encoding.ts";
import {
  createLimiter,
  FORMATS,
  isFormat,
  RenderError,
  renderPlantUml,
} from "./_plantuml_render.ts";
import type { RenderOptions, RenderResult } from "./_plantuml_render.ts";

/** Port the preview server listens on when none is given. */
export const DEFAULT_PORT = 8088;

/** Highest page number accepted in `/<format>/<page>/<encoded>`. */
const MAX_PAGE = 999;

const LOOPBACK_HOSTS = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** Options of {@linkcode createPreviewApp}. */
export interface PreviewOptions extends DecodeOptions {
  /**
   * The PlantUML command.
   * @default {"plantuml"}
   */
  command?: string;
  /**
   * Renders that may run at once (each is a JVM).
   * @default {2}
   */
  maxConcurrentRenders?: number;
  /**
   * Renders that may wait for a slot; more get 503.
   * @default {16}
   */
  maxWaitingRenders?: number;
  /**
   * Time one render may take.
   * @default {60000}
   */
  renderTimeoutMs?: number;
}

/**
 * Creates the preview server's Hono app.
 *
 * @param options Command and limits.
 * @returns The app; serve its `fetch`, or call `app.request()` in tests.
 */
export function createPreviewApp(options: PreviewOptions = {}): Hono {
  const limiter = createLimiter(
    options.maxConcurrentRenders ?? 2,
    options.maxWaitingRenders ?? 16,
  );
  const maxTextBytes = options.maxTextBytes ?? MAX_TEXT_BYTES;
  const render = (text: string, c: Context): Promise<Response> =>
    answer(
      c,
      (format, index) =>
        limiter.run(() =>
          renderPlantUml(
            text,
            format,
            {
              command: options.command,
              index,
              timeoutMs: options.renderTimeoutMs,
            } satisfies RenderOptions,
          )
        ),
    );

  const routes = new Hono();
  routes.get("/", (c) => c.text(usage()));
  routes.get("/:format/:index{[0-9]+}/:encoded", async (c) => {
    const text = await decodePlantUml(c.req.param("encoded"), options);
    return render(text, c);
  });
  routes.get("/:format/:encoded", async (c) => {
    const text = await decodePlantUml(c.req.param("encoded"), options);
    return render(text, c);
  });
  const readBody = bodyLimit({
    maxSize: maxTextBytes,
    onError: (c) =>
      c.text(`Diagram text larger than ${maxTextBytes} bytes\n`, 413),
  });
  for (
    const path of [
      "/:format",
      "/:format/:index{[0-9]+}",
      "/:format/:index{[0-9]+}/:rest",
    ]
  ) {
    routes.post(path, readBody, async (c) => {
      const text = await c.req.text();
      if (text.trim() === "") {
        throw new SyntaxError("The diagram text is empty");
      }
      return render(text, c);
    });
  }

  const app = new Hono();
  app.use("*", async (c, next) => {
    if (!LOOPBACK_HOSTS.has(new URL(c.req.url).hostname)) {
      return c.text("Only loopback host names are served\n", 403);
    }
    await next();
  });
  app.route("/plantuml", routes);
  app.route("/", routes);
  app.notFound((c) =>
    c.text(`Not found: ${c.req.method} ${c.req.path}\n${usage()}`, 404)
  );
  app.onError((error, c) => errorResponse(c, error));
  return app;
}

type Renderer = (
  format: keyof typeof FORMATS,
  index: number,
) => Promise<RenderResult>;

async function answer(
  c: Context,
  renderer: Renderer,
): Promise<Response> {
  const format = c.req.param("format") ?? "";
  if (!isFormat(format)) {
    return c.text(
      `Unsupported format ${JSON.stringify(format)}: use ${
        Object.keys(FORMATS).join(", ")
      }\n`,
      404,
    );
  }
  const index = Number.parseInt(c.req.param("index") ?? "0", 10);
  if (index > MAX_PAGE) {
    return c.text(`Page ${index} is out of range: 0 to ${MAX_PAGE}\n`, 400);
  }
  const result = await renderer(format, index);
  const headers: Record<string, string> = {
    "Content-Type": FORMATS[format].contentType,
    "X-Content-Type-Options": "nosniff",
    // A diagram is data: nothing in it may run when the SVG is opened directly.
    "Content-Security-Policy":
      "default-src 'none'; style-src 'unsafe-inline'; img-src data:",
  };
  const error = result.diagramError;
  if (error) {
    headers["X-PlantUML-Diagram-Error"] = headerValue(error.message);
    headers["X-PlantUML-Diagram-Error-Line"] = String(error.line);
    headers["X-PlantUML-Diagram-Description"] = headerValue(error.description);
  }
  return new Response(result.image as Uint8Array<ArrayBuffer>, {
    status: error ? 400 : 200,
    headers,
  });
}

function errorResponse(c: Context, error: unknown): Response {
  if (error instanceof SyntaxError) return c.text(`${error.message}\n`, 400);
  if (error instanceof RangeError) return c.text(`${error.message}\n`, 413);
  if (error instanceof RenderError) {
    const status = {
      BUSY: 503,
      NO_DIAGRAM: 400,
      NOT_INSTALLED: 503,
      TIMEOUT: 504,
      TOO_LARGE: 502,
      FAILED: 502,
    } as const;
    if (error.code === "BUSY") c.header("Retry-After", "1");
    return c.text(`${error.message}\n`, status[error.code]);
  }
  console.error(error);
  return c.text("Internal error\n", 500);
}

/** Header values must be visible ASCII on one line. */
function headerValue(text: string): string {
  return text.replace(/[^\x20-\x7e]/g, "?").slice(0, 256);
}

function usage(): string {
  return [
    "PlantUML preview server (wsevent scripts/docs/puml_server.ts)",
    "GET  /svg/<encoded>   /png/<encoded>   /txt/<encoded>   /<format>/<page>/<encoded>",
    "     <encoded>: PlantUML text encoding (deflate + 0-9A-Za-z-_), or ~h + hex of the UTF-8 text",
    "POST /svg  /png  /txt  with the diagram text as the body",
    "",
  ].join("\n");
}

/**
 * Parses the command line: `[PORT]`.
 *
 * @param args The arguments after the script name.
 * @returns The port.
 * @throws {RangeError} When the port is not an integer from 0 to 65535.
 */
export function parsePort(args: readonly string[]): number {
  if (args.length > 1) {
    throw new RangeError(
      `Expected at most one argument, PORT; received ${args.length}`,
    );
  }
  const text = args[0] ?? String(DEFAULT_PORT);
  const port = /^[0-9]{1,5}$/.test(text) ? Number(text) : NaN;
  if (!(port >= 0 && port <= 65535)) {
    throw new RangeError(
      `Cannot parse port: expected an integer from 0 to 65535, received ${
        JSON.stringify(text)
      }`,
    );
  }
  return port;
}

interface BunServer {
  port: number;
}
interface BunGlobal {
  serve(options: {
    hostname: string;
    port: number;
    fetch: (request: Request) => Response | Promise<Response>;
  }): BunServer;
}

async function listen(app: Hono, port: number): Promise<number> {
  const hostname = "127.0.0.1";
  if (typeof Deno !== "undefined") {
    const server = Deno.serve(
      { hostname, port, onListen: () => {} },
      app.fetch,
    );
    return server.addr.port;
  }
  const bun = Reflect.get(globalThis, "Bun") as BunGlobal | undefined;
  if (bun) return bun.serve({ hostname, port, fetch: app.fetch }).port;
  const { serve } = await import("@hono/node-server");
  return await new Promise<number>((resolve) => {
    serve({ fetch: app.fetch, hostname, port }, (info) => resolve(info.port));
  });
}

async function main(args: readonly string[]): Promise<void> {
  let port: number;
  try {
    port = parsePort(args);
  } catch (error) {
    console.error(`error: ${(error as Error).message}`);
    console.error("usage: puml_server.ts [PORT]");
    process.exit(2);
  }
  const app = createPreviewApp({ command: process.env.PLANTUML || undefined });
  const actual = await listen(app, port);
  console.log(`PlantUML preview server on http://127.0.0.1:${actual}`);
  console.log(
    `VSCode settings: "plantuml.render": "PlantUMLServer", "plantuml.server": "http://127.0.0.1:${actual}"`,
  );
}

if (import.meta.main) await main(process.argv.slice(2));
