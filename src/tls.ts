/**
 * TLS files of `--tls-cert` and `--tls-key`: read at start, re-read on
 * SIGHUP so a renewed certificate serves new connections while open ones
 * keep theirs.
 *
 * @module
 */

import type { Config } from "./config.ts";
import { UsageError } from "./errors.ts";
import type { Logger } from "./log.ts";
import type { RunningServer, TlsPair } from "./runtime/types.ts";

/**
 * Reads the certificate chain and key named by the configuration.
 *
 * @param config The configuration.
 * @param readTextFile Reads a file, the runtime's way.
 * @returns The pair, or undefined when TLS is not asked for.
 * @throws {UsageError} When a file cannot be read or is not PEM, naming it.
 */
export async function readTlsPair(
  config: Pick<Config, "tlsCert" | "tlsKey">,
  readTextFile: (path: string) => Promise<string>,
): Promise<TlsPair | undefined> {
  if (config.tlsCert === null || config.tlsKey === null) return undefined;
  const read = async (flag: string, path: string, label: RegExp) => {
    let text: string;
    try {
      text = await readTextFile(path);
    } catch (error) {
      throw new UsageError(
        `Cannot read flag -${flag} file "${path}": ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
    }
    if (!label.test(text)) {
      throw new UsageError(
        `Cannot use flag -${flag} file "${path}": expected PEM (${label.source})`,
      );
    }
    return text;
  };
  return {
    cert: await read("tls-cert", config.tlsCert, /-----BEGIN CERTIFICATE-----/),
    key: await read(
      "tls-key",
      config.tlsKey,
      /-----BEGIN [A-Z ]*PRIVATE KEY-----/,
    ),
  };
}

/**
 * Re-reads the TLS files on every SIGHUP and hands them to the server. A
 * pair that cannot be read or used is logged and the old one stays.
 *
 * @param config The configuration.
 * @param server The running server.
 * @param options How to read files, listen for SIGHUP and log.
 */
export function reloadTlsOnSignal(
  config: Pick<Config, "tlsCert" | "tlsKey">,
  server: RunningServer,
  options: {
    readTextFile: (path: string) => Promise<string>;
    onReloadSignal: (handler: () => void) => void;
    log: Logger;
  },
): void {
  const { log } = options;
  if (config.tlsCert === null) return;
  options.onReloadSignal(async () => {
    if (server.setTls === undefined) {
      log.warn(
        "received SIGHUP: this server cannot change its certificate (Deno.serve); restart to load a new one",
      );
      return;
    }
    try {
      const pair = await readTlsPair(config, options.readTextFile);
      const warning = await server.setTls(pair!);
      log.info(
        `received SIGHUP: new connections use the certificate re-read from ${config.tlsCert}`,
      );
      if (warning) log.warn(`TLS reload: ${warning}`);
    } catch (error) {
      log.error(
        `received SIGHUP: cannot reload the certificate, keeping the old one: ${
          error instanceof Error ? error.message : String(error)
        }`,
      );
    }
  });
}
