/** The version of wsevent, printed by `--version` and `/healthz`. */
export const VERSION = "0.1.0";
