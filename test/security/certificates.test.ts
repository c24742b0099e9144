/** Issuing, loading and naming certificates (src/security): unit tests on real keys. */
import { X509Certificate } from "node:crypto";
import { mkdtempSync, rmSync, statSync } from "node:fs";
import { createServer, connect, type TLSSocket } from "node:tls";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  TLS_FILES,
  TlsMaterialError,
  caClusterId,
  commonName,
  createCertificateAuthority,
  dnsNames,
  issueClientCertificate,
  issueNodeCertificate,
  loadNodeTlsMaterial,
  loadTlsMaterial,
  nodeIdentityName,
  parseNodeIdentityName,
  peerNodeId,
  writeIssued,
  writePrivateFile,
  type IssuedCertificate,
} from "../../src/security/index.js";

const dir = mkdtempSync(join(tmpdir(), "blixard-certs-"));
let ca: IssuedCertificate;
let other: IssuedCertificate;
let node3: IssuedCertificate;
let client: IssuedCertificate;

beforeAll(async () => {
  ca = await createCertificateAuthority({ clusterId: "prod" });
  other = await createCertificateAuthority({ clusterId: "prod" });
  node3 = await issueNodeCertificate(ca, {
    clusterId: "prod",
    nodeId: 3,
    hosts: ["127.0.0.1", "localhost", "::1"],
  });
  client = await issueClientCertificate(ca, { clusterId: "prod", name: "alice" });
});
afterAll(() => rmSync(dir, { recursive: true, force: true }));

function expectTlsError(fn: () => unknown, problem: string, text: string): void {
  try {
    fn();
  } catch (error) {
    expect(error).toBeInstanceOf(TlsMaterialError);
    expect((error as TlsMaterialError).problem).toBe(problem);
    expect((error as TlsMaterialError).code).toBe("INVALID_ARGUMENT");
    expect((error as Error).message).toContain(text);
    return;
  }
  throw new Error(`expected a TlsMaterialError (${problem})`);
}

describe("identity names", () => {
  it("round-trips node ids and refuses other names", () => {
    expect(nodeIdentityName("prod", 3)).toBe("node-3.prod.blixard");
    expect(parseNodeIdentityName("node-3.prod.blixard", "prod")).toBe(3);
    for (const name of [
      "node-3.dev.blixard",
      "node-03.prod.blixard",
      "node-0.prod.blixard",
      "node-x.prod.blixard",
      "node-3.prod.blixard.evil",
      "xnode-3.prod.blixard",
      "node-99999999999999999.prod.blixard",
    ]) {
      expect(parseNodeIdentityName(name, "prod"), name).toBeUndefined();
    }
  });
});

describe("issuing", () => {
  it("makes a self-signed CA that names its cluster", () => {
    const cert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(true);
    expect(cert.checkIssued(cert)).toBe(true);
    expect(cert.verify(cert.publicKey)).toBe(true);
    expect(caClusterId(cert)).toBe("prod");
    expect(cert.publicKey.asymmetricKeyDetails?.namedCurve).toBe("prime256v1");
  });

  it("makes a node certificate naming the node and its hosts, for server and client use", () => {
    const cert = new X509Certificate(node3.certPem);
    const caCert = new X509Certificate(ca.certPem);
    expect(cert.ca).toBe(false);
    expect(cert.verify(caCert.publicKey)).toBe(true);
    expect(dnsNames(cert)).toEqual(["node-3.prod.blixard", "localhost"]);
    expect(cert.subjectAltName).toContain("IP Address:127.0.0.1");
    expect(cert.checkIP("127.0.0.1")).toBe("127.0.0.1");
    expect(cert.checkHost("localhost")).toBe("localhost");
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.1", "1.3.6.1.5.5.7.3.2"]);
    expect(peerNodeId(cert, "prod")).toBe(3);
    expect(peerNodeId(cert, "dev")).toBeUndefined();
    expect(commonName(cert)).toBe("node-3.prod.blixard");
  });

  it("makes a client certificate whose common name is the client, for client use only", () => {
    const cert = new X509Certificate(client.certPem);
    expect(commonName(cert)).toBe("alice");
    expect(cert.keyUsage).toEqual(["1.3.6.1.5.5.7.3.2"]);
    expect(peerNodeId(cert, "prod")).toBeUndefined();
    expect(cert.verify(new X509Certificate(ca.certPem).publicKey)).toBe(true);
  });

  it("gives each certificate its own key and serial number", async () => {
    const again = await issueNodeCertificate(ca, { clusterId: "prod", nodeId: 3 });
    expect(again.keyPem).not.toBe(node3.keyPem);
    expect(new X509Certificate(again.certPem).serialNumber).not.toBe(
      new X509Certificate(node3.certPem).serialNumber,
    );
  });

  it("refuses names that cannot be carried and a CA key that is not one", async () => {
    await expect(createCertificateAuthority({ clusterId: "Not_Valid" })).rejects.toThrow(
      "cannot be named in certificates",
    );
    await expect(issueNodeCertificate(ca, { clusterId: "prod", nodeId: 0 })).rejects.toThrow(
      "positive integer",
    );
    await expect(
      issueNodeCertificate(ca, { clusterId: "prod", nodeId: 1, hosts: ["bad host"] }),
    ).rejects.toThrow("neither an IP address nor a DNS name");
    await expect(
      issueClientCertificate(ca, { clusterId: "prod", name: "a,CN=admin" }),
    ).rejects.toThrow("client name");
    await expect(
      issueNodeCertificate(
        { certPem: ca.certPem, keyPem: "nope" },
        { clusterId: "prod", nodeId: 1 },
      ),
    ).rejects.toBeInstanceOf(TlsMaterialError);
  });
});

describe("files", () => {
  it("writes files 0600 in a 0700 directory under predictable names", () => {
    const tlsDir = join(dir, "fresh", "tls");
    const { certPath, keyPath } = writeIssued(
      tlsDir,
      { cert: TLS_FILES.nodeCert(3), key: TLS_FILES.nodeKey(3) },
      node3,
    );
    expect(certPath).toBe(join(tlsDir, "node-3.pem"));
    expect(keyPath).toBe(join(tlsDir, "node-3-key.pem"));
    expect(statSync(tlsDir).mode & 0o777).toBe(0o700);
    expect(statSync(certPath).mode & 0o777).toBe(0o600);
    expect(statSync(keyPath).mode & 0o777).toBe(0o600);
    expect(TLS_FILES.clientCert("alice")).toBe("client-alice.pem");
  });

  it("loads a node's material and checks key, CA, identity and validity", () => {
    const tlsDir = join(dir, "load");
    writePrivateFile(join(tlsDir, "ca.pem"), ca.certPem);
    writePrivateFile(join(tlsDir, "other-ca.pem"), other.certPem);
    writeIssued(tlsDir, { cert: "node-3.pem", key: "node-3-key.pem" }, node3);
    writeIssued(tlsDir, { cert: "client.pem", key: "client-key.pem" }, client);
    writePrivateFile(join(tlsDir, "garbage.pem"), "hello\n");
    const paths = {
      ca: join(tlsDir, "ca.pem"),
      cert: join(tlsDir, "node-3.pem"),
      key: join(tlsDir, "node-3-key.pem"),
    };
    const loaded = loadNodeTlsMaterial(paths, { clusterId: "prod", nodeId: 3 });
    expect(peerNodeId(loaded.certificate, "prod")).toBe(3);
    expect(loaded.ca).toBe(ca.certPem);

    expectTlsError(
      () => loadNodeTlsMaterial(paths, { clusterId: "prod", nodeId: 2 }),
      "wrong-identity",
      "does not name node-2.prod.blixard",
    );
    expectTlsError(
      () => loadNodeTlsMaterial(paths, { clusterId: "dev", nodeId: 3 }),
      "wrong-identity",
      "node-3.dev.blixard",
    );
    expectTlsError(
      () => loadTlsMaterial({ ...paths, ca: join(tlsDir, "other-ca.pem") }),
      "untrusted",
      "was not signed by the CA",
    );
    expectTlsError(
      () => loadTlsMaterial({ ...paths, key: join(tlsDir, "client-key.pem") }),
      "key-mismatch",
      "does not belong to the certificate",
    );
    expectTlsError(
      () => loadTlsMaterial({ ...paths, ca: join(tlsDir, "absent.pem") }),
      "missing",
      "does not exist",
    );
    expectTlsError(
      () => loadTlsMaterial({ ...paths, cert: join(tlsDir, "garbage.pem") }),
      "malformed",
      "holds no PEM certificate",
    );
    expectTlsError(
      () => loadTlsMaterial({ ...paths, key: join(tlsDir, "garbage.pem") }),
      "malformed",
      "not a PEM private key",
    );
    expectTlsError(
      () => loadTlsMaterial({ ...paths, ca: paths.cert }),
      "wrong-identity",
      "is not a CA certificate",
    );
    expectTlsError(
      () => loadTlsMaterial(paths, new Date(Date.now() + 900 * 86_400_000)),
      "expired",
      "issue a new one",
    );
  });

  it("refuses an unreadable file as unreadable", () => {
    // A directory where a file should be: EISDIR.
    const path = join(dir, "a-directory.pem");
    writePrivateFile(join(path, "inside"), "x");
    expectTlsError(() => loadTlsMaterial({ ca: path, cert: path, key: path }), "unreadable", path);
  });
});

describe("a TLS handshake with the issued certificates", () => {
  it("authenticates a client certificate and a server name from the same CA", async () => {
    const server = createServer(
      {
        cert: node3.certPem,
        key: node3.keyPem,
        ca: ca.certPem,
        requestCert: true,
        rejectUnauthorized: true,
        minVersion: "TLSv1.2",
      },
      (socket) => {
        const peer = (socket as TLSSocket).getPeerX509Certificate();
        socket.end(`${socket.authorized ? "authorized" : "not"} ${peer ? commonName(peer) : "-"}`);
      },
    );
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    const port = (server.address() as { port: number }).port;
    try {
      const answer = await new Promise<string>((resolve, reject) => {
        const socket = connect({
          host: "127.0.0.1",
          port,
          ca: ca.certPem,
          cert: client.certPem,
          key: client.keyPem,
        });
        let text = "";
        socket.on("data", (d: Buffer) => (text += d.toString()));
        socket.on("end", () => resolve(text));
        socket.on("error", reject);
      });
      expect(answer).toBe("authorized alice");
    } finally {
      await new Promise((resolve) => server.close(resolve));
    }
  });
});
