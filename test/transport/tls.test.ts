import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { createConnection } from "node:net";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { issueCert, makeCa, nodeName } from "../fixtures/test-certs.js";
import { closeAll, numbered, startEndpoint, waitFor, type Endpoint } from "./helpers.js";

const dir = mkdtempSync(join(tmpdir(), "blixard-tls-"));
const ca = makeCa(dir, "cluster-ca");
const otherCa = makeCa(dir, "other-ca");
const CLUSTER = "test-cluster";
const node1 = issueCert(dir, ca, "node1", [nodeName(CLUSTER, 1)]);
const node2 = issueCert(dir, ca, "node2", [nodeName(CLUSTER, 2)]);
/** Right cluster and node names, but signed by a CA the cluster does not trust. */
const stranger = issueCert(dir, otherCa, "stranger", [nodeName(CLUSTER, 1)]);
/** A genuine certificate of the cluster that names no node (e.g. a client's). */
const nameless = issueCert(dir, ca, "nameless", ["client.example"]);
const tlsFor = (c: { cert: string; key: string }): { cert: string; key: string; ca: string } => ({
  cert: c.cert,
  key: c.key,
  ca: ca.cert,
});
const open: Endpoint[] = [];
afterEach(async () => closeAll(open.splice(0)));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("TcpTransport over TLS", () => {
  it("delivers between peers that share a CA and refuses a peer with another certificate", async () => {
    const a = await startEndpoint(1, { tls: tlsFor(node1) });
    const b = await startEndpoint(2, { tls: tlsFor(node2), limits: { refusalLogIntervalMs: 0 } });
    open.push(a, b);
    a.transport.addPeer(2, b.transport.address);
    b.transport.addPeer(1, a.transport.address);
    a.transport.send([numbered(1, 2, 1)]);
    b.transport.send([numbered(2, 1, 1)]);
    await waitFor(() => a.received.length === 1 && b.received.length === 1, "delivery over TLS");

    // Right cluster id and node id, but a certificate the cluster's CA did not sign.
    const intruder = await startEndpoint(1, {
      tls: tlsFor(stranger),
    });
    open.push(intruder);
    intruder.transport.addPeer(2, b.transport.address);
    intruder.transport.send([numbered(1, 2, 666)]);
    await waitFor(() => b.logger.warned("TLS handshake failed"), "the TLS refusal");

    // Plain TCP to a TLS listener gets nowhere either.
    const plain = await startEndpoint(1);
    open.push(plain);
    plain.transport.addPeer(2, b.transport.address);
    plain.transport.send([numbered(1, 2, 667)]);
    await waitFor(
      () => (plain.transport.stats().get(2)?.connectFailures ?? 0) >= 1,
      "the plain connection to fail",
    );
    expect(b.received.map((m) => m.commit)).toEqual([1]);
  });

  it("refuses a certificate of node 2 claiming to be node 1, and one that names no node", async () => {
    const b = await startEndpoint(2, { tls: tlsFor(node2), limits: { refusalLogIntervalMs: 0 } });
    open.push(b);
    b.transport.addPeer(1, "127.0.0.1:1");
    b.transport.addPeer(3, "127.0.0.1:1");
    // A transport holding node 3's genuine certificate whose hello claims node 1.
    const impostor = await startEndpoint(1, {
      tls: tlsFor(issueCert(dir, ca, "node3", [nodeName(CLUSTER, 3)])),
    });
    open.push(impostor);
    impostor.transport.addPeer(2, b.transport.address);
    impostor.transport.send([numbered(1, 2, 666)]);
    await waitFor(
      () => b.logger.warned("hello claims node 1 but the certificate is node 3's"),
      "the identity refusal",
    );
    const noName = await startEndpoint(3, { tls: tlsFor(nameless) });
    open.push(noName);
    noName.transport.addPeer(2, b.transport.address);
    noName.transport.send([numbered(3, 2, 667)]);
    await waitFor(
      () => b.logger.warned('the certificate names no node of cluster "test-cluster"'),
      "the nameless refusal",
    );
    expect(b.received).toEqual([]);
    expect(b.transport.refusalStats().connectionsRefused).toBeGreaterThanOrEqual(2);
  });
});

describe("TcpTransport over TLS, idle sockets", () => {
  it("closes a socket that never starts the TLS handshake once the handshake timeout passes", async () => {
    const b = await startEndpoint(2, {
      tls: tlsFor(node2),
      limits: { handshakeTimeoutMs: 200, refusalLogIntervalMs: 0 },
    });
    open.push(b);
    const socket = createConnection(b.transport.address);
    socket.on("error", () => undefined);
    let closed = false;
    socket.on("close", () => (closed = true));
    // Before the fix Node reported the timeout and kept the socket open for good.
    await waitFor(() => closed, "the idle socket to be closed");
    expect(b.logger.warned("TLS handshake failed")).toBe(true);
  });
});
