/**
 * The demo generator of the original service.
 *
 * @module
 */

import type { Topic } from "./hub.ts";

const LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ";

/**
 * Makes `count` random ASCII letters.
 *
 * @param count How many.
 * @returns The letters.
 */
export function randomLetters(count: number): string {
  const bytes = crypto.getRandomValues(new Uint8Array(count));
  let out = "";
  for (const byte of bytes) out += LETTERS[byte % LETTERS.length];
  return out;
}

/**
 * Formats the n-th demo message exactly as the original did:
 * `<n>: <serve-address>: <10 random letters>\n`.
 *
 * @param n The message number, from 0.
 * @param label The serve address as given on the command line.
 * @returns The message.
 */
export function formatDemoMessage(n: number, label: string): string {
  return `${n}: ${label}: ${randomLetters(10)}\n`;
}

/** Options of {@link startProducer}. */
export interface ProducerOptions {
  /** Period in milliseconds. @default {100} */
  intervalMs?: number;
  /** The serve address shown in each message. */
  label: string;
  /** Called with each message, for verbose logs. */
  onMessage?(message: string): void;
  /**
   * Publishes one message; by default straight into the topic. An instance
   * on an engine appends through it instead.
   */
  publish?(message: string): void;
}

/**
 * Publishes a demo message to `topic` every `intervalMs`.
 *
 * @example Usage
 * ```ts
 * import { createHub, startProducer } from "../mod.ts";
 * const topic = createHub().addTopic("events", "e1");
 * const stop = startProducer(topic, { label: "localhost:8080", intervalMs: 10 });
 * stop();
 * ```
 *
 * @param topic Where to publish.
 * @param options Period and label.
 * @returns A function that stops the generator.
 */
export function startProducer(
  topic: Topic,
  options: ProducerOptions,
): () => void {
  let n = 0;
  const timer = setInterval(() => {
    const message = formatDemoMessage(n++, options.label);
    if (options.publish !== undefined) options.publish(message);
    else topic.publish(message);
    options.onMessage?.(message);
  }, options.intervalMs ?? 100);
  return () => clearInterval(timer);
}
