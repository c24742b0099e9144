import { afterEach, describe, expect, it } from "vitest";
import { ListMachine } from "../node/fakes.js";
import { SeededRandom } from "../../src/common/random.js";
import { RaftNode } from "../../src/node/raft-node.js";
import { SystemClock } from "../../src/platform/clock.js";
import { MemoryLogStore } from "../../src/storage/memory-log-store.js";
import { TcpTransport } from "../../src/transport/tcp-transport.js";
import { waitFor } from "./helpers.js";

const ids = [1, 2, 3];
const voters = {
  voters: ids,
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
};
let running: RaftNode<number>[] = [];

afterEach(async () => {
  await Promise.all(running.map((n) => n.stop()));
  running = [];
});

async function tcpCluster(
  options: { snapshotEveryEntries?: number; snapshotTrailingEntries?: number } = {},
) {
  const clock = new SystemClock();
  const transports = new Map(
    ids.map((id) => [
      id,
      new TcpTransport({
        nodeId: id,
        clusterId: "raft-over-tcp",
        listen: { host: "127.0.0.1", port: 0 },
        clock,
        random: new SeededRandom(100 + id),
      }),
    ]),
  );
  for (const t of transports.values()) await t.start();
  for (const [id, t] of transports) {
    for (const [peer, other] of transports) if (peer !== id) t.addPeer(peer, other.address);
  }
  const machines = new Map(ids.map((id) => [id, new ListMachine()]));
  const nodes = ids.map(
    (id) =>
      new RaftNode<number>({
        id,
        logStore: new MemoryLogStore({ confState: voters }),
        stateMachine: machines.get(id)!,
        transport: transports.get(id)!,
        clock,
        random: new SeededRandom(id),
        // Short ticks keep the test fast; elections still take several round trips.
        tickIntervalMs: 10,
        ...options,
      }),
  );
  running = nodes;
  for (const node of nodes) node.start();
  return { nodes, machines, transports };
}

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);

describe("RaftNode over TcpTransport", () => {
  it("elects a leader and applies proposals on every node", async () => {
    const { nodes, machines } = await tcpCluster();
    await waitFor(() => nodes.some((n) => n.isLeader), "a leader", 10_000);
    const leader = nodes.find((n) => n.isLeader)!;
    const commands = Array.from({ length: 50 }, (_, i) => `cmd-${i}`);
    const results = await Promise.all(commands.map((c) => leader.propose(enc(c))));
    expect(results).toEqual(commands.map((_, i) => i + 1));
    await waitFor(
      () => [...machines.values()].every((m) => m.items.length === commands.length),
      "every node applied every command",
    );
    for (const m of machines.values()) expect(m.items).toEqual(commands);
  });

  it("catches a lagging follower up through a snapshot sent over the wire", async () => {
    const { nodes, machines, transports } = await tcpCluster({
      snapshotEveryEntries: 20,
      snapshotTrailingEntries: 5,
    });
    await waitFor(() => nodes.some((n) => n.isLeader), "a leader", 10_000);
    const leader = nodes.find((n) => n.isLeader)!;
    const lagging = nodes.find((n) => !n.isLeader)!;
    // Cut the follower off both ways by forgetting it on the other nodes.
    for (const node of nodes) {
      if (node !== lagging) transports.get(node.id)!.removePeer(lagging.id);
    }
    for (let i = 0; i < 100; i++) await leader.propose(enc(`x${i}`));
    for (const node of nodes) {
      if (node !== lagging) {
        transports.get(node.id)!.addPeer(lagging.id, transports.get(lagging.id)!.address);
      }
    }
    await waitFor(
      () => machines.get(lagging.id)!.items.length === 100,
      "the follower caught up",
      10_000,
    );
    expect(machines.get(lagging.id)!.items).toEqual(machines.get(leader.id)!.items);
    const sent = transports.get(leader.id)!.stats().get(lagging.id)!;
    expect(sent.snapshotsSent).toBeGreaterThanOrEqual(1);
  });
});
