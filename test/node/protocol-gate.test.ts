/**
 * The cluster's protocol gate (src/node/protocol-gate.ts) in the runtime: while a member of
 * protocol 1 is in the configuration no follower forwards and no leader appends a forwarded
 * proposal; the leader publishes the protocol entry only once every member speaks 2; from that
 * entry on followers forward, and every node's state machine sees only commands.
 */
import { ListMachine } from "./fakes.js";
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../src/common/random.js";
import { encodeForwardedProposal } from "../../src/node/forwarded-proposal.js";
import {
  encodeProtocolEntry,
  ProtocolGate,
  protocolEntryVersion,
  protocolToPublish,
} from "../../src/node/protocol-gate.js";
import { ProtocolPublisher } from "../../src/node/protocol-publisher.js";
import { RaftNode } from "../../src/node/raft-node.js";
import { EntryType, message, MessageType } from "../../src/raft/types.js";
import { MemoryLogStore } from "../../src/storage/memory-log-store.js";
import { SILENT_LOGGER } from "../../src/common/logger.js";
import { LoopbackNetwork, ManualClock } from "./fakes.js";

const enc = (s: string): Uint8Array => new TextEncoder().encode(s);
const ids = [1, 2, 3];
const voters = {
  voters: ids,
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
};

/** Three nodes; `versions` gives each node's newest protocol (default 2). */
function cluster(versions: Readonly<Record<number, number>> = {}) {
  const clock = new ManualClock();
  const network = new LoopbackNetwork();
  const machines = new Map(ids.map((id) => [id, new ListMachine()]));
  const raised: { id: number; version: number; index: number }[] = [];
  const gates = new Map(
    ids.map((id) => [
      id,
      new ProtocolGate({
        nodeVersion: versions[id] ?? 2,
        onClusterVersion: (version, index) => raised.push({ id, version, index }),
      }),
    ]),
  );
  const nodes = new Map(
    ids.map((id) => [
      id,
      new RaftNode<number>({
        id,
        logStore: new MemoryLogStore({ confState: voters }),
        stateMachine: machines.get(id)!,
        transport: network.transport(id),
        clock,
        random: new SeededRandom(id),
        protocolGate: gates.get(id)!,
      }),
    ]),
  );
  for (const node of nodes.values()) node.start();
  return { clock, network, nodes, machines, gates, raised, versions };
}

type Cluster = ReturnType<typeof cluster>;

async function electedLeader(c: Cluster): Promise<RaftNode<number>> {
  for (let i = 0; i < 100; i++) {
    await c.clock.advance(100);
    const leader = [...c.nodes.values()].find((n) => n.isLeader);
    if (leader !== undefined) return leader;
  }
  throw new Error("no leader elected");
}

/** A publisher on `leader` that knows every peer's version from `c.versions`. */
function publisher(c: Cluster, leader: RaftNode<number>): ProtocolPublisher {
  return new ProtocolPublisher({
    gate: c.gates.get(leader.id)!,
    node: leader,
    peerVersion: (id) => c.versions[id] ?? 2,
    logger: SILENT_LOGGER,
  });
}

/** Hands the leader a forwarded proposal as a follower of this release would send it. */
function forwardByHand(c: Cluster, from: number, to: number, command: string): void {
  c.network.transport(from).send([
    message({
      type: MessageType.Prop,
      from,
      to,
      entries: [
        {
          term: 0,
          index: 0,
          type: EntryType.Normal,
          data: encodeForwardedProposal(from, 7, 1, enc(command)),
        },
      ],
    }),
  ]);
}

describe("the protocol gate: deciding", () => {
  const gate = new ProtocolGate();
  const input = (versions: Record<number, number | undefined>, leader = true) => ({
    gate,
    leader,
    selfId: 1,
    members: [1, 2, 3],
    peerVersion: (id: number) => versions[id],
  });

  it("stays closed while one member speaks 1 or was never heard, opens when the last one speaks 2", () => {
    expect(protocolToPublish(input({ 2: 2, 3: 1 }))).toBeUndefined();
    expect(protocolToPublish(input({ 2: 2 }))).toBeUndefined();
    expect(protocolToPublish(input({ 2: 2, 3: 2 }))).toBe(2);
    // Only a leader publishes, and a node of the previous release never does.
    expect(protocolToPublish(input({ 2: 2, 3: 2 }, false))).toBeUndefined();
    expect(
      protocolToPublish({ ...input({ 2: 2, 3: 2 }), gate: new ProtocolGate({ nodeVersion: 1 }) }),
    ).toBeUndefined();
  });

  it("a protocol entry is three bytes that no command starts with, and only rises", () => {
    expect([...encodeProtocolEntry(2)]).toEqual([0xf1, 0, 2]);
    expect(protocolEntryVersion(encodeProtocolEntry(300))).toBe(300);
    expect(protocolEntryVersion(new Uint8Array([0xf1, 0, 2, 0]))).toBeUndefined();
    expect(protocolEntryVersion(enc("abc"))).toBeUndefined();
    const g = new ProtocolGate();
    g.onApplied(2, 10);
    g.onApplied(1, 11);
    expect(g.clusterVersion).toBe(2);
    expect(g.openedAtIndex).toBe(10);
  });
});

describe("the protocol gate in the runtime", () => {
  it("with a member on protocol 1: followers refuse with NOT_LEADER (the HTTP forward), the leader drops forwarded proposals, nothing is published", async () => {
    const c = cluster({ 3: 1 });
    const leader = await electedLeader(c);
    await c.clock.advance(200);
    const follower = [...c.nodes.values()].find((n) => !n.isLeader && n.id !== 3)!;
    await expect(follower.propose(enc("x"))).rejects.toMatchObject({
      code: "NOT_LEADER",
      leaderHint: { id: leader.id },
    });
    expect(follower.status().proposalsForwarded).toBe(0);

    // A forwarded proposal reaching the leader anyway is not appended.
    forwardByHand(c, follower.id, leader.id, "smuggled");
    publisher(c, leader).check();
    await c.clock.advance(500);
    expect(leader.status().forwardedProposalsRefused).toBe(1);
    for (const node of c.nodes.values()) {
      expect(node.status()).toMatchObject({
        clusterProtocolVersion: 1,
        forwardedEntriesApplied: 0,
      });
    }
    for (const m of c.machines.values()) expect(m.items).toEqual([]);
  });

  it("opens when the last member speaks 2: one protocol entry, then followers forward and every state machine sees bare commands", async () => {
    const c = cluster();
    const leader = await electedLeader(c);
    await c.clock.advance(200);
    const follower = [...c.nodes.values()].find((n) => !n.isLeader)!;
    await expect(follower.propose(enc("before"))).rejects.toMatchObject({ code: "NOT_LEADER" });

    publisher(c, leader).check();
    await c.clock.advance(300);
    expect(c.raised.map((r) => [r.id, r.version]).sort()).toEqual([
      [1, 2],
      [2, 2],
      [3, 2],
    ]);
    const index = c.raised[0]!.index;
    expect(c.raised.every((r) => r.index === index)).toBe(true);

    const write = follower.propose(enc("after"));
    await c.clock.advance(100);
    expect(await write).toBe(1);
    expect(follower.status().proposalsForwarded).toBe(1);
    for (const node of c.nodes.values()) {
      expect(node.status()).toMatchObject({
        clusterProtocolVersion: 2,
        forwardedEntriesApplied: 1,
      });
      expect(node.status().firstForwardedIndex).toBeGreaterThan(index);
    }
    // The protocol entry never reached a state machine; the forwarded command did, bare.
    for (const m of c.machines.values()) expect(m.items).toEqual(["after"]);
  });

  it("a leader takes a forwarded proposal once the opening entry is committed, before it applied it", async () => {
    const c = cluster();
    const leader = await electedLeader(c);
    await c.clock.advance(200);
    const follower = [...c.nodes.values()].find((n) => !n.isLeader)!;
    const gate = c.gates.get(leader.id)!;
    void leader.propose(encodeProtocolEntry(2), { leaderOnly: true });
    await c.clock.advance(300);
    expect(gate.forwarding).toBe(true);
    // As if the entry were committed but not yet applied here.
    const fresh = new ProtocolGate();
    fresh.onStored(5, encodeProtocolEntry(2));
    expect(fresh.acceptsForwarded(4)).toBe(false);
    expect(fresh.acceptsForwarded(5)).toBe(true);
    expect(new ProtocolGate({ nodeVersion: 1 }).acceptsForwarded(100)).toBe(false);
    expect(follower.status().clusterProtocolVersion).toBe(2);
  });

  it("a node of the previous release hands envelopes to its state machine as they are (why the gate exists)", async () => {
    const c = cluster({ 3: 1 });
    const leader = await electedLeader(c);
    await c.clock.advance(200);
    // Force what the gate prevents: a protocol entry and a forwarded proposal in the log.
    await Promise.all([
      leader.propose(encodeProtocolEntry(2), { leaderOnly: true }),
      c.clock.advance(300),
    ]);
    const follower = [...c.nodes.values()].find((n) => !n.isLeader && n.id !== 3)!;
    const write = follower.propose(enc("w"));
    await c.clock.advance(300);
    await write;
    const old = c.machines.get(3)!.items;
    expect(old).toHaveLength(2);
    expect(old[1]).not.toBe("w");
    expect(c.machines.get(leader.id)!.items).toEqual(["w"]);
  });
});
