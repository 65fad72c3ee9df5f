import type { EventHolder, StreamEvent } from "./event.ts";

/**
 * A ring of the newest events, bounded by count and by the bytes they hold:
 * the payload and the serialized forms (UTF-8, JSON, SSE) made of it, which
 * grow after the event came in (the events tell the buffer). Private to the
 * hub.
 */
export class EventBuffer implements EventHolder {
  readonly capacity: number;
  readonly maxBytes: number;
  #ring: (StreamEvent | undefined)[];
  #start = 0;
  #length = 0;
  #bytes = 0;

  constructor(capacity: number, maxBytes: number) {
    this.capacity = capacity;
    this.maxBytes = maxBytes;
    this.#ring = new Array(capacity);
  }

  get length(): number {
    return this.#length;
  }

  get bytes(): number {
    return this.#bytes;
  }

  push(event: StreamEvent): void {
    if (this.capacity === 0) return;
    if (this.#length === this.capacity) this.#dropOldest();
    this.#ring[(this.#start + this.#length) % this.capacity] = event;
    this.#length++;
    this.#bytes += event.held;
    event.holdBy(this);
    this.#trim();
  }

  /** A buffered event made a serialized form of `bytes` bytes. */
  grew(bytes: number): void {
    this.#bytes += bytes;
    this.#trim();
  }

  // Keep the newest event even when it alone is over the byte bound.
  #trim(): void {
    while (this.#bytes > this.maxBytes && this.#length > 1) this.#dropOldest();
  }

  newest(): StreamEvent | undefined {
    if (this.#length === 0) return undefined;
    return this.#ring[(this.#start + this.#length - 1) % this.capacity];
  }

  /** @returns the position of `id` counted from the oldest, or -1. */
  indexOf(id: string): number {
    for (let i = this.#length - 1; i >= 0; i--) {
      if (this.#at(i).id === id) return i;
    }
    return -1;
  }

  forEach(callback: (event: StreamEvent) => void, from = 0): void {
    // Copy first: a callback may lead to a push (not today, but cheaply safe).
    const events: StreamEvent[] = [];
    for (let i = from; i < this.#length; i++) events.push(this.#at(i));
    for (const event of events) callback(event);
  }

  #at(i: number): StreamEvent {
    return this.#ring[(this.#start + i) % this.capacity] as StreamEvent;
  }

  #dropOldest(): void {
    const oldest = this.#ring[this.#start] as StreamEvent;
    this.#ring[this.#start] = undefined;
    this.#start = (this.#start + 1) % this.capacity;
    this.#length--;
    oldest.holdBy(undefined);
    this.#bytes -= oldest.held;
  }
}
