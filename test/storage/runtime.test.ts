/**
 * The runtime on the real WAL: a three-node RaftNode cluster whose log stores are WalLogStores
 * on in-memory file systems takes writes, snapshots and compacts; then every node stops, its
 * machine loses what was not fsynced, and restarted nodes recover all applied data from disk.
 */
import { ListMachine } from "../node/fakes.js";
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../src/common/random.js";
import { RaftNode } from "../../src/node/raft-node.js";
import { MemoryFileSystem } from "../../src/storage/memory-fs.js";
import { WalLogStore } from "../../src/storage/wal-log-store.js";
import { LoopbackNetwork, ManualClock } from "../node/fakes.js";
import { VOTERS } from "./helpers.js";

const IDS = [1, 2, 3];
const DIR = "/var/lib/blixard";

async function startCluster(disks: Map<number, MemoryFileSystem>, clock: ManualClock) {
  const network = new LoopbackNetwork();
  const machines = new Map<number, ListMachine>();
  const nodes = new Map<number, RaftNode<number>>();
  for (const id of IDS) {
    const store = await WalLogStore.open(DIR, {
      fs: disks.get(id)!,
      confState: VOTERS,
      segmentSizeBytes: 4096,
    });
    const machine = new ListMachine();
    machines.set(id, machine);
    nodes.set(
      id,
      new RaftNode<number>({
        id,
        logStore: store,
        stateMachine: machine,
        transport: network.transport(id),
        clock,
        random: new SeededRandom(id * 7),
        snapshotEveryEntries: 10,
        snapshotTrailingEntries: 3,
      }),
    );
  }
  for (const node of nodes.values()) node.start();
  return { nodes, machines, network };
}

async function leaderOf(nodes: Map<number, RaftNode<number>>, clock: ManualClock) {
  for (let i = 0; i < 100; i++) {
    await clock.advance(100);
    const leader = [...nodes.values()].find((n) => n.isLeader);
    if (leader !== undefined) return leader;
  }
  throw new Error("no leader elected");
}

describe("RaftNode on WalLogStore", () => {
  it("recovers every applied command after all nodes stop and lose unsynced writes", async () => {
    const clock = new ManualClock();
    const disks = new Map(IDS.map((id) => [id, new MemoryFileSystem()]));
    const first = await startCluster(disks, clock);
    const leader = await leaderOf(first.nodes, clock);
    const expected = Array.from({ length: 45 }, (_, i) => `cmd${i}`);
    for (const command of expected) {
      const applied = leader.propose(new TextEncoder().encode(command));
      await clock.advance(5);
      await applied;
    }
    await clock.advance(500);
    for (const machine of first.machines.values()) expect(machine.items).toEqual(expected);
    expect(leader.status().snapshotIndex).toBeGreaterThan(0);
    for (const node of first.nodes.values()) await node.stop();
    for (const disk of disks.values()) disk.crash({ unsyncedWrites: "lose" });

    const second = await startCluster(disks, clock);
    await leaderOf(second.nodes, clock);
    await clock.advance(1000);
    for (const machine of second.machines.values()) expect(machine.items).toEqual(expected);
    const newLeader = [...second.nodes.values()].find((n) => n.isLeader)!;
    const more = newLeader.propose(new TextEncoder().encode("after restart"));
    await clock.advance(50);
    expect(await more).toBe(expected.length + 1);
    for (const node of second.nodes.values()) await node.stop();
  });

  it("catches a cut-off follower up with a snapshot the leader reads back from its file", async () => {
    const clock = new ManualClock();
    const disks = new Map(IDS.map((id) => [id, new MemoryFileSystem()]));
    const { nodes, machines, network } = await startCluster(disks, clock);
    const leader = await leaderOf(nodes, clock);
    const follower = IDS.find((id) => id !== leader.id) as number;
    network.dropIf = (m) => m.to === follower || m.from === follower;
    const expected = Array.from({ length: 40 }, (_, i) => `cmd${i}`);
    for (const command of expected) {
      const applied = leader.propose(new TextEncoder().encode(command));
      await clock.advance(5);
      await applied;
    }
    // Snapshots every 10 entries, 3 kept behind: the follower's next entry is long compacted,
    // and the leader's store keeps no snapshot data in memory (it must read the file).
    expect(leader.status().snapshotIndex).toBeGreaterThan(20);
    network.dropIf = () => false;
    await clock.advance(2000);
    expect(leader.status().snapshotsSent).toBeGreaterThan(0);
    expect(machines.get(follower)?.items).toEqual(expected);
    for (const node of nodes.values()) await node.stop();
  });
});
