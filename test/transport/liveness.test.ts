/**
 * Link liveness over real loopback sockets: a link to a peer that accepts the connection and then
 * says nothing is closed and redialled once silent past the limit; a link whose peer answers is
 * never reset; a peer that redials this node resets this node's (old) link to it.
 */
import { createServer, type Server, type Socket } from "node:net";
import { create } from "@bufbuild/protobuf";
import { afterEach, describe, expect, it } from "vitest";
import { encodeFrame, frame } from "../../src/transport/codec.js";
import { HelloAckSchema } from "../../src/transport/gen/blixard/raft/v1/raft_pb.js";
import { closeAll, numbered, startEndpoint, startMesh, waitFor, type Endpoint } from "./helpers.js";

const open: Endpoint[] = [];
const servers: Server[] = [];
const sockets: Socket[] = [];
afterEach(async () => {
  for (const s of sockets.splice(0)) s.destroy();
  for (const server of servers.splice(0)) await new Promise((r) => server.close(r));
  await closeAll(open.splice(0));
});

/** A peer that accepts every connection, acknowledges its hello, then never says anything. */
async function mutePeer(nodeId: number): Promise<{ port: number; connections: () => number }> {
  let connections = 0;
  const server = createServer((socket) => {
    connections++;
    sockets.push(socket);
    socket.on("error", () => undefined);
    socket.once("data", () => {
      const ack = create(HelloAckSchema, { nodeId: BigInt(nodeId) });
      socket.write(encodeFrame(frame({ case: "helloAck", value: ack })));
      socket.resume(); // reads and discards everything after the hello
    });
  });
  servers.push(server);
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const address = server.address();
  if (address === null || typeof address === "string") throw new Error("no TCP address");
  return { port: address.port, connections: () => connections };
}

/** Calls `send` every `everyMs` until stopped. */
function every(everyMs: number, send: () => void): () => void {
  const timer = setInterval(send, everyMs);
  return () => clearInterval(timer);
}

describe("peer link liveness", () => {
  it("closes and redials a link whose peer stays silent past the limit", async () => {
    const peer = await mutePeer(2);
    const a = await startEndpoint(1, { limits: { silenceLimitMs: 500 } });
    open.push(a);
    a.transport.addPeer(2, `127.0.0.1:${peer.port}`);
    let sequence = 0;
    const stop = every(50, () => a.transport.send([numbered(1, 2, ++sequence)]));
    try {
      await waitFor(
        () => (a.transport.stats().get(2)?.connects ?? 0) >= 3,
        "two redials of the silent link",
        10_000,
      );
    } finally {
      stop();
    }
    expect(peer.connections()).toBeGreaterThanOrEqual(3);
    expect(a.transport.stats().get(2)?.livenessResets).toBeGreaterThanOrEqual(2);
    expect(a.logger.lines.some((l) => l.message.includes("silent past the limit"))).toBe(true);
  });

  it("never resets a link whose peer answers", async () => {
    const endpoints = await startMesh([1, 2], { limits: { silenceLimitMs: 1000 } });
    open.push(...endpoints.values());
    const a = endpoints.get(1)!;
    const b = endpoints.get(2)!;
    let sequence = 0;
    const stop = every(50, () => {
      a.transport.send([numbered(1, 2, ++sequence)]);
      b.transport.send([numbered(2, 1, sequence)]);
    });
    try {
      await waitFor(() => b.received.length >= 50, "50 messages each way", 20_000);
    } finally {
      stop();
    }
    expect(a.transport.stats().get(2)).toMatchObject({ livenessResets: 0, connects: 1 });
    expect(b.transport.stats().get(1)).toMatchObject({ livenessResets: 0, connects: 1 });
  });

  it("resets its old link to a peer that redialled this node", async () => {
    // Node 1's link to 2 is silent for 1 (node 2 never answers it); node 2 hears 1 all the time.
    const endpoints = await startMesh([1, 2], { limits: { silenceLimitMs: 600 } });
    open.push(...endpoints.values());
    const a = endpoints.get(1)!;
    const b = endpoints.get(2)!;
    let sequence = 0;
    const stop = every(50, () => {
      a.transport.send([numbered(1, 2, ++sequence)]);
      if (sequence === 1) b.transport.send([numbered(2, 1, 0)]);
    });
    try {
      // 1 resets its silent link and redials 2; 2 sees the redial and resets its link to 1.
      await waitFor(
        () => (b.transport.stats().get(1)?.livenessResets ?? 0) >= 1,
        "node 2 resetting its link after node 1 redialled",
        10_000,
      );
    } finally {
      stop();
    }
    expect(a.transport.stats().get(2)?.livenessResets).toBeGreaterThanOrEqual(1);
    expect(b.logger.lines.some((l) => l.message.includes("peer redialled this node"))).toBe(true);
  });
});
