/**
 * Checks a TLS pair before a server takes it: some runtimes accept a key
 * that does not belong to the certificate and fail every handshake later
 * (Deno's node:http2), so the mismatch is found here, with a clear error.
 *
 * @module
 */

import { createPrivateKey, X509Certificate } from "node:crypto";
import type { TlsPair } from "./types.ts";

/**
 * Throws unless `pair.key` is the private key of `pair.cert`'s first
 * certificate.
 *
 * @param pair The PEM certificate chain and key.
 * @throws {TypeError} When either cannot be parsed or they do not match.
 */
export function checkTlsPair(pair: TlsPair): void {
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(pair.cert);
  } catch (error) {
    throw new TypeError(
      `the certificate cannot be parsed: ${(error as Error).message}`,
    );
  }
  let matches: boolean;
  try {
    matches = certificate.checkPrivateKey(createPrivateKey(pair.key));
  } catch (error) {
    throw new TypeError(
      `the private key cannot be parsed: ${(error as Error).message}`,
    );
  }
  if (!matches) {
    throw new TypeError(
      `the private key does not belong to the certificate (${
        certificate.subject.replace(/\n/g, ", ")
      })`,
    );
  }
}
