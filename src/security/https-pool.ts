/**
 * Keep-alive HTTPS connection pools that present one identity. Given `ca`/`cert`/`key`, Node's
 * `https.Agent` hands them to `tls.connect`, which parses the PEM key, the certificate and the CA
 * again for every new connection (a few hundred microseconds each, and most of a TLS client's
 * cost in a process that runs a thousand agents). Built here, the TLS context is made once and
 * every connection of the pool shares it.
 */
import { Agent as HttpsAgent, type AgentOptions as HttpsAgentOptions } from "node:https";
import { createSecureContext } from "node:tls";

/** PEM material a pool trusts and presents; each part optional. */
export interface PoolTls {
  readonly ca?: string;
  readonly cert?: string;
  readonly key?: string;
}

/**
 * A keep-alive pool (TLS 1.2 or later) whose connections share one TLS context built from `tls`.
 * `options` adds pool settings (`maxSockets`, `maxFreeSockets`…).
 * @throws Error if the PEM material cannot be parsed (as `tls.createSecureContext` does).
 */
export function keepAliveHttpsAgent(tls: PoolTls, options: HttpsAgentOptions = {}): HttpsAgent {
  const secureContext = createSecureContext({
    minVersion: "TLSv1.2",
    ...(tls.ca === undefined ? {} : { ca: tls.ca }),
    ...(tls.cert === undefined ? {} : { cert: tls.cert }),
    ...(tls.key === undefined ? {} : { key: tls.key }),
  });
  return new HttpsAgent({ ...options, keepAlive: true, minVersion: "TLSv1.2", secureContext });
}
