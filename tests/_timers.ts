/** A counter of the timers a test left pending. */

/**
 * Counts the timeouts set and neither fired nor cleared since the call, by
 * wrapping the global setTimeout and clearTimeout until `restore()`.
 */
export function watchTimers(): { pending(): number; restore(): void } {
  const original = {
    set: globalThis.setTimeout,
    clear: globalThis.clearTimeout,
  };
  const live = new Set<unknown>();
  globalThis.setTimeout = ((task: () => void, ms?: number) => {
    const handle: unknown = original.set(() => {
      live.delete(handle);
      task();
    }, ms);
    live.add(handle);
    return handle;
  }) as typeof setTimeout;
  globalThis.clearTimeout = ((handle: Parameters<typeof clearTimeout>[0]) => {
    live.delete(handle);
    original.clear(handle);
  }) as typeof clearTimeout;
  return {
    pending: () => live.size,
    restore() {
      globalThis.setTimeout = original.set;
      globalThis.clearTimeout = original.clear;
    },
  };
}
