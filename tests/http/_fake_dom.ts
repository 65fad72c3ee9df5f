/**
 * A small fake of the browser APIs the live view script uses (elements,
 * fetch with SSE streams, timers), enough to run `VIEW_PAGE_SCRIPT` in a unit
 * test without a browser. Elements have no `innerHTML`: the script must use
 * `textContent`.
 *
 * @module
 */

import { formatSseEvent } from "../../src/event.ts";
import { CLIENT_SCRIPT } from "../../src/http/_client_script.ts";

type Listener = (event: unknown) => unknown;

/** A DOM element with the few members the script touches. */
export class FakeElement {
  readonly tagName: string;
  children: FakeElement[] = [];
  parent: FakeElement | null = null;
  dataset: Record<string, string> = {};
  attributes: Map<string, string> = new Map();
  value = "";
  disabled = false;
  dateTime = "";
  #text = "";
  #classes: Set<string> = new Set();
  #listeners: Map<string, Listener[]> = new Map();

  constructor(tagName: string) {
    this.tagName = tagName;
  }

  get textContent(): string {
    return this.children.length > 0
      ? this.children.map((c) => c.textContent).join("")
      : this.#text;
  }
  set textContent(text: string) {
    this.children = [];
    this.#text = text;
  }
  get className(): string {
    return [...this.#classes].join(" ");
  }
  set className(names: string) {
    this.#classes = new Set(names.split(/\s+/).filter(Boolean));
  }
  get classList(): {
    add(n: string): void;
    toggle(n: string, on: boolean): void;
    contains(n: string): boolean;
  } {
    const classes = this.#classes;
    return {
      add: (n) => classes.add(n),
      toggle: (n, on) => on ? classes.add(n) : classes.delete(n),
      contains: (n) => classes.has(n),
    };
  }
  get childElementCount(): number {
    return this.children.length;
  }
  get lastElementChild(): FakeElement | null {
    return this.children.at(-1) ?? null;
  }
  #adopt(nodes: FakeElement[]): FakeElement[] {
    const flat = nodes.flatMap((n) =>
      n.tagName === "#fragment" ? n.children.splice(0) : [n]
    );
    for (const n of flat) n.parent = this;
    return flat;
  }
  append(...nodes: FakeElement[]): void {
    this.children.push(...this.#adopt(nodes));
  }
  prepend(...nodes: FakeElement[]): void {
    this.children.unshift(...this.#adopt(nodes));
  }
  remove(): void {
    if (this.parent) {
      this.parent.children.splice(this.parent.children.indexOf(this), 1);
    }
    this.parent = null;
  }
  setAttribute(name: string, value: string): void {
    this.attributes.set(name, value);
  }
  querySelectorAll(selector: string): FakeElement[] {
    if (selector !== "li[data-id]") {
      throw new Error(`Fake cannot select "${selector}"`);
    }
    return this.children.filter((c) =>
      c.tagName === "li" && c.dataset.id !== undefined
    );
  }
  addEventListener(type: string, listener: Listener): void {
    this.#listeners.set(type, [...(this.#listeners.get(type) ?? []), listener]);
  }
  /** Calls the listeners of `type` and returns what they returned (promises for async ones). */
  dispatch(type: string, event: Record<string, unknown> = {}): unknown[] {
    const full = { preventDefault() {}, ...event };
    return (this.#listeners.get(type) ?? []).map((l) => l(full));
  }
  click(): unknown[] {
    return this.dispatch("click");
  }
  requestSubmit(): unknown[] {
    return this.dispatch("submit");
  }
}

/**
 * A fake SSE response the test drives by hand: the client module's fetch
 * for `Accept: text/event-stream` waits until the test opens or refuses
 * it; then the test writes events into a real ReadableStream.
 */
export class FakeStream {
  readonly url: string;
  readonly headers: Record<string, string>;
  /** True once the client aborted the request or cancelled the body. */
  aborted = false;
  #answer: (response: Response) => void;
  #controller?: ReadableStreamDefaultController<Uint8Array>;
  constructor(
    url: string,
    headers: Record<string, string>,
    answer: (response: Response) => void,
  ) {
    this.url = url;
    this.headers = headers;
    this.#answer = answer;
  }
  /** Answers 200 with an open event stream. */
  open(): void {
    const body = new ReadableStream<Uint8Array>({
      start: (controller) => (this.#controller = controller),
      cancel: () => {
        this.aborted = true;
      },
    });
    this.#answer(
      new Response(body, {
        status: 200,
        headers: { "Content-Type": "text/event-stream" },
      }),
    );
  }
  /** Answers with an error status. */
  refuse(status: number): void {
    this.#answer(
      new Response('{"error":"refused","code":"unauthorized"}', { status }),
    );
  }
  /** Sends one event of the default type. */
  message(id: string, data: string): void {
    this.#write(formatSseEvent(id, data));
  }
  /** Sends one event of a named type (gap, expired). */
  event(type: string, data: string): void {
    this.#write(formatSseEvent(null, data, type));
  }
  /** Ends the stream, as a server that stops. */
  end(): void {
    this.#controller?.close();
  }
  #write(text: string): void {
    this.#controller?.enqueue(new TextEncoder().encode(text));
  }
}

/** A page run by the fake: its elements, event streams, timers and requests. */
export interface FakePage {
  byId(id: string): FakeElement;
  has(id: string): boolean;
  /** Every SSE request the client made, in order. */
  sources: FakeStream[];
  /** Lets promises and stream reads run (real macrotasks). */
  settle(): Promise<void>;
  /** Moves the clock `ms` on and runs pending animation frames and the timeouts due by then (not the interval). */
  flush(ms?: number): void;
  /** Runs the once-a-second interval (rate and counters). */
  tick(): void;
  requests: Array<
    {
      url: string;
      init: { method: string; headers: Record<string, string>; body: string };
    }
  >;
  /** The next fetch answer. */
  respond(status: number, body: string): void;
  body: FakeElement;
}

/**
 * Builds fake elements for every `id="..."` in `html`, fills the JSON config
 * element, and runs the client module (`CLIENT_SCRIPT`, as the page loads
 * it first) and then `script` against them, as if loaded at `/events` +
 * `search`. The client's timers are the fake's; its streams are FakeStreams.
 */
export function runPage(html: string, script: string, search = ""): FakePage {
  const elements = new Map<string, FakeElement>();
  for (const [, id] of html.matchAll(/\sid="([^"]+)"/g)) {
    elements.set(id, new FakeElement("el"));
  }
  const config =
    /<script type="application\/json" id="wsevent-config">(.*?)<\/script>/s
      .exec(html);
  if (config) elements.get("wsevent-config")!.textContent = config[1];
  const sources: FakeStream[] = [];
  let timers = new Map<number, { fn: () => void; ms: number }>();
  let nextTimer = 1;
  const addTimer = (fn: () => void, ms = 0): number => {
    timers.set(nextTimer, { fn, ms });
    return nextTimer++;
  };
  let interval: (() => void) | null = null;
  const requests: FakePage["requests"] = [];
  let answer = { status: 202, body: '{"id":"x-0"}' };
  const body = new FakeElement("body");
  let offset = 0;
  const ShiftedDate = class extends Date {
    constructor(value?: number) {
      super(value ?? Date.now() + offset);
    }
    static override now(): number {
      return Date.now() + offset;
    }
  };
  const document = {
    hidden: false,
    body,
    getElementById: (id: string) => elements.get(id) ?? null,
    createElement: (tag: string) => new FakeElement(tag),
    createDocumentFragment: () => new FakeElement("#fragment"),
    addEventListener: () => {},
  };
  const fetch = (
    url: string,
    init: FakePage["requests"][number]["init"] & { signal?: AbortSignal },
  ) => {
    if (init.headers?.Accept === "text/event-stream") {
      return new Promise<Response>((resolve, reject) => {
        const stream = new FakeStream(url, init.headers, resolve);
        sources.push(stream);
        init.signal?.addEventListener("abort", () => {
          stream.aborted = true;
          reject(new DOMException("The request was aborted", "AbortError"));
        });
      });
    }
    requests.push({ url, init });
    const { status, body } = answer;
    return Promise.resolve({
      ok: status >= 200 && status < 300,
      status,
      text: () => Promise.resolve(body),
    });
  };
  const globals = {
    document,
    location: { pathname: "/events", origin: "http://127.0.0.1:1", search },
    history: { replaceState: () => {} },
    requestAnimationFrame: (fn: () => void) => addTimer(fn),
    setTimeout: addTimer,
    clearTimeout: (id: number) => timers.delete(id),
    setInterval: (fn: () => void) => (interval = fn),
    performance: { now: () => Date.now() + offset },
    Date: ShiftedDate,
    fetch,
  };
  new Function(...Object.keys(globals), `${CLIENT_SCRIPT};\n${script}`)(
    ...Object.values(globals),
  );
  return {
    byId(id) {
      const el = elements.get(id);
      if (!el) throw new Error(`No element with id "${id}"`);
      return el;
    },
    has: (id) => elements.has(id),
    sources,
    async settle() {
      for (let i = 0; i < 10; i++) await new Promise((r) => setTimeout(r, 0));
    },
    flush(ms = 0) {
      offset += ms;
      const all = timers;
      timers = new Map();
      for (const [id, timer] of all) {
        if (timer.ms <= ms) timer.fn();
        else timers.set(id, timer);
      }
    },
    tick: () => interval?.(),
    requests,
    respond(status, text) {
      answer = { status, body: text };
    },
    body,
  };
}
