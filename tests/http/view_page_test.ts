import { describe, test } from "node:test";
import assert from "node:assert/strict";
import {
  CLIENT_SCRIPT,
  escapeHtml,
  INDEX_PAGE_STYLE,
  type IndexInfo,
  pageContentSecurityPolicy,
  renderIndexPage,
  renderStreamPage,
  VIEW_MAX_ROWS,
  VIEW_PAGE_SCRIPT,
  VIEW_PAGE_STYLE,
} from "../../src/http/view_page.ts";
import { type FakePage, runPage } from "./_fake_dom.ts";

const HOSTILE = `"><script>alert(1)</script><img src=x onerror=alert(2)>`;

function count(text: string, part: string): number {
  return text.split(part).length - 1;
}

function configOf(html: string): Record<string, unknown> {
  const match =
    /<script type="application\/json" id="wsevent-config">(.*?)<\/script>/s
      .exec(html);
  assert.ok(match, "the page has a JSON config block");
  return JSON.parse(match[1]);
}

describe("renderStreamPage()", () => {
  test("renderStreamPage() escapes a hostile path and title", () => {
    const html = renderStreamPage({
      path: HOSTILE,
      title: HOSTILE,
      publishAllowed: true,
      tokenRequired: true,
    });
    assert.ok(!html.includes("<script>alert"), "no injected script tag");
    assert.ok(!html.includes("<img src=x"), "no injected img tag");
    assert.ok(html.includes("&lt;script&gt;alert(1)&lt;/script&gt;"));
    assert.equal(
      count(html, "<script"),
      3,
      "only the config block, the client module and the page script",
    );
    assert.equal(count(html, "</script>"), 3);
    assert.equal(
      configOf(html).path,
      "/" + HOSTILE,
      "the config block carries the path unchanged",
    );
  });

  test("renderStreamPage() keeps U+2028 and a closing script tag out of the config block", () => {
    const path = "a\u2028b</script><!--";
    const html = renderStreamPage({
      path,
      publishAllowed: false,
      tokenRequired: false,
    });
    const block = /id="wsevent-config">(.*?)<\/script>/s.exec(html)![1];
    assert.ok(!block.includes("<") && !block.includes("\u2028"));
    assert.equal(configOf(html).path, "/" + path);
  });

  test("renderStreamPage() bounds the list at VIEW_MAX_ROWS rows", () => {
    const html = renderStreamPage({
      path: "events",
      publishAllowed: false,
      tokenRequired: false,
    });
    assert.equal(VIEW_MAX_ROWS, 500);
    assert.ok(html.includes(`data-max-rows="${VIEW_MAX_ROWS}"`));
    assert.equal(configOf(html).maxRows, VIEW_MAX_ROWS);
  });

  test("renderStreamPage() has no publish box unless publishing is allowed", () => {
    const closed = renderStreamPage({
      path: "events",
      publishAllowed: false,
      tokenRequired: false,
    });
    for (
      const id of [
        "publish-form",
        "publish-data",
        "publish-button",
        "publish-result",
      ]
    ) {
      assert.ok(!closed.includes(`id="${id}"`), `no #${id}`);
    }
    const open = renderStreamPage({
      path: "events",
      publishAllowed: true,
      tokenRequired: false,
    });
    for (const id of ["publish-data", "publish-button", "publish-result"]) {
      assert.ok(open.includes(`id="${id}" data-testid="${id}"`), `#${id}`);
    }
    assert.ok(
      open.includes('<label for="publish-data">'),
      "the textarea has a label",
    );
  });

  test("renderStreamPage() shows the token field only when a token is required", () => {
    assert.ok(
      !renderStreamPage({
        path: "e",
        publishAllowed: true,
        tokenRequired: false,
      }).includes('id="token"'),
    );
    const html = renderStreamPage({
      path: "e",
      publishAllowed: false,
      tokenRequired: true,
    });
    assert.match(html, /<label>Token <input id="token"[^>]*type="password"/);
  });

  test("renderStreamPage() gives the state, last id, rate and list test ids and a polite live region", () => {
    const html = renderStreamPage({
      path: "events",
      publishAllowed: false,
      tokenRequired: false,
    });
    for (const id of ["state", "last-id", "rate", "events", "pause", "clear"]) {
      assert.ok(html.includes(`id="${id}" data-testid="${id}"`), `#${id}`);
    }
    assert.match(
      html,
      /role="status" aria-live="polite"[^>]*>\s*<span class="sr-only">Connection:/,
    );
    assert.ok(
      html.includes(
        '<meta name="viewport" content="width=device-width, initial-scale=1">',
      ),
    );
    assert.ok(html.includes('<html lang="en">'));
  });

  test("renderStreamPage() loads nothing from elsewhere", () => {
    const html = renderStreamPage({
      path: "events",
      publishAllowed: true,
      tokenRequired: true,
    });
    assert.ok(
      !/\s(src|href)="(https?:)?\/\//.test(html),
      "no external src or href",
    );
    assert.ok(!/@import|url\(/.test(VIEW_PAGE_STYLE + INDEX_PAGE_STYLE));
  });

  test("renderStreamPage() puts an escaped nonce on the script and style tags", () => {
    const html = renderStreamPage({
      path: "e",
      publishAllowed: false,
      tokenRequired: false,
      nonce: 'n"1',
    });
    assert.ok(html.includes('<style nonce="n&quot;1">'));
    assert.ok(html.includes('<script nonce="n&quot;1">'));
    const plain = renderStreamPage({
      path: "e",
      publishAllowed: false,
      tokenRequired: false,
    });
    assert.ok(!plain.includes("nonce="));
    assert.equal(count(html, '<script nonce="n&quot;1">'), 2);
    assert.ok(
      plain.includes(
        `<script>${CLIENT_SCRIPT}</script>\n<script>${VIEW_PAGE_SCRIPT}</script>`,
      ),
      "the client module, then the page script, each the exported constant",
    );
  });

  test("renderStreamPage() links back to the index relative to the path depth", () => {
    assert.ok(
      renderStreamPage({
        path: "events",
        publishAllowed: false,
        tokenRequired: false,
      }).includes('href="./"'),
    );
    assert.ok(
      renderStreamPage({
        path: "/a/b/c",
        publishAllowed: false,
        tokenRequired: false,
      }).includes('href="../../"'),
    );
  });
});

describe("VIEW_PAGE_SCRIPT", () => {
  test("VIEW_PAGE_SCRIPT parses and never writes HTML", () => {
    assert.doesNotThrow(() => new Function(VIEW_PAGE_SCRIPT));
    assert.ok(
      !/innerHTML|outerHTML|insertAdjacentHTML|document\.write/.test(
        VIEW_PAGE_SCRIPT,
      ),
    );
    assert.ok(!VIEW_PAGE_SCRIPT.includes("</script"));
  });

  function livePage(
    options: { publishAllowed?: boolean; tokenRequired?: boolean } = {},
    search = "",
  ): FakePage {
    return runPage(
      renderStreamPage({
        path: "events",
        publishAllowed: options.publishAllowed ?? false,
        tokenRequired: options.tokenRequired ?? false,
      }),
      VIEW_PAGE_SCRIPT,
      search,
    );
  }

  test("VIEW_PAGE_SCRIPT subscribes with the client, goes live, lists newest first and keeps at most VIEW_MAX_ROWS rows", async () => {
    const page = livePage();
    await page.settle();
    assert.equal(page.sources.length, 1);
    assert.equal(page.sources[0].url, "http://127.0.0.1:1/events");
    assert.equal(page.sources[0].headers.Accept, "text/event-stream");
    assert.equal(page.byId("state").dataset.state, "connecting");
    page.sources[0].open();
    await page.settle();
    assert.equal(page.byId("state").dataset.state, "live");
    assert.equal(page.byId("state").textContent, "Live");
    // Two batches: the second must push the oldest rows out of the list.
    for (let seq = 0; seq < VIEW_MAX_ROWS + 100; seq++) {
      page.sources[0].message(`e1-${seq}`, `<b>${seq}</b>\n`);
      if (seq === 300) {
        await page.settle();
        page.flush();
      }
    }
    await page.settle();
    page.flush();
    const rows = page.byId("events").children;
    assert.equal(rows.length, VIEW_MAX_ROWS);
    assert.equal(rows[0].dataset.id, `e1-${VIEW_MAX_ROWS + 99}`);
    assert.equal(rows.at(-1)!.dataset.id, "e1-100");
    assert.equal(rows[0].dataset.testid, "event-row");
    assert.equal(
      rows[0].children[1].textContent,
      `<b>${VIEW_MAX_ROWS + 99}</b>`,
      "data as text, trailing newline cut",
    );
    assert.equal(page.byId("last-id").textContent, `e1-${VIEW_MAX_ROWS + 99}`);
    page.tick();
    assert.equal(
      page.byId("received").textContent,
      String(VIEW_MAX_ROWS + 100),
    );
  });

  test("VIEW_PAGE_SCRIPT shows a dropped stream, and the client resumes after the last id; a refusal asks for the token", async () => {
    const page = livePage({ tokenRequired: true }, "?token=s3cret%26x");
    await page.settle();
    page.sources[0].open();
    page.sources[0].message("e1-7", "x");
    await page.settle();
    page.sources[0].end();
    await page.settle();
    assert.equal(page.byId("state").dataset.state, "reconnecting");
    assert.match(
      page.byId("state-detail").textContent,
      /ended the stream; retrying in \d+ ms/,
    );
    assert.doesNotMatch(page.byId("state-detail").textContent, /token/);
    assert.equal(page.sources.length, 1, "no retry before the backoff delay");
    page.flush(250);
    await page.settle();
    assert.equal(page.sources.length, 2, "the first retry comes within 250 ms");
    assert.equal(page.sources[1].headers["Last-Event-ID"], "e1-7");
    assert.equal(page.sources[1].headers.Authorization, "Bearer s3cret&x");
    page.sources[1].refuse(401);
    await page.settle();
    assert.equal(page.byId("state").dataset.state, "reconnecting");
    assert.match(page.byId("state-detail").textContent, /answered 401/);
    assert.match(page.byId("state-detail").textContent, /Check the token/);
    page.flush(500);
    await page.settle();
    assert.equal(page.sources.length, 3);
    page.sources[2].open();
    await page.settle();
    assert.equal(page.byId("state").dataset.state, "live");
  });

  test("VIEW_PAGE_SCRIPT takes a token from the page address and applies a new one from the token field", async () => {
    const page = livePage({ tokenRequired: true }, "?token=abc");
    await page.settle();
    assert.equal(page.sources[0].headers.Authorization, "Bearer abc");
    assert.equal(page.sources[0].url, "http://127.0.0.1:1/events");
    assert.equal(page.byId("token").value, "abc");
    page.sources[0].open();
    page.sources[0].message("e1-3", "x");
    await page.settle();
    page.byId("token").value = "new";
    page.byId("token-form").dispatch("submit");
    await page.settle();
    assert.equal(page.sources[0].aborted, true, "the old stream is closed");
    assert.equal(page.sources.length, 2);
    assert.equal(page.sources[1].headers.Authorization, "Bearer new");
    assert.equal(page.sources[1].headers["Last-Event-ID"], "e1-3");
  });

  test("VIEW_PAGE_SCRIPT shows a gap in the state and in the list", async () => {
    const page = livePage();
    await page.settle();
    page.sources[0].open();
    page.sources[0].event(
      "gap",
      JSON.stringify({ lastEventId: "e0-41", reason: "epoch changed" }),
    );
    page.sources[0].message("e1-0", "after the gap");
    await page.settle();
    assert.equal(page.byId("state").dataset.state, "gap");
    assert.match(page.byId("state-detail").textContent, /e0-41.*epoch changed/);
    assert.equal(page.byId("gaps").textContent, "1");
    page.flush();
    const rows = page.byId("events").children;
    assert.equal(rows[1].dataset.kind, "gap");
    assert.match(rows[1].textContent, /Gap: events after e0-41/);
    assert.equal(
      rows[0].dataset.id,
      "e1-0",
      "the gap is listed before the event after it",
    );
    page.flush(10_000);
    assert.equal(
      page.byId("state").dataset.state,
      "live",
      "the gap state ends after a while",
    );
  });

  test("VIEW_PAGE_SCRIPT stops at event: expired and resumes with a fresh token", async () => {
    const page = livePage({ tokenRequired: true }, "?token=old");
    await page.settle();
    page.sources[0].open();
    page.sources[0].message("e1-4", "hello");
    page.sources[0].event("expired", '{"reason":"token expired"}');
    page.sources[0].end();
    await page.settle();
    assert.equal(page.byId("state").dataset.state, "expired");
    assert.match(page.byId("state-detail").textContent, /fresh token/);
    page.flush(60_000);
    await page.settle();
    assert.equal(page.sources.length, 1, "no reconnect with the expired token");
    page.byId("token").value = "fresh";
    page.byId("token-form").dispatch("submit");
    await page.settle();
    assert.equal(page.sources.length, 2);
    assert.equal(page.sources[1].headers.Authorization, "Bearer fresh");
    assert.equal(page.sources[1].headers["Last-Event-ID"], "e1-4");
  });

  test("VIEW_PAGE_SCRIPT pause keeps the connection, stops rendering and counts arrivals", async () => {
    const page = livePage();
    await page.settle();
    page.sources[0].open();
    await page.settle();
    page.byId("pause").click();
    assert.equal(page.byId("pause").attributes.get("aria-pressed"), "true");
    for (let seq = 0; seq < VIEW_MAX_ROWS + 3; seq++) {
      page.sources[0].message(`e1-${seq}`, "d");
    }
    await page.settle();
    page.flush();
    page.tick();
    assert.equal(page.byId("events").children.length, 0);
    assert.equal(page.byId("held").textContent, String(VIEW_MAX_ROWS + 3));
    assert.equal(page.sources.length, 1);
    page.byId("pause").click();
    page.flush();
    const rows = page.byId("events").children;
    assert.equal(rows.length, VIEW_MAX_ROWS, "still bounded");
    assert.equal(rows[0].dataset.id, `e1-${VIEW_MAX_ROWS + 2}`);
    page.byId("clear").click();
    assert.equal(page.byId("events").children.length, 0);
  });

  test("VIEW_PAGE_SCRIPT shows a binary event by its size", async () => {
    const page = livePage();
    await page.settle();
    page.sources[0].open();
    page.sources[0].event("binary", "AAEC/w==");
    await page.settle();
    page.flush();
    assert.equal(
      page.byId("events").children[0].children[1].textContent,
      "[binary, 4 bytes]",
    );
  });

  test("VIEW_PAGE_SCRIPT publishes with the client, with a Bearer token, and shows the id or the error", async () => {
    const page = livePage({ publishAllowed: true, tokenRequired: true });
    await page.settle();
    page.sources[0].open();
    await page.settle();
    page.byId("token").value = "tok";
    page.byId("publish-data").value = "hello";
    page.respond(202, '{"id":"e1-9"}');
    await Promise.all(page.byId("publish-form").dispatch("submit"));
    assert.equal(page.requests[0].url, "http://127.0.0.1:1/events");
    assert.equal(page.requests[0].init.method, "POST");
    assert.equal(page.requests[0].init.body, "hello");
    assert.equal(page.requests[0].init.headers.Authorization, "Bearer tok");
    assert.equal(page.byId("publish-result").dataset.status, "ok");
    assert.match(page.byId("publish-result").textContent, /e1-9/);
    page.sources[0].message("e1-9", "hello");
    await page.settle();
    page.flush();
    assert.equal(page.byId("events").children[0].dataset.mine, "true");
    page.byId("publish-data").value = "x".repeat(10);
    page.respond(413, '{"error":"body too large","code":"payload_too_large"}');
    await Promise.all(page.byId("publish-form").dispatch("submit"));
    assert.equal(page.byId("publish-result").dataset.status, "error");
    assert.equal(
      page.byId("publish-result").textContent,
      "Error 413 payload_too_large: body too large",
    );
  });
});

describe("renderIndexPage()", () => {
  const info: IndexInfo = {
    version: "1.2.3",
    paths: [
      {
        path: "events",
        subscribers: { websocket: 2, sse: 3 },
        buffered: 10,
        capacity: 1000,
        bufferedBytes: 2048,
      },
      {
        path: "proxy events/<x>",
        subscribers: { websocket: 0, sse: 1 },
        buffered: 0,
        capacity: 50,
        bufferedBytes: 0,
        upstream: {
          url: "ws://127.0.0.1:8080/events?<b>",
          connected: false,
          reconnects: 4,
        },
      },
    ],
  };

  test("renderIndexPage() lists each path with subscribers, buffer and links", () => {
    const html = renderIndexPage(info);
    assert.equal(count(html, 'data-testid="path-row"'), 2);
    assert.ok(html.includes('<a href="./events">/events</a>'));
    assert.ok(html.includes("5 (WebSocket 2, SSE 3)"));
    assert.ok(html.includes("10 / 1000 events, 2.0 KiB"));
    assert.ok(html.includes('href="./metrics"'));
    assert.ok(html.includes("none (origin)"));
  });

  test("renderIndexPage() shows a relay's upstream and escapes every string", () => {
    const html = renderIndexPage(info);
    assert.ok(
      html.includes(
        '<a href="./proxy%20events/%3Cx%3E">/proxy events/&lt;x&gt;</a>',
      ),
    );
    assert.ok(
      html.includes("<code>ws://127.0.0.1:8080/events?&lt;b&gt;</code>"),
    );
    assert.match(
      html,
      /data-testid="upstream-state">disconnected<\/span>, 4 reconnects/,
    );
    assert.ok(!html.includes("<x>") && !html.includes("<b>"));
    const hostile = renderIndexPage({ version: HOSTILE, paths: [] });
    assert.ok(!hostile.includes("<script>alert"));
    assert.ok(hostile.includes('data-testid="no-paths"'));
    assert.ok(
      !hostile.includes("<script"),
      "the index page has no script at all",
    );
  });

  test("renderIndexPage() puts the nonce on its style tag", () => {
    assert.ok(
      renderIndexPage(info, { nonce: "abc" }).includes('<style nonce="abc">'),
    );
  });
});

describe("pageContentSecurityPolicy() and escapeHtml()", () => {
  test("pageContentSecurityPolicy() allows the nonce and the same origin only", () => {
    const csp = pageContentSecurityPolicy("abc");
    assert.match(csp, /default-src 'none'/);
    assert.match(csp, /script-src 'nonce-abc'/);
    assert.match(csp, /style-src 'nonce-abc'/);
    assert.match(csp, /connect-src 'self'/);
  });

  test("escapeHtml() escapes the five HTML characters", () => {
    assert.equal(
      escapeHtml(`<a href="x" title='y'>&</a>`),
      "&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;",
    );
  });
});
