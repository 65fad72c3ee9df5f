/**
 * Certificates for tests, made by openssl: a private CA and server
 * certificates for 127.0.0.1 signed by it, in a directory the test owns.
 */

import { execFileSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";

/** A certificate and its key, PEM. */
export interface Cert {
  cert: string;
  key: string;
}

/** Runs openssl quietly. */
function openssl(args: string[]): void {
  execFileSync("openssl", args, { stdio: "ignore" });
}

/** openssl req arguments for a new P-256 key, unencrypted, written to `key`. */
function newEcKey(key: string): string[] {
  return [
    "-newkey",
    "ec",
    "-pkeyopt",
    "ec_paramgen_curve:P-256",
    "-nodes",
    "-keyout",
    key,
  ];
}

/** A self-signed CA, made by openssl: what clients are told to trust. */
export function makeCa(dir: string): Cert {
  const cert = join(dir, "ca.crt");
  const key = join(dir, "ca.key");
  openssl([
    "req",
    "-x509",
    ...newEcKey(key),
    "-out",
    cert,
    "-days",
    "2",
    "-subj",
    "/CN=wsevent test CA",
  ]);
  return { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8") };
}

/**
 * A server certificate for 127.0.0.1 signed by the CA in `dir` (made by
 * {@link makeCa}), written to `<name>.crt` and `<name>.key` there. A
 * server needs one of its own: rustls, under Deno, refuses a self-signed
 * CA certificate as a server's own.
 */
export function makeCert(dir: string, name: string): Cert {
  const cert = join(dir, `${name}.crt`);
  const key = join(dir, `${name}.key`);
  const csr = join(dir, `${name}.csr`);
  const ext = join(dir, `${name}.ext`);
  writeFileSync(
    ext,
    "basicConstraints=critical,CA:FALSE\nsubjectAltName=IP:127.0.0.1\n",
  );
  openssl([
    "req",
    "-new",
    ...newEcKey(key),
    "-out",
    csr,
    "-subj",
    `/CN=wsevent test ${name}`,
  ]);
  openssl([
    "x509",
    "-req",
    "-in",
    csr,
    "-CA",
    join(dir, "ca.crt"),
    "-CAkey",
    join(dir, "ca.key"),
    "-CAcreateserial",
    "-days",
    "2",
    "-extfile",
    ext,
    "-out",
    cert,
  ]);
  return { cert: readFileSync(cert, "utf8"), key: readFileSync(key, "utf8") };
}
