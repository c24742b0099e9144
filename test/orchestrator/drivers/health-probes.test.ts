/**
 * The qemu driver's health probes against local sockets standing in for QEMU's forward: a TCP
 * probe passes on a connection that stays open or speaks, fails on one refused or closed at once
 * (what slirp does when the guest refuses); the forward's port is read from `info usernet`.
 */
import { createServer, type Server } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import type { GuestAgentClient } from "../../../src/orchestrator/drivers/guest-agent-client.js";
import type { GuestExecResult } from "../../../src/orchestrator/drivers/guest-agent-protocol.js";
import {
  commandProbe,
  localForwardPorts,
  tcpHoldMs,
  tcpProbe,
} from "../../../src/orchestrator/drivers/health-probes.js";
import { realClock } from "./helpers.js";

const servers: Server[] = [];
afterEach(() => {
  for (const server of servers.splice(0)) server.close();
});

/** A server on 127.0.0.1 treating each connection as `onConnection` says; resolves its port. */
async function serve(onConnection: Parameters<typeof createServer>[1]): Promise<number> {
  const server = createServer(onConnection);
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  return (server.address() as { port: number }).port;
}

function probe(hostPort: number): Promise<void> {
  const run = tcpProbe({ clock: realClock, hostPort, guestPort: 80, timeoutMs: 100 });
  return run(new AbortController().signal);
}

describe("tcpProbe", () => {
  it("passes when the connection stays open (a silent service) or the service speaks first", async () => {
    const silent = await serve(() => undefined);
    await expect(probe(silent)).resolves.toBeUndefined();
    const banner = await serve((socket) => socket.write("SSH-2.0-x\r\n"));
    await expect(probe(banner)).resolves.toBeUndefined();
  });

  it("fails when the connection is closed at once, as slirp does when the guest refuses", async () => {
    const closing = await serve((socket) => socket.end());
    await expect(probe(closing)).rejects.toThrow(/tcp guest port 80: the connection was closed/);
  });

  it("fails when nothing listens on the host port, and when aborted", async () => {
    const port = await serve(() => undefined);
    servers.pop()?.close();
    await new Promise((resolve) => setImmediate(resolve));
    await expect(probe(port)).rejects.toThrow(/ECONNREFUSED/);
    const silent = await serve(() => undefined);
    const abort = new AbortController();
    const running = tcpProbe({
      clock: realClock,
      hostPort: silent,
      guestPort: 80,
      timeoutMs: 60_000,
    })(abort.signal);
    abort.abort();
    await expect(running).rejects.toThrow(/given up/);
  });

  it("holds a silent connection for half the probe's time, at most a second", () => {
    expect(tcpHoldMs(100)).toBe(50);
    expect(tcpHoldMs(2000)).toBe(1000);
    expect(tcpHoldMs(60_000)).toBe(1000);
    expect(tcpHoldMs(1)).toBe(1);
  });
});

describe("commandProbe", () => {
  /** An agent stand-in answering every command with `result`. */
  function agent(result: GuestExecResult): () => GuestAgentClient {
    const stub = { exec: async () => result };
    return () => stub as unknown as GuestAgentClient;
  }

  it("passes on exit code 0, fails on another with the output's last line, and without an agent", async () => {
    const signal = new AbortController().signal;
    const ok = commandProbe({
      agent: agent({ exitCode: 0, output: "", truncated: false }),
      command: "true",
      timeoutMs: 1000,
    });
    await expect(ok(signal)).resolves.toBeUndefined();
    const failing = commandProbe({
      agent: agent({ exitCode: 1, output: "starting\nno pid file\n", truncated: false }),
      command: "test -e /run/app.pid",
      timeoutMs: 1000,
    });
    await expect(failing(signal)).rejects.toThrow("command exited 1: no pid file");
    const detached = commandProbe({ agent: () => undefined, command: "true", timeoutMs: 1000 });
    await expect(detached(signal)).rejects.toThrow(/guest agent is not connected/);
  });
});

describe("localForwardPorts", () => {
  it("reads the host port of each forward on 127.0.0.1 by guest port, skipping others", () => {
    const usernet =
      "Hub -1 (net0):\r\n" +
      "  Protocol[State]    FD  Source Address  Port   Dest. Address  Port RecvQ SendQ\r\n" +
      "  TCP[HOST_FORWARD]  13               * 18080       10.0.2.15    80     0     0\r\n" +
      "  TCP[HOST_FORWARD]   3       127.0.0.1 45463       10.0.2.15    81     0     0\r\n" +
      "  TCP[ESTABLISHED]   20       127.0.0.1 45463       10.0.2.15    82     0     0\r\n";
    expect([...localForwardPorts(usernet)]).toEqual([[81, 45463]]);
    expect(localForwardPorts("").size).toBe(0);
  });
});
