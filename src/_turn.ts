/**
 * The end of the current turn of the event loop, for the hub's coalescing
 * and the transports' per-turn batching: setImmediate runs once the turn's
 * I/O callbacks are done; a zero timeout where the runtime has none.
 *
 * @module
 */

const immediate = globalThis as unknown as {
  setImmediate?: (task: () => void) => unknown;
  clearImmediate?: (handle: unknown) => void;
};

/** Runs `task` after this turn's I/O callbacks; returns a handle for {@link cancelAfterTurn}. */
export const afterTurn: (task: () => void) => unknown =
  immediate.setImmediate ?? ((task) => setTimeout(task, 0));

/** Cancels a task scheduled with {@link afterTurn}. */
export const cancelAfterTurn: (handle: unknown) => void =
  immediate.clearImmediate ??
    ((handle) => clearTimeout(handle as ReturnType<typeof setTimeout>));
