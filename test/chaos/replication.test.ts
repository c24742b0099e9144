/**
 * The fault suite's "back in replication" check (replication.ts): it must accept a member that
 * caught up to the heal's commit index while the commit index keeps moving, and reject one that
 * has not.
 */
import { describe, expect, it } from "vitest";
import type { NodeStatus } from "./nodes.js";
import { leaderStatus, replicated, replicationTarget } from "./replication.js";

function status(
  id: number,
  fields: Partial<NodeStatus> & Pick<NodeStatus, "commitIndex" | "appliedIndex">,
): NodeStatus {
  return {
    id,
    term: 5,
    role: "follower",
    leader: 1,
    lastIndex: fields.commitIndex,
    config: { voters: [1, 2, 3], learners: [] },
    progress: [],
    ...fields,
  };
}

/**
 * A busy three-node cluster as a poll sees it: the leader committed 1,000 with node 2; node 3
 * holds and applied 990 (one batch behind, as the slower follower always is while clients write).
 */
function busy(): Map<number, NodeStatus> {
  return new Map([
    [
      1,
      status(1, {
        role: "leader",
        commitIndex: 1000,
        appliedIndex: 1000,
        lastIndex: 1004,
        progress: [
          { id: 1, match: 1004 },
          { id: 2, match: 1004 },
          { id: 3, match: 990 },
        ],
      }),
    ],
    [2, status(2, { commitIndex: 1000, appliedIndex: 999 })],
    [3, status(3, { commitIndex: 990, appliedIndex: 990 })],
  ]);
}

describe("replicated", () => {
  it("counts a member that reached the heal's commit index, though the commit index moved on", () => {
    expect(replicated(busy(), [1, 2, 3], 950)).toBe(true);
    // The moving target never counts the slower follower while the writes go on.
    expect(replicated(busy(), [1, 2, 3], undefined)).toBe(false);
  });

  it("does not count a member below the heal's commit index, by match or by applied index", () => {
    expect(replicated(busy(), [1, 2, 3], 995)).toBe(false);
    const behindInApply = busy();
    behindInApply.set(3, status(3, { commitIndex: 990, appliedIndex: 900 }));
    expect(replicated(behindInApply, [1, 2, 3], 950)).toBe(false);
  });

  it("needs an answer from every member and a leader", () => {
    const missing = busy();
    missing.delete(3);
    expect(replicated(missing, [1, 2, 3], 950)).toBe(false);
    const leaderless = busy();
    leaderless.set(1, { ...(leaderless.get(1) as NodeStatus), role: "follower" });
    expect(replicated(leaderless, [1, 2, 3], 950)).toBe(false);
  });

  it("takes the highest term's leader, not a deposed one that still says it leads", () => {
    const twoLeaders = busy();
    twoLeaders.set(3, status(3, { role: "leader", term: 4, commitIndex: 990, appliedIndex: 990 }));
    expect(leaderStatus(twoLeaders)?.id).toBe(1);
  });
});

describe("replicationTarget", () => {
  it("is the highest commit index any node reports (an isolated old leader's is lower)", () => {
    expect(replicationTarget(busy())).toBe(1000);
    expect(replicationTarget(new Map())).toBeUndefined();
  });
});
