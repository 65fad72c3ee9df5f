// The original's Docker-style deployment: configured by environment only.
import assert from "node:assert/strict";
import { join } from "node:path";
import { describe, test } from "node:test";
import {
  connectWs,
  publish,
  ROOT,
  runtimeCommand,
  startChild,
  startService,
  waitFor,
} from "./_helpers.ts";

describe("configured by the original's environment variables", {
  timeout: 60_000,
}, () => {
  test("a hub and a relay started with SERVE_ENDPOINT, CONSUME_ENDPOINT and NO_PRODUCE only", async () => {
    const hub = await startService([], {
      SERVE_ENDPOINT: "127.0.0.1:0/events",
      NO_PRODUCE: "1",
    });
    try {
      assert.match(hub.stdout(), /^Starting as publish\/subscribe hub\.\.\.$/m);
      assert.doesNotMatch(hub.stdout(), /producer/);
      const relay = await startService([], {
        CONSUME_ENDPOINT: `127.0.0.1:${hub.port}/events`,
        SERVE_ENDPOINT: "127.0.0.1:0/proxy-events",
        NO_PRODUCE: "true",
      });
      try {
        assert.match(relay.stdout(), /^Starting as proxy service\.\.\.$/m);
        assert.match(
          relay.stdout(),
          new RegExp(`Consuming from: ws://127\\.0\\.0\\.1:${hub.port}/events`),
        );
        assert.match(relay.url, /\/proxy-events$/);
        const client = connectWs(relay.url);
        try {
          await client.opened;
          // The relay may still be connecting upstream: publish until it shows.
          const deadline = Date.now() + 15_000;
          while (client.messages.length === 0 && Date.now() < deadline) {
            await publish(hub.http, "events", "through");
            await new Promise((r) => setTimeout(r, 100));
          }
          await waitFor(() => client.messages.length > 0, 1_000, "relayed");
          assert.ok(client.messages.every((m) => m === "through"));
        } finally {
          client.close();
        }
      } finally {
        await relay.stop();
      }
    } finally {
      await hub.stop();
    }
  });

  test("a bad SERVE_ENDPOINT: one clear line naming it, exit 2", async () => {
    const [command, base] = runtimeCommand(join(ROOT, "cli.ts"));
    const child = startChild(command, base, { SERVE_ENDPOINT: "nonsense/x" });
    const { code } = await child.exited;
    assert.equal(code, 2);
    assert.match(
      child.stderr(),
      /^error: Cannot parse environment variable SERVE_ENDPOINT: .*"nonsense\/x"\n/,
    );
    assert.doesNotMatch(child.stderr(), /\n\s+at /);
  });
});
