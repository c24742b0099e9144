/**
 * Who a verified certificate names. The TLS layer proves a certificate was signed by the
 * cluster's CA; these functions say which node or client it belongs to. They never throw: the
 * certificate comes from the network.
 */
import type { X509Certificate } from "node:crypto";
import { parseNodeIdentityName } from "./names.js";

/**
 * The DNS names of a certificate's subject alternative name extension. Node formats it as
 * `DNS:a, IP Address:1.2.3.4, ...`; a DNS name cannot contain a comma or a space, so splitting on
 * `, ` is exact for DNS entries.
 */
export function dnsNames(cert: X509Certificate): string[] {
  const san = cert.subjectAltName;
  if (san === undefined) return [];
  const names: string[] = [];
  for (const part of san.split(", ")) {
    if (part.startsWith("DNS:")) names.push(part.slice("DNS:".length));
  }
  return names;
}

/**
 * The node id a node certificate of `clusterId` names (its `node-<id>.<cluster>.blixard` SAN), or
 * undefined if it names none, or more than one node (such a certificate proves nothing).
 */
export function peerNodeId(cert: X509Certificate, clusterId: string): number | undefined {
  let found: number | undefined;
  for (const name of dnsNames(cert)) {
    const id = parseNodeIdentityName(name, clusterId);
    if (id === undefined) continue;
    if (found !== undefined && found !== id) return undefined;
    found = id;
  }
  return found;
}

/**
 * The common name of a certificate's subject (a client certificate's client name), or undefined
 * if it has none or more than one.
 */
export function commonName(cert: X509Certificate): string | undefined {
  const names = cert.subject
    .split("\n")
    .filter((line) => line.startsWith("CN="))
    .map((line) => line.slice("CN=".length));
  return names.length === 1 ? names[0] : undefined;
}
