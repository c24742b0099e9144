/**
 * The verified client certificate of a request: read once per TLS 1.3 connection (every request
 * of a keep-alive connection gets the same names without the certificate being parsed again),
 * read for every request under TLS 1.2 (a renegotiation may present another), never for a
 * connection whose certificate was not verified.
 */
import { TLSSocket } from "node:tls";
import type { X509Certificate } from "node:crypto";
import type { FastifyRequest } from "fastify";
import { describe, expect, it } from "vitest";
import { verifiedPeerCertificate } from "../../src/api/auth/peer-certificate.js";

/** A TLS socket of `protocol` whose certificate names `names`; counts the certificate reads. */
function connection(protocol: string, authorized = true) {
  const state = { reads: 0, names: ["node-7.blixard-test"] };
  const socket = Object.create(TLSSocket.prototype) as TLSSocket;
  Object.defineProperties(socket, {
    authorized: { value: authorized },
    getProtocol: { value: () => protocol },
    getPeerX509Certificate: {
      value: () => {
        state.reads++;
        return {
          subject: "O=blixard\nCN=node-7",
          subjectAltName: state.names.map((n) => `DNS:${n}`).join(", "),
        } as unknown as X509Certificate;
      },
    },
  });
  const request = { raw: { socket } } as unknown as FastifyRequest;
  return { state, request };
}

describe("verifiedPeerCertificate", () => {
  it("reads a TLS 1.3 connection's certificate once for all its requests", () => {
    const { state, request } = connection("TLSv1.3");
    const first = verifiedPeerCertificate(request);
    expect(first).toEqual({ commonName: "node-7", dnsNames: ["node-7.blixard-test"] });
    expect(verifiedPeerCertificate(request)).toEqual(first);
    expect(verifiedPeerCertificate(request)).toEqual(first);
    expect(state.reads).toBe(1);
  });

  it("reads it for every request under TLS 1.2, where a renegotiation may change it", () => {
    const { state, request } = connection("TLSv1.2");
    expect(verifiedPeerCertificate(request)?.dnsNames).toEqual(["node-7.blixard-test"]);
    state.names = ["node-8.blixard-test"];
    expect(verifiedPeerCertificate(request)?.dnsNames).toEqual(["node-8.blixard-test"]);
    expect(state.reads).toBe(2);
  });

  it("gives nothing for a certificate the CA did not verify", () => {
    const { state, request } = connection("TLSv1.3", false);
    expect(verifiedPeerCertificate(request)).toBeUndefined();
    expect(state.reads).toBe(0);
  });
});
