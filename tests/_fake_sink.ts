import type { GapNotice, StreamEvent } from "../src/event.ts";
import type { Format, Sink, Transport } from "../src/hub.ts";

/** What a fake sink saw, in order: event ids, `gap:<lastEventId>`, `close:<code>`. */
export type SinkLog = string[];

/** Options of {@link FakeSink}. */
export interface FakeSinkOptions {
  format?: Format;
  transport?: Transport;
  /** Each send adds the event's size to the queued bytes (a reader that never reads). */
  accumulate?: boolean;
  /** Every send throws. */
  throwOnSend?: boolean;
  /** Every notify throws. */
  throwOnNotify?: boolean;
  /** Every close throws (after recording the call). */
  throwOnClose?: boolean;
}

/** A hub sink that records everything and whose queue the test controls. */
export class FakeSink implements Sink {
  readonly format: Format;
  readonly transport: Transport;
  readonly log: SinkLog = [];
  readonly events: StreamEvent[] = [];
  readonly notices: GapNotice[] = [];
  closed: { code: number; reason: string } | null = null;
  closeCalls = 0;
  queuedBytes = 0;
  #options: FakeSinkOptions;

  constructor(options: FakeSinkOptions = {}) {
    this.format = options.format ?? "raw";
    this.transport = options.transport ?? "websocket";
    this.#options = options;
  }

  /** The ids received, in order. */
  get ids(): string[] {
    return this.events.map((e) => e.id);
  }

  send(event: StreamEvent): number {
    if (this.#options.throwOnSend) throw new Error("send failed on purpose");
    if (this.closed !== null) throw new Error("send after close");
    this.events.push(event);
    this.log.push(event.id);
    if (this.#options.accumulate) this.queuedBytes += event.size;
    return this.queuedBytes;
  }

  queued(): number {
    return this.queuedBytes;
  }

  notify(notice: GapNotice): void {
    if (this.#options.throwOnNotify) {
      throw new Error("notify failed on purpose");
    }
    this.notices.push(notice);
    this.log.push(`gap:${notice.lastEventId}`);
  }

  close(code: number, reason: string): void {
    this.closeCalls++;
    this.closed ??= { code, reason };
    this.log.push(`close:${code}`);
    if (this.#options.throwOnClose) throw new Error("close failed on purpose");
  }
}
