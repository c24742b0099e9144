/**
 * One snapshot in flight per follower (etcd's StateSnapshot + ReportSnapshot), checked in the
 * simulator, which runs the real runtime and core. Snapshot data crosses the simulated link
 * slowly (bytes per ms), so a snapshot is in flight for many heartbeat intervals: a leader that
 * resumed probing before the transport reported the snapshot's outcome would send it again.
 */
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../src/common/random.js";
import type { NodeId } from "../../src/raft/types.js";
import { SimCluster } from "../../src/sim/cluster.js";
import { DEFAULT_DISK } from "../../src/sim/disk.js";
import { CALM_NETWORK, SimNetwork } from "../../src/sim/network.js";
import { fork, TraceHash } from "../../src/sim/rng.js";
import { Scheduler } from "../../src/sim/scheduler.js";
import { encodeKvCommand } from "../../src/statemachine/kv/index.js";
import { encodeCommandEnvelope } from "../../src/statemachine/session/envelope.js";

const VALUE_BYTES = 1024;
const KEYS = 150;
/** ~150 KB of state over 40 bytes/ms: about 4 s in flight, 40 heartbeat intervals. */
const SNAPSHOT_BYTES_PER_MS = 40;

function setUp(seed: number) {
  const scheduler = new Scheduler();
  const random = new SeededRandom(seed);
  const network = new SimNetwork(scheduler, fork(random), CALM_NETWORK, new TraceHash());
  network.snapshotBytesPerMs = SNAPSHOT_BYTES_PER_MS;
  const cluster = new SimCluster(
    scheduler,
    fork(random),
    network,
    {
      initialVoters: 3,
      tickIntervalMs: 100,
      electionTicks: 10,
      maxSizePerMsgBytes: 64 * 1024,
      operationTimeoutMs: 5000,
      snapshotEveryEntries: 20,
      snapshotTrailingEntries: 5,
      disk: DEFAULT_DISK,
      clientDelayMs: { min: 1, max: 5 },
      bugs: {},
    },
    { onApply: () => {}, onFatal: (id, error) => fatal.push(`${id}: ${error.message}`) },
  );
  const fatal: string[] = [];
  cluster.bootstrap();
  const leader = (): NodeId | undefined =>
    cluster.liveIds().find((id) => cluster.runningNode(id)?.isLeader === true);
  return { scheduler, network, cluster, leader, fatal };
}

async function put(
  env: ReturnType<typeof setUp>,
  leaderId: NodeId,
  key: string,
  sequence: number,
): Promise<void> {
  const value = new Uint8Array(VALUE_BYTES).fill(sequence % 251);
  const data = encodeCommandEnvelope({
    proposedAtMs: 1_700_000_000_000 + env.scheduler.now(),
    session: { clientId: "filler", sequence },
    payload: encodeKvCommand({ op: "put", key, value }),
  });
  const done = env.cluster.runningNode(leaderId)!.propose(data);
  let settled = false;
  void done.then(
    () => (settled = true),
    () => (settled = true),
  );
  await env.scheduler.runUntil(() => settled);
  await done;
}

describe("snapshot flight (simulator, large state, slow link)", () => {
  for (const seed of [1, 2, 3]) {
    it(`sends a lagging follower one snapshot at a time, once, and catches it up (seed ${seed})`, async () => {
      const env = setUp(seed);
      await env.scheduler.runUntil(() => env.leader() !== undefined);
      const leaderId = env.leader()!;
      const lagging = env.cluster.liveIds().find((id) => id !== leaderId)!;
      // Cut the follower off while the state grows and the log is compacted past it.
      env.cluster.crash(lagging);
      for (let i = 0; i < KEYS; i++) await put(env, leaderId, `key-${i}`, i + 1);
      const leaderNode = env.cluster.runningNode(leaderId)!;
      expect(leaderNode.status().snapshotIndex).toBeGreaterThan(KEYS / 2);
      const sentBefore = env.network.stats.snapshotsSent;

      env.cluster.restart(lagging);
      const caughtUp = (): boolean =>
        env.cluster.runningNode(lagging)?.status().applied === leaderNode.status().applied;
      await env.scheduler.runUntil(caughtUp, { maxEvents: 2_000_000 });
      // Let a few more heartbeat rounds pass: nothing else must be sent.
      await env.scheduler.runUntil(env.scheduler.now() + 3000);

      expect(env.fatal).toEqual([]);
      expect(caughtUp()).toBe(true);
      expect(env.leader()).toBe(leaderId);
      expect(env.network.stats.maxSnapshotsInFlightPerLink).toBe(1);
      expect(env.network.stats.snapshotsSent - sentBefore).toBe(1);
      expect(leaderNode.status().snapshotsSent).toBe(1);
    });
  }

  it("sends a new snapshot after a lost one, and only then", async () => {
    const env = setUp(7);
    await env.scheduler.runUntil(() => env.leader() !== undefined);
    const leaderId = env.leader()!;
    const lagging = env.cluster.liveIds().find((id) => id !== leaderId)!;
    env.cluster.crash(lagging);
    for (let i = 0; i < KEYS; i++) await put(env, leaderId, `key-${i}`, i + 1);
    const leaderNode = env.cluster.runningNode(leaderId)!;

    env.cluster.restart(lagging);
    // The first snapshot is cut off mid-flight: its link breaks (the outcome is a failure).
    await env.scheduler.runUntil(() => env.network.stats.snapshotsSent === 1, {
      maxEvents: 1_000_000,
    });
    env.network.partition([[leaderId], [lagging]]);
    await env.scheduler.runUntil(env.scheduler.now() + 6000);
    expect(env.network.stats.snapshotsSent).toBe(1);
    env.network.healPartitions();
    const caughtUp = (): boolean =>
      env.cluster.runningNode(lagging)?.status().applied === leaderNode.status().applied;
    await env.scheduler.runUntil(caughtUp, { maxEvents: 2_000_000 });
    expect(caughtUp()).toBe(true);
    expect(env.network.stats.maxSnapshotsInFlightPerLink).toBe(1);
    expect(env.network.stats.snapshotsSent).toBe(2);
  });
});
