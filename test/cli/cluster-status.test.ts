/**
 * `cluster status` asks every member for its own status. A member that is down must be reported
 * at once, not after the client's default retries (six, backing off to 800 ms: about 2 s per
 * `cluster status` with a stopped member). Here the answering node is a fake that names a second
 * member whose API address resets every connection, and the test counts the attempts.
 */
import { createServer as createHttpServer, type Server as HttpServer } from "node:http";
import { createServer, type Server } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { cli, ensureBuilt } from "./helpers.js";

const servers: (Server | HttpServer)[] = [];
afterAll(() => {
  for (const s of servers) s.close();
});

async function listen(server: Server | HttpServer): Promise<number> {
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", () => resolve()));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no address");
  return address.port;
}

describe("blixard cluster status", () => {
  beforeAll(ensureBuilt);

  it("reports a member that resets every connection after one retry", async () => {
    let attempts = 0;
    const down = createServer((socket) => {
      attempts++;
      socket.resetAndDestroy();
    });
    const downPort = await listen(down);
    let answeringUrl = "";
    const answering = createHttpServer((request, response) => {
      response.setHeader("content-type", "application/json");
      if (request.url === "/v1/cluster/members") {
        response.end(
          JSON.stringify({
            members: [
              { id: 1, apiAddress: answeringUrl },
              { id: 2, apiAddress: `http://127.0.0.1:${downPort}` },
            ],
          }),
        );
        return;
      }
      response.end(JSON.stringify({ id: 1, role: "leader", term: 1 }));
    });
    answeringUrl = `http://127.0.0.1:${await listen(answering)}`;

    const result = await cli(["cluster", "status", "--json", "--endpoints", answeringUrl]);
    expect(result.status).toBe(0);
    const members = (JSON.parse(result.stdout) as { members: { id: number; error?: string }[] })
      .members;
    expect(members.find((m) => m.id === 1)?.error).toBeUndefined();
    expect(members.find((m) => m.id === 2)?.error).toMatch(/ECONNRESET|socket hang up/);
    // The first attempt and one retry (the client's default would make seven).
    expect(attempts).toBe(2);
  });
});
