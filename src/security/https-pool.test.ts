import { createServer, request, type Server } from "node:https";
import type { AddressInfo } from "node:net";
import type { TLSSocket } from "node:tls";
import { afterEach, describe, expect, it } from "vitest";
import { keepAliveHttpsAgent } from "./https-pool.js";
import { createCertificateAuthority, issueNodeCertificate } from "./issue.js";

const CLUSTER = "pool-test";

/** Serves the peer certificate's common name of each request, over mutual TLS. */
async function serve(caPem: string, server: { certPem: string; keyPem: string }) {
  const https = createServer(
    { ca: caPem, cert: server.certPem, key: server.keyPem, requestCert: true },
    (request, response) => {
      const peer = (request.socket as TLSSocket).getPeerCertificate();
      response.end(String(peer.subject?.CN ?? "none"));
    },
  );
  await new Promise<void>((resolve) => https.listen(0, "127.0.0.1", resolve));
  return https;
}

function get(agent: ReturnType<typeof keepAliveHttpsAgent>, port: number): Promise<string> {
  return new Promise((resolve, reject) => {
    request({ host: "127.0.0.1", port, path: "/", agent, servername: "localhost" }, (res) => {
      let body = "";
      res.on("data", (chunk: Buffer) => (body += chunk.toString()));
      res.on("end", () => resolve(body));
    })
      .on("error", reject)
      .end();
  });
}

describe("keepAliveHttpsAgent", () => {
  const servers: Server[] = [];
  afterEach(() => {
    for (const s of servers.splice(0)) s.close();
  });

  it("presents its certificate and checks the server's against its CA on every new connection", async () => {
    const ca = await createCertificateAuthority({ clusterId: CLUSTER });
    const serverCert = await issueNodeCertificate(ca, {
      clusterId: CLUSTER,
      nodeId: 1,
      hosts: ["localhost", "127.0.0.1"],
    });
    const clientCert = await issueNodeCertificate(ca, { clusterId: CLUSTER, nodeId: 7 });
    const server = await serve(ca.certPem, serverCert);
    servers.push(server);
    const port = (server.address() as AddressInfo).port;
    const agent = keepAliveHttpsAgent({
      ca: ca.certPem,
      cert: clientCert.certPem,
      key: clientCert.keyPem,
    });
    expect(await get(agent, port)).toMatch(/7/);
    // A second connection (the first dropped) shares the context and still authenticates.
    agent.destroy();
    expect(await get(agent, port)).toMatch(/7/);

    const otherCa = await createCertificateAuthority({ clusterId: CLUSTER });
    const strangerCert = await issueNodeCertificate(otherCa, {
      clusterId: CLUSTER,
      nodeId: 1,
      hosts: ["localhost", "127.0.0.1"],
    });
    const stranger = await serve(otherCa.certPem, strangerCert);
    servers.push(stranger);
    const strangerPort = (stranger.address() as AddressInfo).port;
    await expect(get(agent, strangerPort)).rejects.toThrow(/certificate/i);
    agent.destroy();
  });
});
