import { describe, expect, it } from "vitest";
import { ApiMetrics } from "../../src/api/metrics.js";

/** The value of sample `name` (whatever its labels) in the exposition text. */
function sample(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name} `) || l.startsWith(`${name}{`));
  return Number(line?.split(" ").at(-1));
}

describe("ApiMetrics", () => {
  it("counts every leader change it is told of, not only those a scrape happens to see", async () => {
    const metrics = new ApiMetrics(1);
    // The node reports each change of its raft state: leader 2, no leader, 3, 3 again, then 2.
    for (const leader of [2, 0, 3, 3, 2]) metrics.observeLeader(leader);
    const text = await metrics.registry.metrics();
    // 2 → 3 and 3 → 2; losing sight of a leader is not a change, nor is the same one twice.
    expect(sample(text, "blixard_raft_leader_changes_total")).toBe(2);
  });
});
