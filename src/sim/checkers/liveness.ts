/**
 * Liveness after the faults heal: within a bound of virtual time a leader is elected, every
 * pending client operation completes, and the replicas converge to the same state.
 */
import { digestBytes } from "../rng.js";
import type { SimCluster } from "../cluster.js";
import type { Violation } from "./violation.js";

/** The liveness bounds, in virtual ms after the heal. */
export interface LivenessBounds {
  /** A leader must exist within this long of the heal. */
  readonly leaderWithinMs: number;
  /** Every client operation must complete within this long of the heal. */
  readonly operationsWithinMs: number;
}

/** Tracks liveness from the moment every fault healed. */
export class LivenessChecker {
  readonly violations: Violation[] = [];
  private healedAtMs: number | undefined;
  private leaderAtMs: number | undefined;

  constructor(
    private readonly bounds: LivenessBounds,
    private readonly now: () => number,
  ) {}

  /** Every fault healed now. */
  onHealed(): void {
    this.healedAtMs = this.now();
  }

  /** Virtual time by which every operation must be done. */
  get operationsDeadlineMs(): number {
    return (this.healedAtMs ?? 0) + this.bounds.operationsWithinMs;
  }

  /** Call after every event: notes the first leader after the heal. */
  observe(cluster: SimCluster): void {
    if (this.healedAtMs === undefined || this.leaderAtMs !== undefined) return;
    for (const id of cluster.liveIds()) {
      if (cluster.runningNode(id)?.isLeader === true) {
        this.leaderAtMs = this.now();
        return;
      }
    }
  }

  /** Virtual ms from the heal to the first leader, if one was seen. */
  get leaderElectedAfterMs(): number | undefined {
    return this.leaderAtMs === undefined || this.healedAtMs === undefined
      ? undefined
      : this.leaderAtMs - this.healedAtMs;
  }

  /** Records a violation unless a leader appeared in time and no operation is left pending. */
  finish(pendingOperations: readonly string[]): void {
    const electedAfter = this.leaderElectedAfterMs;
    if (electedAfter === undefined || electedAfter > this.bounds.leaderWithinMs) {
      this.violations.push({
        property: "liveness-leader",
        message: `no leader within ${this.bounds.leaderWithinMs} ms of the heal (first after ${electedAfter ?? "never"} ms)`,
        atMs: this.now(),
      });
    }
    if (pendingOperations.length > 0) {
      this.violations.push({
        property: "liveness-operations",
        message: `${pendingOperations.length} operations still pending ${this.bounds.operationsWithinMs} ms after the heal: ${pendingOperations.slice(0, 5).join("; ")}`,
        atMs: this.now(),
      });
    }
  }

  /**
   * True when every running member of the leader's configuration has applied the leader's
   * commit index (the replicas can be compared).
   */
  static converged(cluster: SimCluster): boolean {
    const members = currentMembers(cluster);
    if (members === undefined) return false;
    const commit = members.leaderCommit;
    return members.nodes.every((n) => n.status().applied >= commit && n.status().commit >= commit);
  }

  /** Compares the state machines of the converged members (equal applied index, equal bytes). */
  checkConvergence(cluster: SimCluster): void {
    const members = currentMembers(cluster);
    if (members === undefined || !LivenessChecker.converged(cluster)) {
      this.violations.push({
        property: "liveness-convergence",
        message: `the replicas did not converge to the leader's commit index after the heal: ${describeNodes(cluster)}`,
        atMs: this.now(),
      });
      return;
    }
    const digests = new Map<string, number[]>();
    for (const node of members.nodes) {
      const applied = node.status().applied;
      const digest = `${applied}:${digestBytes(node.readStale((sm) => sm.snapshot()))}`;
      digests.set(digest, [...(digests.get(digest) ?? []), node.id]);
    }
    if (digests.size > 1) {
      this.violations.push({
        property: "state-machine-safety",
        message: `replicas differ after converging: ${[...digests].map(([d, ids]) => `nodes ${ids.join(",")} at ${d}`).join("; ")}`,
        atMs: this.now(),
      });
    }
  }
}

function currentMembers(cluster: SimCluster) {
  const leaders = cluster
    .liveIds()
    .map((id) => cluster.runningNode(id))
    .filter((n) => n?.isLeader === true);
  const leader = leaders[0];
  if (leader === undefined || leaders.length > 1) return undefined;
  const status = leader.status();
  const ids = [...status.config.voters, ...status.config.learners];
  const nodes = ids.map((id) => cluster.runningNode(id));
  if (nodes.some((n) => n === undefined)) return undefined;
  return { leaderCommit: status.commit, nodes: nodes as NonNullable<(typeof nodes)[number]>[] };
}

/** Each node's state, role, term, commit and applied index, for reports. */
export function describeNodes(cluster: SimCluster): string {
  return [...cluster.slots.values()]
    .map((slot) => {
      const status = slot.node?.status();
      if (status === undefined) return `${slot.id}:${slot.state}`;
      const c = status.config;
      return (
        `${slot.id}:${slot.state}/${status.role} term ${status.term} commit ${status.commit} ` +
        `applied ${status.applied} last ${status.lastIndex} voters [${c.voters.join(",")}] learners [${c.learners.join(",")}]`
      );
    })
    .join("; ");
}
