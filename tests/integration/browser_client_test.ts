/**
 * The client module in a real browser: Debian's headless Chromium, driven by
 * playwright-core, loads a page that imports the built ES module
 * (scripts/build/client_script.ts, the same build the size is measured on)
 * and subscribes over WebSocket and SSE to a relay started from cli.ts; the
 * relay is killed and restarted on the same port, and both subscriptions
 * resume with nothing lost or repeated. The page and the module are served
 * on the relay's origin by playwright's request interception, as a site
 * serving its own pages next to wsevent would.
 *
 * @module
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { BrowserContext } from "playwright-core";
import { buildClient } from "../../scripts/build/client_script.ts";
import { freePort, type Service, startService } from "./_helpers.ts";

const CHROMIUM = "/usr/bin/chromium";
const WAIT_MS = 20_000;

/** The test page: subscribes over both transports, records into window.results. */
const PAGE = `<!doctype html>
<html><head><meta charset="utf-8"><title>client test</title></head>
<body>
<script type="module">
import { publish, subscribe } from "/client-test/client.js";
const controller = new AbortController();
const results = { ws: [], sse: [], states: { ws: [], sse: [] }, gaps: 0, ended: 0 };
window.results = results;
window.stop = () => controller.abort();
window.publishBytes = async (bytes) =>
  (await publish(location.origin + "/events", new Uint8Array(bytes))).id;
async function run(kind, url) {
  const events = subscribe(url, {
    signal: controller.signal,
    onGap: () => results.gaps++,
    onState: (state) => results.states[kind].push(state),
  });
  for await (const event of events) {
    results[kind].push({
      id: event.id,
      binary: event.data instanceof Uint8Array,
      data: typeof event.data === "string" ? event.data : Array.from(event.data),
    });
  }
  results.ended++;
}
run("ws", "ws://" + location.host + "/events");
run("sse", "/events");
</script>
</body></html>
`;

interface Received {
  id: string;
  binary: boolean;
  data: string | number[];
}

function assertConsecutive(events: Received[], what: string): void {
  const parts = events.map((e) => /^([0-9a-z]+)-(\d+)$/.exec(e.id)!);
  for (let i = 1; i < parts.length; i++) {
    assert.equal(parts[i][1], parts[0][1], `${what}: one epoch`);
    assert.equal(
      Number(parts[i][2]),
      Number(parts[i - 1][2]) + 1,
      `${what}: no loss, no duplicate after ${events[i - 1].id}`,
    );
  }
}

describe("client module in Chromium", () => {
  test(
    "a page importing the built module receives events over WebSocket and SSE, binary as Uint8Array, and resumes across a relay restart",
    {
      timeout: 120_000,
    },
    async () => {
      const { module } = await buildClient();
      let producer: Service | undefined;
      let relay: Service | undefined;
      let context: BrowserContext | undefined;
      const profile = mkdtempSync(join(tmpdir(), "wsevent-chromium-"));
      try {
        producer = await startService([
          "--serve-address",
          "127.0.0.1:0",
          "--interval",
          "50",
        ]);
        const port = await freePort();
        const relayArgs = [
          "--consume-url",
          producer.url,
          "--no-produce",
          "--forward-publish",
          "--serve-address",
          `127.0.0.1:${port}`,
        ];
        relay = await startService(relayArgs);
        const playwright = await import("playwright-core");
        context = await playwright.chromium.launchPersistentContext(profile, {
          executablePath: CHROMIUM,
          headless: true,
          args: [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
          ],
        });
        const origin = `http://127.0.0.1:${port}`;
        // Only the module is served by interception: a document fulfilled
        // that way counts as public to Chromium, which then refuses its
        // WebSockets to loopback (local network access checks). So the
        // page is the relay's own /healthz document, its content replaced.
        await context.route(
          `${origin}/client-test/client.js`,
          (route) =>
            route.fulfill({ contentType: "text/javascript", body: module }),
        );
        const page = await context.newPage();
        const errors: string[] = [];
        page.on("pageerror", (error) => errors.push(error.message));
        await page.goto(`${origin}/healthz`);
        await page.setContent(PAGE);
        const count = (n: number) =>
          page.waitForFunction(
            (min) => {
              const r = (globalThis as unknown as {
                results?: { ws: unknown[]; sse: unknown[] };
              }).results;
              return r !== undefined && r.ws.length >= min &&
                r.sse.length >= min;
            },
            n,
            { timeout: WAIT_MS },
          );
        await count(10);

        // Binary: published from the page, back as bytes on both transports.
        const id = await page.evaluate(
          () =>
            (globalThis as unknown as {
              publishBytes(b: number[]): Promise<string>;
            }).publishBytes([0, 1, 2, 254, 255]),
        );
        await page.waitForFunction(
          (wanted) => {
            const r = (globalThis as unknown as {
              results: Record<"ws" | "sse", { id: string }[]>;
            }).results;
            return r.ws.some((e) => e.id === wanted) &&
              r.sse.some((e) => e.id === wanted);
          },
          id,
          { timeout: WAIT_MS },
        );

        // Kill the relay, restart it on the same port: both resume.
        const before = await page.evaluate(() =>
          (globalThis as unknown as { results: { ws: unknown[] } }).results.ws
            .length
        );
        await relay.stop("SIGKILL");
        relay = await startService(relayArgs);
        await count(before + 30);
        await page.evaluate(() =>
          (globalThis as unknown as { stop(): void }).stop()
        );
        await page.waitForFunction(
          () =>
            (globalThis as unknown as { results: { ended: number } }).results
              .ended === 2,
          undefined,
          { timeout: WAIT_MS },
        );
        const results = await page.evaluate(() =>
          (globalThis as unknown as {
            results: {
              ws: Received[];
              sse: Received[];
              states: Record<string, string[]>;
              gaps: number;
            };
          }).results
        );
        for (const kind of ["ws", "sse"] as const) {
          const events = results[kind];
          assertConsecutive(events, kind);
          const bytes = events.find((e) => e.id === id);
          assert.ok(bytes?.binary, `${kind}: binary event as a Uint8Array`);
          assert.deepEqual(bytes.data, [0, 1, 2, 254, 255]);
          assert.ok(
            results.states[kind].filter((s) => s === "open").length >= 2,
            `${kind} reconnected: ${results.states[kind]}`,
          );
        }
        assert.equal(results.gaps, 0);
        assert.deepEqual(errors, []);
      } catch (error) {
        const state = await context?.pages()[0]?.evaluate(() =>
          JSON.stringify(
            (globalThis as unknown as { results: unknown }).results,
          )
        ).catch(() => "");
        console.log(`page state: ${state?.slice(0, 3000)}`);
        throw error;
      } finally {
        await context?.close().catch(() => {});
        await relay?.stop();
        await producer?.stop();
        rmSync(profile, { recursive: true, force: true });
      }
    },
  );
});
