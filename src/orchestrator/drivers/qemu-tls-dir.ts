/**
 * The directory of x509 files QEMU's `tls-creds-x509` object reads for a live migration (see
 * `qemu-migration-tls.ts`): the node's own CA, certificate and key under the names QEMU looks
 * for. A node certificate carries serverAuth and clientAuth, so the same pair serves as the
 * target's server certificate and the source's client certificate. The directory is the node's
 * alone (0700, files 0600), written afresh at each start from the material the node loaded, so a
 * certificate renewed on disk reaches QEMU with the next start as it reaches the peer transport.
 */
import { chmodSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { PRIVATE_DIR_MODE, writePrivateFile } from "../../security/files.js";

/** The file names QEMU's `tls-creds-x509` reads in its `dir`. */
export const QEMU_TLS_FILES = {
  caCert: "ca-cert.pem",
  serverCert: "server-cert.pem",
  serverKey: "server-key.pem",
  clientCert: "client-cert.pem",
  clientKey: "client-key.pem",
} as const;

/** A node's TLS material, PEM: the cluster's CA, the node's certificate and its key. */
export interface NodeTlsPem {
  readonly ca: string;
  readonly cert: string;
  readonly key: string;
}

/**
 * Writes `material` into `dir` as QEMU's five files (creating `dir`), and sets the modes: 0700
 * for `dir`, 0600 for each file.
 * @throws the fs error when the disk refuses.
 */
export function writeQemuTlsDir(dir: string, material: NodeTlsPem): void {
  mkdirSync(dir, { recursive: true, mode: PRIVATE_DIR_MODE });
  chmodSync(dir, PRIVATE_DIR_MODE);
  writePrivateFile(join(dir, QEMU_TLS_FILES.caCert), material.ca);
  for (const [cert, key] of [
    [QEMU_TLS_FILES.serverCert, QEMU_TLS_FILES.serverKey],
    [QEMU_TLS_FILES.clientCert, QEMU_TLS_FILES.clientKey],
  ] as const) {
    writePrivateFile(join(dir, key), material.key);
    writePrivateFile(join(dir, cert), material.cert);
  }
}
