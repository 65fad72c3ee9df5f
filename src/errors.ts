/**
 * Errors that callers catch.
 *
 * @module
 */

/** A bad command line: cli.ts prints it with a usage hint and exits 2. */
export class UsageError extends Error {
  /** Stable code. */
  readonly code = "usage";
  /**
   * Creates the error.
   *
   * @param message What is wrong, naming the flag and the value.
   */
  constructor(message: string) {
    super(message);
    this.name = "UsageError";
  }
}
