/**
 * The live view with what issue 15 adds, in Debian's headless Chromium
 * (playwright-core): served over TLS (HTTP/2 where the runtime serves it),
 * at a topic created on demand below `rooms/*`, with a JWT that expires
 * while the page is open; a fresh token resumes with nothing lost.
 *
 * @module
 */

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, test } from "node:test";
import { sign } from "hono/jwt";
import type { BrowserContext } from "playwright-core";
import { RUNTIME, type Service, startService } from "./_helpers.ts";

const SECRET = "a-secret-of-at-least-thirty-two-bytes";
const WAIT_MS = 20_000;

function selfSigned(dir: string): void {
  execFileSync("openssl", [
    "req",
    "-x509",
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    join(dir, "key.pem"),
    "-out",
    join(dir, "cert.pem"),
    "-days",
    "2",
    "-subj",
    "/CN=wsevent browser test",
    "-addext",
    "subjectAltName=IP:127.0.0.1",
  ], { stdio: "ignore" });
}

const token = (seconds: number) =>
  sign({
    wsevent: { subscribe: ["rooms/*"], publish: ["rooms/*"] },
    exp: Math.floor(Date.now() / 1000) + seconds,
  }, SECRET);

describe("browser live view with TLS, a pattern topic and an expiring JWT", () => {
  test(
    "goes live, publishes, stops at expiry and resumes with a fresh token",
    { timeout: 120_000 },
    async () => {
      const dir = mkdtempSync(join(tmpdir(), "wsevent-browser-tls-"));
      let service: Service | undefined;
      let context: BrowserContext | undefined;
      try {
        selfSigned(dir);
        service = await startService([
          "--serve-address",
          "127.0.0.1:0",
          "--no-produce",
          "--serve-path",
          "rooms/*",
          "--tls-cert",
          join(dir, "cert.pem"),
          "--tls-key",
          join(dir, "key.pem"),
          "--jwt-key",
          SECRET,
          "--jwt-leeway",
          "0",
        ]);
        const playwright = await import("playwright-core");
        const profile = join(dir, "profile");
        context = await playwright.chromium.launchPersistentContext(profile, {
          executablePath: "/usr/bin/chromium",
          headless: true,
          // The certificate is the test's own; trust is checked in tls_test.
          ignoreHTTPSErrors: true,
          args: [
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
          ],
        });
        const page = await context.newPage();
        const errors: string[] = [];
        page.on("pageerror", (error) => errors.push(error.message));
        const first = await token(4);
        const base = `https://127.0.0.1:${service.port}`;
        const response = await page.goto(`${base}/rooms/7?token=${first}`);
        assert.equal(response?.status(), 200);
        await page.waitForSelector('#state[data-state="live"]', {
          timeout: WAIT_MS,
        });
        const protocol = await page.evaluate(() =>
          (performance.getEntriesByType("navigation")[0] as
            & PerformanceEntry
            & { nextHopProtocol: string }).nextHopProtocol
        );
        assert.equal(protocol, RUNTIME === "bun" ? "http/1.1" : "h2");

        // Publish from the page (Bearer token): the row appears.
        await page.fill("#publish-data", "hello over tls");
        await page.click("#publish-button");
        await page.waitForSelector('#publish-result[data-status="ok"]', {
          timeout: WAIT_MS,
        });
        const firstId = await page.getAttribute("#publish-result", "data-id");
        await page.locator(`#events li[data-id="${firstId}"]`).waitFor({
          timeout: WAIT_MS,
        });

        // The token expires: the server ends the stream, the page says so.
        await page.waitForSelector('#state[data-state="expired"]', {
          timeout: WAIT_MS,
        });
        const fresh = await token(600);
        const missedId = await page.evaluate(async ([url, bearer]) => {
          const answer = await fetch(url, {
            method: "POST",
            body: "published while expired",
            headers: { Authorization: `Bearer ${bearer}` },
          });
          return (await answer.json()).id as string;
        }, [`${base}/rooms/7`, fresh]);

        // A fresh token resumes after the last id: nothing lost, no gap.
        await page.fill("#token", fresh);
        await page.click("#token-apply");
        await page.waitForSelector('#state[data-state="live"]', {
          timeout: WAIT_MS,
        });
        const missed = page.locator(`#events li[data-id="${missedId}"]`);
        await missed.waitFor({ timeout: WAIT_MS });
        assert.equal(
          await missed.locator(".data").textContent(),
          "published while expired",
        );
        assert.equal(await page.textContent("#gaps"), "0");
        const ids = await page.$$eval(
          '#events li[data-kind="message"]',
          (rows) => rows.map((row) => (row as HTMLElement).dataset.id),
        );
        assert.deepEqual(ids, [missedId, firstId]);
        assert.deepEqual(errors, []);
      } finally {
        await context?.close();
        await service?.stop();
        rmSync(dir, { recursive: true, force: true });
      }
    },
  );
});
