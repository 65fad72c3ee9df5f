import { Hono } from "hono";
import { upgradeWebSocket, websocket } from "hono/bun";
import { createStreams } from "wsevent";

const streams = createStreams({ paths: ["orders"], upgradeWebSocket });
const app = new Hono();
app.get("/", (c) => c.text("my app"));
// Subscribe at ws://localhost:3000/live/orders (or SSE, same URL over http).
streams.mount(app, "/live");
app.post("/orders", async (c) => {
  const order = await c.req.text();
  // ...store the order, then tell every subscriber:
  return c.json(streams.publish("orders", order), 201);
});

Bun.serve({
  hostname: "127.0.0.1",
  port: Number(process.env.PORT ?? 3000),
  fetch: app.fetch,
  websocket, // hono/bun's handlers, which our upgrades use too
});
