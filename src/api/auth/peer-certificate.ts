/**
 * The verified client certificate of a request, if any: on an HTTPS listener that asks for
 * client certificates, a certificate the TLS layer verified against the cluster CA
 * (`socket.authorized`). An unverified certificate is no credential at all.
 */
import { TLSSocket } from "node:tls";
import type { FastifyRequest } from "fastify";

/** What authorization reads from a verified certificate. */
export interface PeerCertificate {
  /** The subject's common name ("" if it has none). */
  readonly commonName: string;
  /** The DNS subject alternative names. */
  readonly dnsNames: readonly string[];
}

/**
 * What each TLS 1.3 connection's certificate says, read once: every request of a keep-alive
 * connection asked for it again, and building the X509 object and parsing its names was a few
 * percent of a server answering a thousand agents' heartbeats and polls. TLS 1.3 has no
 * renegotiation, so a connection's certificate is the one of its handshake for its life; under
 * TLS 1.2 a renegotiation may present another, so it is read for every request. Null: none.
 */
const readByConnection = new WeakMap<TLSSocket, PeerCertificate | null>();

/** Reads the request's verified client certificate; undefined on plain HTTP or without one. Throws nothing. */
export function verifiedPeerCertificate(request: FastifyRequest): PeerCertificate | undefined {
  const socket = request.raw.socket;
  if (!(socket instanceof TLSSocket) || !socket.authorized) return undefined;
  const known = readByConnection.get(socket);
  if (known !== undefined) return known ?? undefined;
  const read = readPeerCertificate(socket);
  if (socket.getProtocol() === "TLSv1.3") readByConnection.set(socket, read ?? null);
  return read;
}

/** The certificate's names, read from the socket. Throws nothing. */
function readPeerCertificate(socket: TLSSocket): PeerCertificate | undefined {
  try {
    const certificate = socket.getPeerX509Certificate();
    if (certificate === undefined) return undefined;
    return {
      commonName: commonNameOf(certificate.subject),
      dnsNames: dnsNamesOf(certificate.subjectAltName ?? ""),
    };
  } catch {
    return undefined;
  }
}

/** The CN of an X.509 subject as Node prints it ("C=..\nCN=alice\nO=.."). Throws nothing. */
export function commonNameOf(subject: string): string {
  for (const line of subject.split("\n")) if (line.startsWith("CN=")) return line.slice(3);
  return "";
}

/** The DNS names of a subjectAltName as Node prints it ("DNS:a, DNS:b, IP Address:1.2.3.4"). Throws nothing. */
export function dnsNamesOf(subjectAltName: string): string[] {
  return subjectAltName
    .split(",")
    .map((entry) => entry.trim())
    .filter((entry) => entry.startsWith("DNS:"))
    .map((entry) => entry.slice(4));
}
