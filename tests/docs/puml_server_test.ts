import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import process from "node:process";
import { createPreviewApp, parsePort } from "../../scripts/docs/puml_server.ts";
import {
  encodePlantUml,
  encodePlantUmlHex,
} from "../../scripts/docs/plantuml_encoding.ts";
import { PLANTUML, requirePlantUml, ROOT } from "./_plantuml.ts";

// Each render starts a JVM (about a second); the first one on a cold machine more.
const RENDER_TEST = { timeout: 60_000 };
const LABEL = "wsevent-preview-label";
const DIAGRAM = `@startuml\nAlice -> Bob : ${LABEL}\n@enduml\n`;
const TWO_PAGES =
  "@startuml\nAlice -> Bob : first-page\nnewpage\nAlice -> Bob : second-page\n@enduml\n";

function assertSvgWith(body: string, label: string): void {
  assert.ok(
    body.startsWith("<?xml") || body.startsWith("<svg"),
    `not an SVG: ${body.slice(0, 80)}`,
  );
  assert.ok(body.includes("<svg"), "no <svg element");
  assert.ok(body.trimEnd().endsWith("</svg>"), "SVG is cut short");
  assert.ok(body.includes(label), `SVG lacks the label ${label}`);
}

describe("createPreviewApp()", () => {
  const app = createPreviewApp({ command: PLANTUML });

  test("GET /svg/<encoded> answers the rendered SVG", RENDER_TEST, async () => {
    requirePlantUml();
    const response = await app.request(`/svg/${await encodePlantUml(DIAGRAM)}`);
    assert.equal(response.status, 200);
    assert.equal(response.headers.get("content-type"), "image/svg+xml");
    assertSvgWith(await response.text(), LABEL);
  });

  test(
    "GET /png/..., the ~h form and the /plantuml prefix work",
    RENDER_TEST,
    async () => {
      requirePlantUml();
      const encoded = await encodePlantUml(DIAGRAM);
      const [png, hex, prefixed] = await Promise.all([
        app.request(`/png/${encoded}`),
        app.request(`/svg/${encodePlantUmlHex(DIAGRAM)}`),
        app.request(`/plantuml/svg/${encoded}`),
      ]);
      assert.equal(png.status, 200);
      assert.equal(png.headers.get("content-type"), "image/png");
      const magic = new Uint8Array(await png.arrayBuffer()).subarray(0, 8);
      assert.deepEqual([...magic], [
        0x89,
        0x50,
        0x4e,
        0x47,
        0x0d,
        0x0a,
        0x1a,
        0x0a,
      ]);
      assert.equal(hex.status, 200);
      assertSvgWith(await hex.text(), LABEL);
      assert.equal(prefixed.status, 200);
      assertSvgWith(await prefixed.text(), LABEL);
    },
  );

  test(
    "GET /svg/<page>/<encoded> renders that page of a newpage diagram",
    RENDER_TEST,
    async () => {
      requirePlantUml();
      const encoded = await encodePlantUml(TWO_PAGES);
      const [first, second] = await Promise.all([
        app.request(`/svg/0/${encoded}`),
        app.request(`/svg/1/${encoded}`),
      ]);
      const firstBody = await first.text();
      assertSvgWith(firstBody, "first-page");
      assert.ok(!firstBody.includes("second-page"));
      const secondBody = await second.text();
      assertSvgWith(secondBody, "second-page");
      assert.ok(!secondBody.includes("first-page"));
    },
  );

  test(
    "POST /svg/0/om80 renders the body, as the extension sends it",
    RENDER_TEST,
    async () => {
      requirePlantUml();
      const response = await app.request("/svg/0/om80", {
        method: "POST",
        headers: { "Content-Type": "text/plain; charset=utf-8" },
        body: DIAGRAM,
      });
      assert.equal(response.status, 200);
      assertSvgWith(await response.text(), LABEL);
    },
  );

  test(
    "a syntax error gets 400, PlantUML's error headers and its picture",
    RENDER_TEST,
    async () => {
      requirePlantUml();
      const broken =
        "@startuml\nAlice -> Bob : fine\nthis is not plantuml ((\n@enduml\n";
      const response = await app.request(
        `/svg/${await encodePlantUml(broken)}`,
      );
      assert.equal(response.status, 400);
      assert.match(
        response.headers.get("x-plantuml-diagram-error") ?? "",
        /Syntax Error/,
      );
      assert.equal(response.headers.get("x-plantuml-diagram-error-line"), "2");
      assert.ok((await response.text()).includes("<svg"));
    },
  );

  test(
    "a bad encoding gets 400 with a plain message, and the app still renders",
    RENDER_TEST,
    async () => {
      requirePlantUml();
      const bad: Array<[string, RegExp]> = [
        ["/svg/abc!", /unexpected character "!"/],
        ["/svg/____", /not valid deflate/],
        ["/svg/~hzz", /hexadecimal digits/],
        ["/svg/~hff", /not valid UTF-8/],
        ["/svg/~x1234", /unsupported form/],
        ["/png/a", /length 1/],
      ];
      for (const [path, message] of bad) {
        const response = await app.request(path);
        assert.equal(response.status, 400, path);
        assert.match(
          response.headers.get("content-type") ?? "",
          /^text\/plain/,
        );
        assert.match(await response.text(), message, path);
      }
      const empty = await app.request("/svg", { method: "POST", body: "  \n" });
      assert.equal(empty.status, 400);
      const after = await app.request(`/svg/${await encodePlantUml(DIAGRAM)}`);
      assert.equal(after.status, 200);
      assertSvgWith(await after.text(), LABEL);
    },
  );

  test("limits: 413 for input over the limits, 400 for a page out of range", async () => {
    const small = createPreviewApp({ maxEncodedLength: 64, maxTextBytes: 32 });
    const long = await small.request(`/svg/${"0".repeat(65)}`);
    assert.equal(long.status, 413);
    const big = await small.request("/svg", {
      method: "POST",
      body: "x".repeat(33),
    });
    assert.equal(big.status, 413);
    const page = await small.request(`/svg/1000/${encodePlantUmlHex("a->b")}`);
    assert.equal(page.status, 400);
  });

  test("404 for an unknown format, 403 for a host name that is not loopback", async () => {
    const encoded = encodePlantUmlHex(DIAGRAM);
    const gif = await app.request(`/gif/${encoded}`);
    assert.equal(gif.status, 404);
    assert.match(await gif.text(), /Unsupported format "gif"/);
    const foreign = await app.request(`http://attacker.example/svg/${encoded}`);
    assert.equal(foreign.status, 403);
    const local = await app.request("http://127.0.0.1:8088/");
    assert.equal(local.status, 200);
    assert.match(await local.text(), /GET {2}\/svg\/<encoded>/);
  });

  test("504 for a render that takes too long, 503 when too many wait", async () => {
    const dir = mkdtempSync(join(tmpdir(), "wsevent-slow-plantuml-"));
    try {
      // Stands in for a plantuml that hangs: reads the diagram, then sleeps.
      const slow = join(dir, "slow-plantuml");
      writeFileSync(slow, "#!/bin/sh\ncat >/dev/null\nexec sleep 5\n", {
        mode: 0o755,
      });
      const busy = createPreviewApp({
        command: slow,
        renderTimeoutMs: 300,
        maxConcurrentRenders: 1,
        maxWaitingRenders: 0,
      });
      const path = `/svg/${encodePlantUmlHex(DIAGRAM)}`;
      const first = busy.request(path);
      const second = await busy.request(path);
      assert.equal(second.status, 503);
      assert.equal(second.headers.get("retry-after"), "1");
      assert.match(await second.text(), /Too many renders waiting/);
      const timedOut = await first;
      assert.equal(timedOut.status, 504);
      assert.match(await timedOut.text(), /more than 300 ms/);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });

  test("503 naming the package when the plantuml command is missing", async () => {
    const missing = createPreviewApp({ command: "/nonexistent/plantuml" });
    const response = await missing.request(
      `/svg/${encodePlantUmlHex(DIAGRAM)}`,
    );
    assert.equal(response.status, 503);
    assert.match(await response.text(), /apt-get install plantuml/);
  });
});

describe("parsePort()", () => {
  test("reads PORT, 8088 by default, and rejects anything else", () => {
    assert.equal(parsePort([]), 8088);
    assert.equal(parsePort(["0"]), 0);
    assert.equal(parsePort(["9000"]), 9000);
    for (const bad of [["abc"], ["65536"], ["-1"], ["80", "81"], [""]]) {
      assert.throws(() => parsePort(bad), RangeError, bad.join(" "));
    }
  });
});

/** Starts puml_server.ts with the runtime running this test, on a free port. */
function startServer(): Promise<{ child: ChildProcess; url: string }> {
  const script = join(ROOT, "scripts/docs/puml_server.ts");
  const args = "Deno" in globalThis
    ? [
      "run",
      "--allow-net=127.0.0.1",
      `--allow-run=${PLANTUML}`,
      "--allow-env",
      script,
      "0",
    ]
    : [script, "0"];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let output = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(new Error(`puml_server.ts did not start in time:\n${output}`));
    }, 20_000);
    const onOutput = (chunk: Uint8Array): void => {
      output += new TextDecoder().decode(chunk);
      const match = /on (http:\/\/127\.0\.0\.1:\d+)/.exec(output);
      if (match) {
        clearTimeout(timer);
        resolve({ child, url: match[1] });
      }
    };
    child.stdout?.on("data", onOutput);
    child.stderr?.on("data", onOutput);
    child.on("exit", (code) => {
      clearTimeout(timer);
      reject(new Error(`puml_server.ts exited with ${code}:\n${output}`));
    });
  });
}

describe("puml_server.ts, started as a process", () => {
  test(
    "renders, answers a bad encoding with 400, and keeps serving",
    RENDER_TEST,
    async () => {
      requirePlantUml();
      const { child, url } = await startServer();
      try {
        const encoded = await encodePlantUml(DIAGRAM);
        const good = await fetch(`${url}/svg/${encoded}`);
        assert.equal(good.status, 200);
        assertSvgWith(await good.text(), LABEL);
        const bad = await fetch(`${url}/svg/abc!`);
        assert.equal(bad.status, 400);
        assert.match(await bad.text(), /unexpected character/);
        const again = await fetch(`${url}/png/${encoded}`);
        assert.equal(again.status, 200);
        assert.equal((await again.arrayBuffer()).byteLength > 100, true);
      } finally {
        child.kill("SIGTERM");
      }
    },
  );
});
