/**
 * The client certificate of a request to the HTTPS API. The server asks every client for a
 * certificate but does not require one (a token is the other credential); this says whether the
 * client presented one that the cluster's CA signed, and which. Authorization maps it to an
 * identity (a node's certificate names the node, a client's its common name).
 */
import type { X509Certificate } from "node:crypto";
import { TLSSocket } from "node:tls";
import type { FastifyRequest } from "fastify";

/**
 * The verified client certificate of `request`, or undefined over plain HTTP, without a
 * certificate, or with one the CA did not sign. Throws nothing.
 */
export function verifiedClientCertificate(request: FastifyRequest): X509Certificate | undefined {
  const socket = request.raw.socket;
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  return socket.getPeerX509Certificate();
}
