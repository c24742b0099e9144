/**
 * The authenticator's reading of connection certificates: a node's certificate names its node
 * (resolved once per certificate object, as a connection reuses it for every request), and any
 * other certificate maps to its common name's ACL binding as it stands at each request.
 */
import { describe, expect, it } from "vitest";
import type { AclSource } from "./authenticator.js";
import { Authenticator } from "./authenticator.js";
import type { PeerCertificate } from "./peer-certificate.js";

/** An ACL source whose binding of "alice" can change; each change bumps the generation. */
function aclWithBinding(): AclSource & { bind(policies: string[]): void } {
  let policies: string[] = [];
  let generation = 0;
  return {
    get generation() {
      return generation;
    },
    bind(next: string[]) {
      policies = next;
      generation++;
    },
    bootstrapped: true,
    tokenByHash: () => undefined,
    token: () => undefined,
    tokens: () => [],
    policy: () => undefined,
    policies: () => [],
    certBinding: (commonName) =>
      commonName === "alice" ? { commonName, description: "", policies } : undefined,
    certBindings: () => [],
  };
}

describe("Authenticator, connection certificates", () => {
  it("reads a node certificate as its node, the same for every request of the connection", () => {
    const auth = new Authenticator({ clusterId: "prod", acl: aclWithBinding() });
    const certificate: PeerCertificate = {
      commonName: "node-7",
      dnsNames: ["localhost", "node-7.prod.blixard"],
    };
    expect(auth.authenticate({ certificate })).toEqual({ kind: "node", nodeId: 7 });
    expect(auth.authenticate({ certificate })).toEqual({ kind: "node", nodeId: 7 });
    // Another cluster's node name is no node identity here: the common name speaks.
    const foreign: PeerCertificate = { commonName: "node-7", dnsNames: ["node-7.test.blixard"] };
    expect(auth.authenticate({ certificate: foreign })).toMatchObject({
      kind: "certificate",
      commonName: "node-7",
    });
  });

  it("maps a client certificate to its binding as the ACL stands, request after request", () => {
    const acl = aclWithBinding();
    const auth = new Authenticator({ clusterId: "prod", acl });
    const certificate: PeerCertificate = { commonName: "alice", dnsNames: [] };
    expect(auth.authenticate({ certificate })).toMatchObject({ kind: "certificate", policies: [] });
    acl.bind(["ops"]);
    expect(auth.authenticate({ certificate })).toMatchObject({
      kind: "certificate",
      policies: ["ops"],
    });
  });
});
