import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  buildClient,
  clientScriptModule,
} from "../scripts/build/client_script.ts";
import { CLIENT_SCRIPT } from "../src/http/_client_script.ts";

/**
 * The budget for the whole client, minified + gzip: it must stay small.
 * 6 KiB since `publisher()` came (about 0.6 KB of it); a bundle of only
 * `subscribe` and `publish` is what it was (4,794 bytes), bundlers drop
 * the publisher when it is not imported.
 */
const GZIP_BUDGET_BYTES = 6144;

describe("the built client", () => {
  test("CLIENT_SCRIPT is src/client.ts as built now (run scripts/build/client_script.ts when this fails)", async () => {
    const built = await buildClient();
    assert.equal(
      clientScriptModule(CLIENT_SCRIPT),
      clientScriptModule(built.script),
    );
    console.log(
      `client: ${built.minBytes} bytes minified, ${built.gzipBytes} bytes minified + gzip`,
    );
    assert.ok(
      built.gzipBytes < GZIP_BUDGET_BYTES,
      `${built.gzipBytes} bytes gzipped, budget ${GZIP_BUDGET_BYTES}`,
    );
    assert.match(built.module, /export\s*\{/);
    assert.ok(!CLIENT_SCRIPT.includes("</script"), "safe to inline");
  });

  test("CLIENT_SCRIPT defines wsevent.subscribe and wsevent.publish, using no import and no runtime global", () => {
    const scope: Record<string, unknown> = {};
    new Function("scope", `${CLIENT_SCRIPT}; scope.wsevent = wsevent;`)(scope);
    const client = scope.wsevent as Record<string, unknown>;
    assert.equal(typeof client.subscribe, "function");
    assert.equal(typeof client.publish, "function");
    assert.equal(typeof client.PublishError, "function");
    assert.doesNotMatch(CLIENT_SCRIPT, /\b(Deno|Bun|process|require)\b[.(]/);
    assert.doesNotMatch(CLIENT_SCRIPT, /\bimport\b/);
  });
});
