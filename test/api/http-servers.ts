/**
 * Plain HTTP servers on 127.0.0.1 for the stream tests, closed (with their open streams) after
 * each test of the suite that calls {@link httpServers}.
 */
import { createServer, type RequestListener, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { afterEach } from "vitest";

/** Registers the clean-up; returns `listen`, which serves `handler` and resolves with its URL. */
export function httpServers(): (handler: RequestListener) => Promise<URL> {
  const servers: Server[] = [];
  afterEach(async () => {
    for (const server of servers.splice(0)) {
      server.closeAllConnections();
      await new Promise((resolve) => server.close(resolve));
    }
  });
  return async (handler) => {
    const server = createServer(handler);
    servers.push(server);
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return new URL(`http://127.0.0.1:${(server.address() as AddressInfo).port}/`);
  };
}
