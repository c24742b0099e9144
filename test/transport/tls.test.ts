import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, afterEach, describe, expect, it } from "vitest";
import { closeAll, numbered, startEndpoint, waitFor, type Endpoint } from "./helpers.js";

/**
 * A self-signed certificate for 127.0.0.1 (its own CA), made with openssl. `.ci/run` installs
 * openssl; without it this throws rather than skipping the TLS tests.
 */
function selfSigned(dir: string, name: string): { cert: string; key: string } {
  execFileSync(
    "openssl",
    [
      "req",
      "-x509",
      "-newkey",
      "ec",
      "-pkeyopt",
      "ec_paramgen_curve:prime256v1",
      "-nodes",
      "-keyout",
      join(dir, `${name}.key`),
      "-out",
      join(dir, `${name}.crt`),
      "-days",
      "1",
      "-subj",
      `/CN=${name}`,
      "-addext",
      "subjectAltName=IP:127.0.0.1",
    ],
    { stdio: "ignore" },
  );
  return {
    cert: readFileSync(join(dir, `${name}.crt`), "utf8"),
    key: readFileSync(join(dir, `${name}.key`), "utf8"),
  };
}

const dir = mkdtempSync(join(tmpdir(), "blixard-tls-"));
const cluster = selfSigned(dir, "cluster");
const stranger = selfSigned(dir, "stranger");
const open: Endpoint[] = [];
afterEach(async () => closeAll(open.splice(0)));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("TcpTransport over TLS", () => {
  it("delivers between peers that share a CA and refuses a peer with another certificate", async () => {
    const tls = { cert: cluster.cert, key: cluster.key, ca: cluster.cert };
    const a = await startEndpoint(1, { tls });
    const b = await startEndpoint(2, { tls });
    open.push(a, b);
    a.transport.addPeer(2, b.transport.address);
    b.transport.addPeer(1, a.transport.address);
    a.transport.send([numbered(1, 2, 1)]);
    b.transport.send([numbered(2, 1, 1)]);
    await waitFor(() => a.received.length === 1 && b.received.length === 1, "delivery over TLS");

    // Right cluster id and node id, but a certificate the cluster's CA did not sign.
    const intruder = await startEndpoint(1, {
      tls: { cert: stranger.cert, key: stranger.key, ca: cluster.cert },
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
});
