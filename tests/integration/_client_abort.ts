/**
 * A child program for tests/integration/client_test.ts: subscribes with the
 * client, stops in the way asked, prints "stopped", and then must exit by
 * itself (no process.exit): a timer or socket left behind keeps it alive.
 *
 *   <runtime> _client_abort.ts URL abort|break|backoff
 *
 * @module
 */

import process from "node:process";
import { publish, subscribe } from "../../src/client.ts";

const [url, mode] = process.argv.slice(-2);
const controller = new AbortController();
let received = 0;
const events = subscribe(url, {
  signal: controller.signal,
  onState(_state, detail) {
    // "backoff": the server is down; abort while a retry timer of at
    // least 2 s waits (the fifth retry), so that a timer left behind
    // would keep this program alive for that long.
    const delay = Number(/retrying in (\d+) ms/.exec(detail)?.[1] ?? 0);
    if (mode === "backoff" && delay >= 2000 && !controller.signal.aborted) {
      console.log(`aborting with a retry due in ${delay} ms`);
      controller.abort();
    }
  },
});
if (mode !== "backoff") {
  const http = url.replace(/^ws/, "http");
  await publish(http, "one");
}
for await (const event of events) {
  received++;
  console.log(`event ${event.id}`);
  if (received === 3) {
    if (mode === "break") break;
    controller.abort();
  }
}
console.log(`stopped after ${received} events`);
