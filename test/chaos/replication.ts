/**
 * When a healed cluster counts as "back in replication", decided from the nodes' statuses.
 *
 * A member is back when it holds and has applied everything the cluster had committed when the
 * fault healed: the leader's match index for it, and its own applied index, reach that commit
 * index. The commit index at the time of the check is the wrong target while clients keep
 * writing: in a three-node cluster the leader commits with its faster follower, so the other one
 * is always a round trip behind a moving commit index, however healthy, and whether a poll sees
 * it caught up is a race with the writes (on a loaded machine it can lose for 30 s). The issue's
 * own wording is "match index advancing"; reaching the heal's commit index is that, measured.
 */
import type { NodeStatus } from "./nodes.js";

/** The commit index to reach: the highest any answering node reports (undefined: none answers). */
export function replicationTarget(statuses: ReadonlyMap<number, NodeStatus>): number | undefined {
  let target: number | undefined;
  for (const status of statuses.values()) {
    if (target === undefined || status.commitIndex > target) target = status.commitIndex;
  }
  return target;
}

/** The leader among `statuses`: the highest term's node that says it leads. */
export function leaderStatus(statuses: ReadonlyMap<number, NodeStatus>): NodeStatus | undefined {
  let best: NodeStatus | undefined;
  for (const status of statuses.values()) {
    if (status.role === "leader" && (best === undefined || status.term > best.term)) best = status;
  }
  return best;
}

/**
 * True if every member in `members` answered, and both its applied index and the leader's match
 * index for it reach `target`. With `target` undefined the leader's current commit index is the
 * target (the strict, moving one; see the module comment).
 */
export function replicated(
  statuses: ReadonlyMap<number, NodeStatus>,
  members: readonly number[],
  target: number | undefined,
): boolean {
  const leader = leaderStatus(statuses);
  if (leader === undefined) return false;
  const wanted = target ?? leader.commitIndex;
  if (leader.commitIndex < wanted) return false;
  for (const id of members) {
    const status = statuses.get(id);
    const match =
      leader.progress.find((p) => p.id === id)?.match ?? (id === leader.id ? leader.lastIndex : 0);
    if (status === undefined || status.appliedIndex < wanted || match < wanted) return false;
  }
  return true;
}
