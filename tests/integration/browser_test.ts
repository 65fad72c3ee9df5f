/**
 * End to end in a real browser: Debian's headless Chromium, driven by
 * playwright-core (no browser download), against a producer and a relay
 * started from cli.ts with the runtime running this test.
 *
 * @module
 */

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { BrowserContext, Page } from "playwright-core";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const CHROMIUM = "/usr/bin/chromium";
const CHROMIUM_ARGS = [
  "--headless",
  "--no-sandbox",
  "--disable-gpu",
  "--disable-quic",
  "--no-first-run",
  "--disable-background-networking",
  "--disable-component-update",
  "--disable-sync",
];
const START_TIMEOUT_MS = 20_000;
const WAIT_MS = 20_000;
const RUNTIME = "Deno" in globalThis
  ? "deno"
  : "Bun" in globalThis
  ? "bun"
  : "node";

interface Instance {
  child: ChildProcess;
  port: number;
  output(): string;
}

/** Starts cli.ts with this test's runtime and waits for its "Serving on" line. */
function startInstance(flags: string[]): Promise<Instance> {
  const args = RUNTIME === "deno"
    ? ["run", "-A", "cli.ts", ...flags]
    : ["cli.ts", ...flags];
  const child = spawn(process.execPath, args, {
    cwd: ROOT,
    stdio: ["ignore", "pipe", "pipe"],
  });
  let out = "";
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill("SIGKILL");
      reject(
        new Error(
          `cli.ts ${
            flags.join(" ")
          } printed no "Serving on" line in time:\n${out}`,
        ),
      );
    }, START_TIMEOUT_MS);
    const onOutput = (chunk: Buffer): void => {
      out += chunk.toString();
      const match = /Serving on: ws:\/\/127\.0\.0\.1:(\d+)\//.exec(out);
      if (match) {
        clearTimeout(timer);
        resolve({ child, port: Number(match[1]), output: () => out });
      }
    };
    child.stdout!.on("data", onOutput);
    child.stderr!.on("data", onOutput);
    child.once("exit", (code) => {
      clearTimeout(timer);
      reject(
        new Error(
          `cli.ts ${
            flags.join(" ")
          } exited with ${code} before serving:\n${out}`,
        ),
      );
    });
  });
}

async function stopInstance(instance: Instance | undefined): Promise<void> {
  const child = instance?.child;
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise((resolve) => child.once("exit", resolve));
  child.kill("SIGKILL");
  await exited;
}

/** Fails fast, with the reason, when the instance answers a browser with something else than the page. */
async function assertServesPage(url: string): Promise<void> {
  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), 5_000);
  try {
    const response = await fetch(url, {
      headers: { Accept: "text/html" },
      signal: controller.signal,
    });
    const type = response.headers.get("content-type") ?? "";
    await response.body?.cancel();
    assert.match(
      type,
      /^text\/html/,
      `GET ${url} with Accept: text/html must serve the live view page`,
    );
  } finally {
    clearTimeout(timer);
    controller.abort();
  }
}

async function rowIds(page: Page): Promise<string[]> {
  return await page.$$eval(
    '#events li[data-kind="message"]',
    (rows) => rows.map((row) => (row as HTMLElement).dataset.id ?? ""),
  );
}

/** Asserts that ids, newest first as listed, are one epoch with consecutive sequence numbers. */
function assertConsecutive(newestFirst: string[]): void {
  const ids = [...newestFirst].reverse();
  const parts = ids.map((id) => {
    const match = /^([0-9a-z]+)-(\d+)$/.exec(id);
    assert.ok(match, `"${id}" looks like <epoch>-<seq>`);
    return { epoch: match[1], seq: Number(match[2]) };
  });
  for (let i = 1; i < parts.length; i++) {
    assert.equal(
      parts[i].epoch,
      parts[0].epoch,
      `one epoch: ${ids[i - 1]} then ${ids[i]}`,
    );
    assert.equal(
      parts[i].seq,
      parts[i - 1].seq + 1,
      `no gap and no duplicate: ${ids[i - 1]} then ${ids[i]}`,
    );
  }
}

async function launch(): Promise<{ context: BrowserContext; profile: string }> {
  let playwright: typeof import("playwright-core");
  try {
    playwright = await import("playwright-core");
  } catch (error) {
    throw new Error(
      "playwright-core is not installed: it belongs in devDependencies",
      { cause: error },
    );
  }
  const profile = mkdtempSync(join(tmpdir(), "wsevent-chromium-"));
  const context = await playwright.chromium.launchPersistentContext(profile, {
    executablePath: CHROMIUM,
    headless: true,
    args: CHROMIUM_ARGS,
    viewport: { width: 1280, height: 800 },
  });
  return { context, profile };
}

describe("browser live view", () => {
  test(
    "live view on a relay: events appear, publish arrives, relay restart resumes with no gap",
    { timeout: 120_000 },
    async () => {
      let producer: Instance | undefined;
      let relay: Instance | undefined;
      let context: BrowserContext | undefined;
      let profile = "";
      try {
        producer = await startInstance([
          "--serve-address",
          "127.0.0.1:0",
          "--interval",
          "100",
        ]);
        const upstream = `ws://127.0.0.1:${producer.port}/events`;
        const relayFlags = [
          "--consume-url",
          upstream,
          "--no-produce",
          "--forward-publish",
        ];
        relay = await startInstance([
          ...relayFlags,
          "--serve-address",
          "127.0.0.1:0",
        ]);
        const relayPort = relay.port;
        await assertServesPage(`http://127.0.0.1:${relayPort}/events`);
        ({ context, profile } = await launch());
        const page = await context.newPage();
        const errors: string[] = [];
        page.on("pageerror", (error) => errors.push(error.message));

        // 1. The page loads from the relay and goes live.
        const response = await page.goto(
          `http://127.0.0.1:${relayPort}/events`,
        );
        assert.ok(response, "a response");
        assert.equal(response.status(), 200);
        assert.match(response.headers()["content-type"] ?? "", /^text\/html/);
        await page.waitForSelector('#state[data-state="live"]', {
          timeout: WAIT_MS,
        });
        await page.waitForFunction(
          () =>
            document.querySelectorAll('#events li[data-kind="message"]')
              .length >= 5,
          undefined,
          { timeout: WAIT_MS },
        );

        // 2. Publish from the page: the relay forwards it upstream and it comes back down.
        const text = `from the browser ${Math.random().toString(36).slice(2)}`;
        await page.fill("#publish-data", text);
        await page.click("#publish-button");
        await page.waitForSelector('#publish-result[data-status="ok"]', {
          timeout: WAIT_MS,
        });
        const publishedId = await page.getAttribute(
          "#publish-result",
          "data-id",
        );
        assert.ok(publishedId, "the publish result names the id");
        const row = page.locator(`#events li[data-id="${publishedId}"]`);
        await row.waitFor({ timeout: WAIT_MS });
        assert.equal(await row.locator(".data").textContent(), text);

        // 3. Kill the relay: the page says so. Restart it on the same port: live again.
        const beforeKill = await rowIds(page);
        await stopInstance(relay);
        await page.waitForSelector('#state[data-state="reconnecting"]', {
          timeout: WAIT_MS,
        });
        relay = await startInstance([
          ...relayFlags,
          "--serve-address",
          `127.0.0.1:${relayPort}`,
        ]);
        await page.waitForSelector('#state[data-state="live"]', {
          timeout: WAIT_MS,
        });
        const target = beforeKill.length + 30;
        await page.waitForFunction(
          (n) =>
            document.querySelectorAll('#events li[data-kind="message"]')
              .length >= n,
          target,
          { timeout: WAIT_MS },
        );

        // 4. No gap: every id once, in order, one epoch; no gap notice.
        const ids = await rowIds(page);
        assert.ok(
          ids.includes(publishedId),
          "the published event is still listed",
        );
        assertConsecutive(ids);
        assert.equal(
          await page.locator('#events li[data-kind="gap"]').count(),
          0,
        );
        assert.equal(await page.textContent("#gaps"), "0");
        // #last-id shows an event as it arrives, its row comes with the next
        // animation frame, and events keep coming (one per 100 ms): the two
        // are read together right after the view adds rows (a mutation
        // observer runs before any other event can arrive), three times.
        const shown = await page.evaluate(
          (waitMs) =>
            new Promise<{ last?: string | null; newest?: string }[]>(
              (resolve, reject) => {
                const list = document.getElementById("events")!;
                const seen: { last?: string | null; newest?: string }[] = [];
                const timer = setTimeout(() => {
                  observer.disconnect();
                  reject(new Error(`only ${seen.length} flushes seen`));
                }, waitMs);
                const observer = new MutationObserver(() => {
                  seen.push({
                    last: document.getElementById("last-id")?.textContent,
                    newest: list.querySelector<HTMLElement>(
                      'li[data-kind="message"]',
                    )?.dataset.id,
                  });
                  if (seen.length < 3) return;
                  observer.disconnect();
                  clearTimeout(timer);
                  resolve(seen);
                });
                observer.observe(list, { childList: true });
              },
            ),
          WAIT_MS,
        );
        for (const { last, newest } of shown) {
          assert.ok(newest, JSON.stringify(shown));
          assert.equal(last, newest, JSON.stringify(shown));
        }
        assert.deepEqual(errors, [], "no script error on the page");

        const dir = join(ROOT, ".tmp", "browser");
        mkdirSync(dir, { recursive: true });
        const shot = join(dir, `live-view-${RUNTIME}.png`);
        await page.screenshot({ path: shot });
        console.log(`screenshot: ${shot}`);
        await page.setViewportSize({ width: 390, height: 844 });
        const phone = join(dir, `live-view-${RUNTIME}-phone.png`);
        await page.screenshot({ path: phone });
        console.log(`screenshot: ${phone}`);

        // 5. Pause from the keyboard: rows stop, arrivals are counted; resume shows them, still in order.
        await page.focus("#pause");
        await page.keyboard.press("Enter");
        assert.equal(await page.getAttribute("#pause", "aria-pressed"), "true");
        const pausedRows = (await rowIds(page)).length;
        await page.waitForFunction(
          () => Number(document.getElementById("held")?.textContent) >= 5,
          undefined,
          { timeout: WAIT_MS },
        );
        assert.equal(
          (await rowIds(page)).length,
          pausedRows,
          "no row added while paused",
        );
        await page.keyboard.press("Space");
        await page.waitForFunction(
          (n) =>
            document.querySelectorAll('#events li[data-kind="message"]')
              .length >= n + 5,
          pausedRows,
          { timeout: WAIT_MS },
        );
        assertConsecutive(await rowIds(page));

        // 6. The relay's index page shows the browser's subscription and the upstream.
        const index = await context.newPage();
        await index.goto(`http://127.0.0.1:${relayPort}/`);
        const pathRow = index.locator(
          '[data-testid="path-row"][data-path="/events"]',
        );
        assert.match(await pathRow.textContent() ?? "", /SSE 1\b/);
        assert.equal(
          await pathRow.locator('[data-testid="upstream-state"]').textContent(),
          "connected",
        );
        assert.equal(
          await pathRow.locator("a").getAttribute("href"),
          "./events",
        );
        assert.equal(
          await index.locator('[data-testid="metrics-link"]').getAttribute(
            "href",
          ),
          "./metrics",
        );
      } finally {
        await context?.close().catch(() => {});
        await stopInstance(relay);
        await stopInstance(producer);
        if (profile) rmSync(profile, { recursive: true, force: true });
      }
    },
  );
});
