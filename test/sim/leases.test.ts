/**
 * Leases in the simulator: the real runtime (`RaftNode`) on 3 simulated nodes, a `Lessor` and
 * the `CoordinationService` keep-alive path on each, and a client that grants a lease and renews
 * it at whichever node leads, while the leader is paused (longer than the TTL) or crashed again
 * and again. The checker: no lease expires before a renewal the client saw succeed ran out,
 * measured on the client's (virtual) clock from the renewal's send. It must pass for the real
 * lessor and catch the planted bug (deadlines kept across terms). Replays from the seed.
 */
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../src/common/random.js";
import type { NodeId } from "../../src/raft/types.js";
import {
  checkNoEarlyExpiry,
  type AcknowledgedRenewal,
  type ObservedExpiry,
} from "../../src/sim/checkers/coordination.js";
import { SimCluster, type ClusterOptions } from "../../src/sim/cluster.js";
import { DEFAULT_DISK } from "../../src/sim/disk.js";
import { CALM_NETWORK, SimNetwork } from "../../src/sim/network.js";
import { TraceHash, between, chance, fork } from "../../src/sim/rng.js";
import { Scheduler } from "../../src/sim/scheduler.js";
import type { ObservedStateMachine } from "../../src/sim/state-machine.js";

const TTL_MS = 2500;
const RENEW_EVERY_MS = 400;
const POLL_MS = 5;

async function run(seed: number, planted: boolean, durationMs: number) {
  const root = new SeededRandom(seed);
  const scheduler = new Scheduler();
  const network = new SimNetwork(scheduler, fork(root), CALM_NETWORK, new TraceHash());
  const options: ClusterOptions = {
    initialVoters: 3,
    tickIntervalMs: 100,
    electionTicks: 10,
    maxSizePerMsgBytes: 1024 * 1024,
    operationTimeoutMs: 1000,
    snapshotEveryEntries: 50,
    snapshotTrailingEntries: 10,
    disk: DEFAULT_DISK,
    clientDelayMs: { min: 1, max: 5 },
    bugs: planted ? { keepLeaseDeadlinesAcrossTerms: true } : {},
  };
  const fatal: Error[] = [];
  const cluster = new SimCluster(scheduler, fork(root), network, options, {
    onApply: () => undefined,
    onFatal: (_id, error) => fatal.push(error),
  });
  cluster.bootstrap();

  const renewals: AcknowledgedRenewal[] = [];
  const expiries: ObservedExpiry[] = [];
  const live = new Set<number>();
  const random = fork(root);
  let leaderFaults = 0;
  const leaderId = (): NodeId | undefined =>
    cluster.liveIds().find((id) => cluster.runningNode(id)?.isLeader === true);

  // A call on a node that crashes meanwhile never settles (its timers died with it), as a real
  // client's connection would drop: the client gives up after a while, like cluster.call.
  const CALL_TIMEOUT_MS = 3000;
  const within = <T>(call: Promise<T>): Promise<T> =>
    new Promise<T>((resolve, reject) => {
      const timer = scheduler.schedule(CALL_TIMEOUT_MS, () => reject(new Error("no response")));
      call.then(
        (value) => {
          timer.cancel();
          resolve(value);
        },
        (error: unknown) => {
          timer.cancel();
          reject(error instanceof Error ? error : new Error(String(error)));
        },
      );
    });

  // The client: keeps one lease alive at whichever node leads; grants a new one when it lost it.
  const client = async () => {
    let lease: number | undefined;
    let turns = 0;
    while (scheduler.now() < durationMs) {
      // Now and then the client walks away from its lease (a crashed holder): it must expire.
      if (++turns % 12 === 0) lease = undefined;
      const id = leaderId();
      const service = id === undefined ? undefined : cluster.coordination(id);
      const sentAtMs = scheduler.now();
      if (service !== undefined) {
        try {
          if (lease === undefined || !live.has(lease)) {
            const granted = await within(service.grant(TTL_MS));
            lease = granted.id;
            live.add(lease);
            renewals.push({ lease, sentAtMs, ttlMs: TTL_MS });
          } else {
            const [renewed] = await within(service.keepAlive([lease]));
            if (renewed !== undefined && renewed.ttlMs > 0) {
              renewals.push({ lease, sentAtMs, ttlMs: TTL_MS });
            }
          }
        } catch {
          // Not the leader any more, or timed out: try again at the next turn.
        }
      }
      await new Promise<void>((resolve) => scheduler.schedule(RENEW_EVERY_MS, resolve));
    }
  };

  // The observer: a lease expired once a replica that held it no longer does (a replica's state
  // only moves forward; a restarted one is a new state machine instance, tracked afresh).
  const seenBy = new WeakMap<ObservedStateMachine, Set<number>>();
  const observe = () => {
    for (const id of cluster.liveIds()) {
      const machine = cluster.slot(id).stateMachine;
      if (machine === undefined) continue;
      let seen = seenBy.get(machine);
      if (seen === undefined) seenBy.set(machine, (seen = new Set()));
      for (const lease of [...live]) {
        if (machine.machine.lease(lease) !== undefined) seen.add(lease);
        else if (seen.has(lease)) {
          live.delete(lease);
          expiries.push({ lease, expiredAtMs: scheduler.now() });
        }
      }
    }
    if (scheduler.now() < durationMs) scheduler.schedule(POLL_MS, observe);
  };

  // The nemesis: again and again, pause the leader past the TTL, or crash and restart it.
  const nemesis = () => {
    const id = leaderId();
    if (id !== undefined) {
      leaderFaults++;
      if (chance(random, 0.5)) {
        cluster.pause(id);
        scheduler.schedule(between(random, TTL_MS, 2 * TTL_MS), () => cluster.resume(id));
      } else {
        cluster.crash(id);
        scheduler.schedule(between(random, 200, 1500), () => cluster.restart(id));
      }
    }
    if (scheduler.now() < durationMs) scheduler.schedule(between(random, 2000, 5000), nemesis);
  };

  scheduler.schedule(1500, nemesis);
  scheduler.schedule(POLL_MS, observe);
  // The client's last call may still wait on events past the end: it is not awaited.
  void client();
  await scheduler.runUntil(durationMs + 5000);
  return {
    violations: checkNoEarlyExpiry(renewals, expiries),
    renewals,
    expiries,
    leaderFaults,
    fatal,
  };
}

describe("leases in the simulator", () => {
  it("no lease expires early while leaders are paused past the TTL and crashed", async () => {
    for (const seed of [1, 2, 3]) {
      const result = await run(seed, false, 40_000);
      expect(result.fatal).toEqual([]);
      expect(result.violations, `seed ${seed}`).toEqual([]);
      // The run was not degenerate: leaders were hurt, leases renewed, and some expired.
      expect(result.leaderFaults).toBeGreaterThanOrEqual(5);
      expect(result.renewals.length).toBeGreaterThan(30);
      expect(result.expiries.length).toBeGreaterThan(0);
    }
  });

  it("catches the planted bug: a leader that kept deadlines from a lost term expires early", async () => {
    let caught = 0;
    for (const seed of [1, 2, 3, 4, 5, 6]) {
      const result = await run(seed, true, 40_000);
      if (result.violations.length > 0) caught++;
    }
    expect(caught).toBeGreaterThan(0);
  });
});
