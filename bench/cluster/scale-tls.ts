/**
 * The TLS material of the scale bench, made with the repository's own CA code (ECDSA P-256):
 * a CA, a certificate per server (for 127.0.0.1, so it also serves the HTTPS API) written where
 * `blixard node start --tls-*` reads it, the `root` client certificate the bench's own client
 * uses, and one node certificate per agent, kept in memory (the agents live in this process).
 */
import { join } from "node:path";
import {
  TLS_FILES,
  createCertificateAuthority,
  issueClientCertificate,
  issueNodeCertificate,
  writeIssued,
  type IssuedCertificate,
} from "../../src/security/index.js";
import { ROOT_CERTIFICATE_NAME } from "../../src/api/auth/authenticator.js";

/** The CA and what the servers and the bench's client present. */
export interface ScaleTls {
  readonly clusterId: string;
  readonly ca: IssuedCertificate;
  /** The directory holding `ca.pem` and the servers' `node-N.pem` / `node-N-key.pem`. */
  readonly dir: string;
  /** The `node start` flags of server `id`. */
  serverArgs(id: number): string[];
  /** The client credentials of the bench (the `root` certificate: every right). */
  readonly client: { readonly ca: string; readonly cert: string; readonly key: string };
}

/** Creates the CA, the servers' certificates (files under `dir`) and the root client's. */
export async function provisionScaleTls(
  dir: string,
  clusterId: string,
  servers: number,
): Promise<ScaleTls> {
  const ca = await createCertificateAuthority({ clusterId });
  writeIssued(dir, { cert: TLS_FILES.caCert, key: TLS_FILES.caKey }, ca);
  for (let id = 1; id <= servers; id++) {
    const issued = await issueNodeCertificate(ca, {
      clusterId,
      nodeId: id,
      hosts: ["127.0.0.1", "localhost"],
    });
    writeIssued(dir, { cert: TLS_FILES.nodeCert(id), key: TLS_FILES.nodeKey(id) }, issued);
  }
  const root = await issueClientCertificate(ca, { clusterId, name: ROOT_CERTIFICATE_NAME });
  return {
    clusterId,
    ca,
    dir,
    serverArgs: (id) => [
      "--tls-ca",
      join(dir, TLS_FILES.caCert),
      "--tls-cert",
      join(dir, TLS_FILES.nodeCert(id)),
      "--tls-key",
      join(dir, TLS_FILES.nodeKey(id)),
    ],
    client: { ca: ca.certPem, cert: root.certPem, key: root.keyPem },
  };
}

/** Node `nodeId`'s certificate (an agent's identity: it may report for that node only). */
export function issueAgentCertificate(tls: ScaleTls, nodeId: number): Promise<IssuedCertificate> {
  return issueNodeCertificate(tls.ca, { clusterId: tls.clusterId, nodeId });
}
