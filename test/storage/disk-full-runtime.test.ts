/**
 * The runtime on a full disk: three RaftNodes on WalLogStores over in-memory file systems, one
 * of whose disks fills up. A full leader refuses writes with STORAGE_FULL and goes silent (it
 * persists, acknowledges and votes nothing), so the others elect a leader that can write; a full
 * follower stops acknowledging; either catches up by itself once space is freed, and every
 * state machine ends equal.
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
const encode = (text: string): Uint8Array => new TextEncoder().encode(text);

async function startCluster(clock: ManualClock) {
  const network = new LoopbackNetwork();
  const disks = new Map(IDS.map((id) => [id, new MemoryFileSystem()]));
  const machines = new Map<number, ListMachine>();
  const nodes = new Map<number, RaftNode<number>>();
  for (const id of IDS) {
    const store = await WalLogStore.open(DIR, {
      fs: disks.get(id)!,
      confState: VOTERS,
      sleep: (ms) => new Promise((resolve) => clock.setTimer(ms, resolve)),
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
        random: new SeededRandom(id * 11),
        raft: { checkQuorum: true, preVote: true },
      }),
    );
  }
  for (const node of nodes.values()) node.start();
  return { nodes, machines, disks };
}

async function waitLeader(
  nodes: Map<number, RaftNode<number>>,
  clock: ManualClock,
  except?: number,
): Promise<RaftNode<number>> {
  for (let i = 0; i < 200; i++) {
    await clock.advance(50);
    const leader = [...nodes.values()].find((n) => n.isLeader && n.id !== except);
    if (leader !== undefined) return leader;
  }
  throw new Error("no leader elected");
}

/** Proposes `command` on `node` and runs the clock until it settles. */
async function write(node: RaftNode<number>, clock: ManualClock, command: string) {
  const result = node.propose(encode(command), { timeoutMs: 2000 }).then(
    (value) => ({ ok: true as const, value }),
    (error: Error & { code?: string }) => ({ ok: false as const, code: error.code }),
  );
  await clock.advance(50);
  for (let i = 0; i < 50; i++) {
    const settled = await Promise.race([result, Promise.resolve(undefined)]);
    if (settled !== undefined) return settled;
    await clock.advance(50);
  }
  return result;
}

describe("RaftNode on a full disk", () => {
  it("a full leader refuses writes, another node leads, and the old leader catches up once space is freed", async () => {
    const clock = new ManualClock();
    const { nodes, machines, disks } = await startCluster(clock);
    const leader = await waitLeader(nodes, clock);
    for (let i = 0; i < 5; i++) expect((await write(leader, clock, `a${i}`)).ok).toBe(true);

    const disk = disks.get(leader.id)!;
    disk.capacityBytes = disk.usedBytes();
    // The first write finds the disk full only when its own append fails: its outcome is
    // unknown to the client (it may still commit through the followers).
    await write(leader, clock, "unknown");
    const refused = await write(leader, clock, "refused");
    expect(refused.ok).toBe(false);
    if (!refused.ok) expect(["STORAGE_FULL", "NOT_LEADER"]).toContain(refused.code);

    const next = await waitLeader(nodes, clock, leader.id);
    expect(leader.isLeader).toBe(false);
    for (let i = 0; i < 5; i++) expect((await write(next, clock, `b${i}`)).ok).toBe(true);

    disk.capacityBytes = undefined;
    await clock.advance(3000);
    const reference = machines.get(next.id)!.items;
    expect(reference.filter((item) => item.startsWith("b"))).toHaveLength(5);
    for (const id of IDS) expect(machines.get(id)!.items).toEqual(reference);
    expect(leader.status().applied).toBe(next.status().applied);
    for (const node of nodes.values()) await node.stop();
  });

  it("a full follower stops acknowledging; the others go on and it catches up once space is freed", async () => {
    const clock = new ManualClock();
    const { nodes, machines, disks } = await startCluster(clock);
    const leader = await waitLeader(nodes, clock);
    const follower = IDS.find((id) => id !== leader.id)!;
    const disk = disks.get(follower)!;
    disk.capacityBytes = disk.usedBytes();
    for (let i = 0; i < 10; i++) expect((await write(leader, clock, `c${i}`)).ok).toBe(true);
    expect(machines.get(follower)!.items).toEqual([]);
    expect(nodes.get(follower)!.status().stopped).toBe(false);

    disk.capacityBytes = undefined;
    await clock.advance(3000);
    expect(machines.get(follower)!.items).toEqual(machines.get(leader.id)!.items);
    expect(machines.get(follower)!.items).toHaveLength(10);
    for (const node of nodes.values()) await node.stop();
  });
});
