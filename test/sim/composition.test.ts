/**
 * A simulated node is a real node's composition (`composeNode`) on the simulated platform: the
 * cluster state machine (kv and orchestrator commands in one log), the lessor and the lease
 * service, and every apply reported to the checkers through the observed stack.
 */
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../src/common/random.js";
import type { NodeId } from "../../src/raft/types.js";
import { SimCluster } from "../../src/sim/cluster.js";
import { kvCommandEntry, orchestratorCommandEntry } from "../../src/sim/commands.js";
import { DEFAULT_DISK } from "../../src/sim/disk.js";
import { CALM_NETWORK, SimNetwork } from "../../src/sim/network.js";
import { fork, TraceHash } from "../../src/sim/rng.js";
import { Scheduler } from "../../src/sim/scheduler.js";
import type { AppliedRecord } from "../../src/sim/state-machine.js";
import { res } from "../orchestrator/model/fixtures.js";

function setUp() {
  const scheduler = new Scheduler();
  const random = new SeededRandom(5);
  const network = new SimNetwork(scheduler, fork(random), CALM_NETWORK, new TraceHash());
  const applied = new Map<NodeId, AppliedRecord[]>();
  const fatal: string[] = [];
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
      snapshotEveryEntries: 1000,
      snapshotTrailingEntries: 5,
      disk: DEFAULT_DISK,
      clientDelayMs: { min: 1, max: 5 },
      bugs: {},
    },
    {
      onApply: (id, _incarnation, record) => {
        const records = applied.get(id) ?? [];
        records.push(record);
        applied.set(id, records);
      },
      onFatal: (id, error) => fatal.push(`${id}: ${error.message}`),
    },
  );
  cluster.bootstrap();
  return { scheduler, cluster, applied, fatal };
}

/** Runs the simulation until `promise` settles. */
async function settle<T>(scheduler: Scheduler, promise: Promise<T>): Promise<T> {
  let done = false;
  void promise.then(
    () => (done = true),
    () => (done = true),
  );
  await scheduler.runUntil(() => done);
  return promise;
}

describe("a simulated node", () => {
  it("runs a real node's composition: kv and orchestrator commands, leases, observed applies", async () => {
    const { scheduler, cluster, applied, fatal } = setUp();
    await scheduler.runUntil(() =>
      cluster.liveIds().some((id) => cluster.runningNode(id)?.isLeader === true),
    );
    const leader = cluster.liveIds().find((id) => cluster.runningNode(id)?.isLeader === true)!;

    const put = kvCommandEntry(
      { op: "put", key: "k", value: new TextEncoder().encode("v") },
      { nowMs: scheduler.now(), session: { clientId: "c", sequence: 1 } },
    );
    const putOutcome = await settle(
      scheduler,
      cluster.call(leader, (node) => node.propose(put), 5000),
    );
    expect(putOutcome).toMatchObject({ kind: "ok", value: { ok: true, value: { op: "put" } } });

    // A kv-only node would refuse the orchestrator's namespace byte.
    const register = orchestratorCommandEntry(
      { type: "registerWorker", nodeId: 2, capacity: res(2000, 2048, 10), features: [] },
      { nowMs: scheduler.now() },
    );
    const registerOutcome = await settle(
      scheduler,
      cluster.call(leader, (node) => node.propose(register), 5000),
    );
    expect(registerOutcome).toMatchObject({ kind: "ok", value: { ok: true } });

    const lease = await settle(scheduler, cluster.coordination(leader)!.grant(3000));
    const until = scheduler.now() + 1000;
    await scheduler.runUntil(() => scheduler.now() >= until);

    for (const id of cluster.liveIds()) {
      const machine = cluster.slot(id).stateMachine!.machine;
      expect(new TextDecoder().decode(machine.read("k")?.value)).toBe("v");
      expect(machine.orchestrator.worker(2)).toBeDefined();
      expect(machine.lease(lease.id)?.ttlMs).toBe(3000);
      // Every command reached the checkers: the put, the registration, the lease grant.
      expect(applied.get(id)?.length).toBe(3);
      expect(applied.get(id)?.at(-1)?.index).toBe(cluster.runningNode(id)?.status().applied);
    }
    expect(fatal).toEqual([]);
  });
});
