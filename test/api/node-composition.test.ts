/**
 * `composeNode` builds what every node runs, real or simulated: the cluster state machine under
 * sessions behind the change feed and the apply notifier, the runtime with a real node's
 * heartbeat interval, and the coordination layer. Checked on three nodes over a loopback network
 * and a manual clock: commands of both namespaces apply through the whole stack, the feed and the
 * notifier see them, the lessor's service grants leases, and a leader heartbeats every
 * `defaultHeartbeatTicks` ticks.
 */
import { describe, expect, it } from "vitest";
import { defaultHeartbeatTicks } from "../../src/api/heartbeat-ticks.js";
import { composeNode, type ComposedNode } from "../../src/api/node-composition.js";
import { SeededRandom } from "../../src/common/random.js";
import { MessageType, type Message } from "../../src/raft/types.js";
import { encodeOrchestratorCommand } from "../../src/statemachine/cluster/index.js";
import { encodeKvCommand } from "../../src/statemachine/kv/command-codec.js";
import { encodeCommandEnvelope } from "../../src/statemachine/session/envelope.js";
import type { AppliedEntry } from "../../src/statemachine/state-machine.js";
import { MemoryLogStore } from "../../src/storage/memory-log-store.js";
import { LoopbackNetwork, ManualClock } from "../node/fakes.js";
import { res } from "../orchestrator/model/fixtures.js";

const TICK_MS = 10;
const ELECTION_TICKS = 10;

interface Cluster {
  readonly clock: ManualClock;
  readonly nodes: ComposedNode[];
  /** Every message sent, in order. */
  readonly sent: Message[];
  /** Entries the instrumented stacks applied, per node. */
  readonly applied: AppliedEntry[][];
  /** Callbacks handed to `defer`, not yet run. */
  readonly deferred: (() => void)[];
}

function cluster(): Cluster {
  const clock = new ManualClock();
  const network = new LoopbackNetwork();
  const sent: Message[] = [];
  network.dropIf = (m) => {
    sent.push(m);
    return false;
  };
  const voters = [1, 2, 3];
  const applied: AppliedEntry[][] = [];
  const deferred: (() => void)[] = [];
  const nodes = voters.map((id, i) => {
    const seen: AppliedEntry[] = [];
    applied.push(seen);
    return composeNode({
      id,
      platform: {
        clock,
        random: new SeededRandom(7 + i),
        logStore: new MemoryLogStore({
          confState: {
            voters,
            learners: [],
            votersOutgoing: [],
            learnersNext: [],
            autoLeave: false,
          },
        }),
        transport: network.transport(id),
        defer: (callback) => deferred.push(callback),
      },
      timing: { tickIntervalMs: TICK_MS, electionTicks: ELECTION_TICKS },
      instrument: (stack) => ({
        apply: (entry) => {
          seen.push(entry);
          return stack.apply(entry);
        },
        snapshot: () => stack.snapshot(),
        restore: (data) => stack.restore(data),
      }),
    });
  });
  for (const node of nodes) node.node.start();
  return { clock, nodes, sent, applied, deferred };
}

async function leaderOf(c: Cluster): Promise<ComposedNode> {
  for (let i = 0; i < 100; i++) {
    const leader = c.nodes.find((n) => n.node.isLeader);
    if (leader !== undefined) return leader;
    await c.clock.advance(TICK_MS);
  }
  throw new Error("no leader within 100 ticks");
}

function kvPut(key: string, value: string): Uint8Array {
  return encodeCommandEnvelope({
    proposedAtMs: 1,
    session: { clientId: "test", sequence: 1 },
    payload: encodeKvCommand({ op: "put", key, value: new TextEncoder().encode(value) }),
  });
}

describe("composeNode", () => {
  it("applies kv and orchestrator commands through the feed, the notifier and the instrument", async () => {
    const c = cluster();
    const leader = await leaderOf(c);
    let notified = 0;
    for (const n of c.nodes) n.applied.subscribe(() => notified++);

    const put = leader.node.propose(kvPut("a", "1"));
    await c.clock.advance(TICK_MS);
    expect(await put).toMatchObject({ ok: true, value: { op: "put" } });
    const register = leader.node.propose(
      encodeCommandEnvelope({
        proposedAtMs: 2,
        payload: encodeOrchestratorCommand({
          type: "registerWorker",
          nodeId: 1,
          capacity: res(2000, 2048, 10),
          features: [],
        }),
      }),
    );
    await c.clock.advance(TICK_MS);
    expect(await register).toMatchObject({ ok: true });
    await c.clock.advance(10 * TICK_MS);

    for (const [i, n] of c.nodes.entries()) {
      // The cluster state machine applied both namespaces on every replica.
      expect(new TextDecoder().decode(n.machine.read("a")?.value)).toBe("1");
      expect(n.machine.orchestrator.worker(1)).toBeDefined();
      // The feed recorded both changes, each at an index the instrument saw applied.
      const events: string[] = [];
      for (let seq = n.feed.firstSeq; seq < n.feed.nextSeq; seq++) {
        const record = n.feed.read(seq, n.feed.epoch);
        expect(c.applied[i]?.some((e) => e.index === record?.index)).toBe(true);
        for (const event of record?.events ?? []) events.push(`${event.topic}:${event.key}`);
      }
      expect(events).toEqual(["kv:a", "worker:1"]);
    }
    // Listeners run only through `defer`, never inside the apply loop.
    expect(notified).toBe(0);
    expect(c.deferred.length).toBeGreaterThan(0);
    for (const callback of c.deferred.splice(0)) callback();
    expect(notified).toBeGreaterThanOrEqual(c.nodes.length);
  });

  it("wires the lessor and the lease service on the node", async () => {
    const c = cluster();
    const leader = await leaderOf(c);
    leader.coordination.start();
    const grant = leader.coordination.service.grant(5_000);
    await c.clock.advance(TICK_MS);
    const lease = await grant;
    await c.clock.advance(10 * TICK_MS);
    for (const n of c.nodes) expect(n.machine.lease(lease.id)?.ttlMs).toBe(5_000);
    leader.coordination.close();
  });

  it("heartbeats as `blixard node start` does: every defaultHeartbeatTicks ticks", async () => {
    const c = cluster();
    const leader = await leaderOf(c);
    await c.clock.advance(10 * TICK_MS);
    c.sent.length = 0;
    const ticks = 40;
    await c.clock.advance(ticks * TICK_MS);
    const follower = c.nodes.find((n) => n !== leader)?.node.id;
    const heartbeats = c.sent.filter(
      (m) => m.type === MessageType.Heartbeat && m.from === leader.node.id && m.to === follower,
    ).length;
    expect(defaultHeartbeatTicks(ELECTION_TICKS)).toBe(4);
    expect(heartbeats).toBe(ticks / defaultHeartbeatTicks(ELECTION_TICKS));
  });
});
