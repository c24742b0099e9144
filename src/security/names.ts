/**
 * The names certificates carry. A node's certificate names its node id and cluster in a DNS
 * subject alternative name `node-<id>.<cluster-id>.blixard`, so a certificate proves which node
 * speaks and for which cluster; a client certificate's common name is the client's name, which
 * maps to ACL policies. One place builds and parses these names so the issuer, the peer
 * transport and the API agree.
 */

/** The DNS suffix of every Blixard identity name. */
export const IDENTITY_DNS_SUFFIX = "blixard";

/** Cluster ids that can sit inside a DNS name: lower-case letters, digits and dashes. */
const CLUSTER_ID_PATTERN = /^[a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?$/;

/** True if `clusterId` can be carried in identity names. */
export function isValidClusterIdForNames(clusterId: string): boolean {
  return CLUSTER_ID_PATTERN.test(clusterId);
}

/** The DNS name that identifies node `nodeId` of cluster `clusterId`: `node-3.prod.blixard`. */
export function nodeIdentityName(clusterId: string, nodeId: number): string {
  return `node-${nodeId}.${clusterId}.${IDENTITY_DNS_SUFFIX}`;
}

/**
 * The node id named by `dnsName` if it is a node identity of `clusterId`, else undefined. Never
 * throws: the input comes from a peer's certificate.
 */
export function parseNodeIdentityName(dnsName: string, clusterId: string): number | undefined {
  const suffix = `.${clusterId}.${IDENTITY_DNS_SUFFIX}`;
  if (!dnsName.startsWith("node-") || !dnsName.endsWith(suffix)) return undefined;
  const digits = dnsName.slice("node-".length, dnsName.length - suffix.length);
  if (!/^[1-9][0-9]{0,15}$/.test(digits)) return undefined;
  const id = Number(digits);
  return Number.isSafeInteger(id) ? id : undefined;
}
