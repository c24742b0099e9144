/**
 * Which node a peer's certificate names. The TLS layer has already verified the certificate
 * against the cluster CA; this reads the node identity out of its DNS subject alternative names
 * (`node-<id>.<cluster-id>.blixard`, see names.ts), so the transport can hold a peer to the id
 * it claims in its hello.
 */
import type { X509Certificate } from "node:crypto";
import { parseNodeIdentityName } from "./names.js";

/**
 * The node id a certificate names for `clusterId`, or undefined if it names none, or names more
 * than one (an ambiguous certificate proves nothing). Never throws: the certificate is a peer's.
 */
export function peerNodeIdFromCertificate(
  certificate: X509Certificate,
  clusterId: string,
): number | undefined {
  let found: number | undefined;
  for (const name of dnsNames(certificate.subjectAltName)) {
    const id = parseNodeIdentityName(name, clusterId);
    if (id === undefined) continue;
    if (found !== undefined && found !== id) return undefined;
    found = id;
  }
  return found;
}

/**
 * The DNS names in Node's rendering of the subjectAltName extension ("DNS:a, IP Address:1.2.3.4").
 * A name containing a comma or quote is rendered quoted by Node; such a name can never be an
 * identity name, so it is skipped rather than unquoted.
 */
function dnsNames(subjectAltName: string | undefined): string[] {
  if (subjectAltName === undefined) return [];
  const names: string[] = [];
  for (const part of subjectAltName.split(", ")) {
    if (part.startsWith("DNS:")) names.push(part.slice("DNS:".length));
  }
  return names;
}
