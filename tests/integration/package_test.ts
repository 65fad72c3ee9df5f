// The npm package as a user gets it: `npm pack` (which builds dist/npm
// through "prepack"), `npm install ./wsevent-x.tgz` into an empty project,
// then the `wsevent` bin and both entry points on the runtime running this
// test (and on Node 22.18+ as well when that runtime is Node).
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import {
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import process from "node:process";
import { after, before, describe, test } from "node:test";
import { promisify } from "node:util";
import { freePort, ROOT, RUNTIME, startChild, waitFor } from "./_helpers.ts";

const run = promisify(execFile);
const BIN = join(ROOT, "node_modules", ".bin");
const NODE24 = join(ROOT, "node_modules", "node", "bin", "node");
/** Installed by scripts/setup beside Node 24 (see there). */
export const NODE22 = join(
  ROOT,
  "node_modules/.cache/node22/node_modules/node/bin/node",
);
const PACKAGE_VERSION: string = JSON.parse(
  readFileSync(join(ROOT, "package.json"), "utf8"),
).version;
const HAS_CLIENT = existsSync(join(ROOT, "src", "client.ts"));

/** How one runtime runs the installed bin and a module. */
interface Target {
  name: string;
  /** What `wsevent --version` names as its runtime. */
  runtime: "node" | "bun" | "deno";
  /** PATH for commands (puts this Node first where it is Node). */
  path: string;
  bin: (args: string[]) => [string, string[]];
  /** The long-running server: the bin's own process, so it gets the signal. */
  serve?: (project: string, args: string[]) => [string, string[]];
  script: (file: string) => [string, string[]];
}

function nodeTarget(name: string, node: string): Target {
  const path = `${dirname(node)}:${process.env.PATH ?? ""}`;
  return {
    name,
    runtime: "node",
    path,
    // npx runs the bin through its `#!/usr/bin/env node` line.
    bin: (args) => ["npx", ["--offline", "wsevent", ...args]],
    // npx does not pass SIGTERM on: run the installed bin (its shebang).
    serve: (
      project,
      args,
    ) => [join(project, "node_modules/.bin/wsevent"), args],
    script: (file) => [node, [file]],
  };
}

const TARGETS: Record<string, Target[]> = {
  node: [nodeTarget("Node 24", NODE24), nodeTarget("Node 22", NODE22)],
  bun: [{
    name: "Bun",
    runtime: "bun",
    path: process.env.PATH ?? "",
    bin: (args) => [join(BIN, "bun"), ["x", "--bun", "wsevent", ...args]],
    script: (file) => [join(BIN, "bun"), [file]],
  }],
  deno: [{
    name: "Deno",
    runtime: "deno",
    path: process.env.PATH ?? "",
    bin: (args) => [join(BIN, "deno"), ["run", "-A", "npm:wsevent", ...args]],
    script: (file) => [join(BIN, "deno"), ["run", "-A", file]],
  }],
};

// The entry points as a user imports them; Deno through `npm:`.
function importScript(prefix: string): string {
  return `
import * as lib from "${prefix}wsevent";
const out = {
  createHub: typeof lib.createHub,
  fetch: typeof lib.default?.fetch,
  createStreams: typeof lib.createStreams,
};
const hub = lib.createHub({ bufferSize: 4 });
const topic = hub.addTopic("t", lib.createEpoch());
out.published = topic.publish("hello").data;
hub.close(1001, "bye");
${
    HAS_CLIENT
      ? `const client = await import("${prefix}wsevent/client");
out.subscribe = typeof client.subscribe;
out.publish = typeof client.publish;`
      : ""
  }
console.log(JSON.stringify(out));
`;
}

let dir = "";
let project = "";
let packed = "";

describe("the npm package, installed from its tarball", {
  timeout: 120_000,
}, () => {
  before(async () => {
    dir = mkdtempSync(join(tmpdir(), "wsevent-pack-"));
    const built = await run("npm", [
      "pack",
      "--pack-destination",
      dir,
    ], {
      cwd: ROOT,
      env: { ...process.env, PATH: `${BIN}:${process.env.PATH}` },
    });
    packed = built.stdout + built.stderr;
    const tarball = readdirSync(dir).find((f) => f.endsWith(".tgz"));
    assert.ok(tarball, `npm pack made no tarball:\n${packed}`);
    project = join(dir, "project");
    mkdirSync(project);
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({ name: "user-project", private: true, type: "module" }),
    );
    // From npm's cache when it has the dependencies (no network then).
    await run("npm", [
      "install",
      join(dir, tarball),
      "--prefer-offline",
      "--no-audit",
      "--no-fund",
    ], { cwd: project });
    writeFileSync(join(project, "imports.mjs"), importScript(""));
    writeFileSync(join(project, "imports_npm.mjs"), importScript("npm:"));
  });
  after(() => {
    if (dir !== "") rmSync(dir, { recursive: true, force: true });
  });

  test("npm pack builds first, prints the packed size and ships no tests, bench or TypeScript sources", async () => {
    assert.match(
      packed,
      /package: wsevent-[\d.]+\.tgz: \d+ files, packed [\d.]+ KiB/,
    );
    const { stdout } = await run("npm", [
      "pack",
      "--dry-run",
      "--json",
      "--ignore-scripts",
    ], { cwd: ROOT });
    const [{ files, size }] = JSON.parse(stdout) as [{
      files: { path: string }[];
      size: number;
    }];
    const paths = files.map((f) => f.path);
    for (const path of paths) {
      assert.ok(
        /^(dist\/npm\/.*\.(js|d\.ts)|LICENSE|README\.md|package\.json)$/.test(
          path,
        ),
        `unexpected file in the package: ${path}`,
      );
    }
    for (
      const needed of [
        "dist/npm/mod.js",
        "dist/npm/mod.d.ts",
        "dist/npm/cli.js",
        "LICENSE",
      ]
    ) {
      assert.ok(paths.includes(needed), `${needed} is missing`);
    }
    assert.equal(paths.includes("dist/npm/src/client.js"), HAS_CLIENT);
    assert.ok(size < 200_000, `packed ${size} bytes`);
  });

  for (const target of TARGETS[RUNTIME]) {
    test(`${target.name}: the bin prints its version, serves, and subscribes; SIGTERM stops it`, async () => {
      const env = { PATH: target.path };
      const [command, args] = target.bin(["--version"]);
      const version = await run(command, args, {
        cwd: project,
        env: { ...process.env, ...env },
      });
      assert.equal(
        version.stdout,
        `wsevent ${PACKAGE_VERSION} (${target.runtime})\n`,
      );
      const port = await freePort();
      const [serveCommand, serveArgs] = (target.serve?.bind(null, project) ??
        target.bin)([
          "--serve-address",
          `127.0.0.1:${port}`,
          "--interval",
          "20",
        ]);
      const served = startChild(serveCommand, serveArgs, env, project);
      try {
        await waitFor(
          () =>
            /Serving on: ws:\/\/127\.0\.0\.1:\d+\/events/.test(served.stdout()),
          30_000,
          `Serving on: (${served.stderr()})`,
        );
        const [subCommand, subArgs] = target.bin([
          "subscribe",
          `ws://127.0.0.1:${port}/events`,
          "--count",
          "3",
        ]);
        const subscribed = await run(subCommand, subArgs, {
          cwd: project,
          env: { ...process.env, ...env },
          timeout: 30_000,
        });
        const lines = subscribed.stdout.trimEnd().split("\n");
        assert.equal(lines.length, 3, subscribed.stdout);
        for (const line of lines) {
          assert.match(line, /^\d+: 127\.0\.0\.1:\d+: [A-Za-z]{10}$/);
        }
      } finally {
        const exit = await served.stop("SIGTERM");
        assert.deepEqual(exit, { code: 0, signal: null }, served.stderr());
      }
    });

    test(`${target.name}: imports ${HAS_CLIENT ? "both entry points" : '"." (./client is not built: src/client.ts does not exist)'}`, async () => {
      const file = RUNTIME === "deno" ? "imports_npm.mjs" : "imports.mjs";
      const [command, args] = target.script(file);
      const { stdout } = await run(command, args, {
        cwd: project,
        env: { ...process.env, PATH: target.path },
      });
      const out = JSON.parse(stdout);
      assert.equal(out.createHub, "function");
      assert.equal(out.fetch, "function");
      assert.equal(out.createStreams, "function");
      assert.equal(out.published, "hello");
      if (HAS_CLIENT) {
        assert.equal(out.subscribe, "function");
        assert.equal(out.publish, "function");
      }
    });
  }
});
