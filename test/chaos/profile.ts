/**
 * The one place that says how the chaos suite starts a node and authenticates a client. Today
 * nodes take plaintext HTTP and TCP with no credentials; once `node start` requires mutual TLS
 * (`--insecure` for plaintext) and the API requires tokens, only this file changes.
 */

/** Extra `node start` flags of every node (security, first start and restarts alike). */
export function nodeSecurityFlags(): string[] {
  // Plaintext: the suite tests faults, not TLS (its own tests cover that), and its clients
  // reach the nodes over a private bridge inside namespaces the suite owns.
  return ["--insecure"];
}

/** The scheme of the nodes' API URLs. */
export const API_SCHEME = "http";

/** Headers every client request carries (credentials). */
export function clientHeaders(): Record<string, string> {
  return {};
}

/** Node tuning for fault runs: snapshots often enough that followers install some. */
export function nodeTuningFlags(): string[] {
  return ["--snapshot-every-entries", "2000", "--log-level", "info"];
}
