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

  it("counts HTTP requests and proposals by their labels, across scrapes", async () => {
    const metrics = new ApiMetrics(1);
    const line = (text: string, prefix: string): number =>
      Number(
        text
          .split("\n")
          .find((l) => l.startsWith(prefix))
          ?.split(" ")
          .at(-1),
      );
    const put =
      'blixard_http_requests_total{method="PUT",route="/v1/kv/:key",status="200",node_id="1"}';
    const refused = 'blixard_http_requests_total{method="PUT",route="/v1/kv/:key",status="503"';
    const applied = 'blixard_proposals_total{namespace="kv",outcome="applied"';
    for (let i = 0; i < 3; i++) metrics.httpRequest("PUT", "/v1/kv/:key", 200);
    metrics.httpRequest("PUT", "/v1/kv/:key", 503);
    metrics.proposalFinished("kv", "applied", 1);
    metrics.proposalFinished("kv", "NOT_LEADER", 1);
    const notLeader = 'blixard_proposals_total{namespace="kv",outcome="NOT_LEADER"';
    const counts = async (): Promise<number[]> => {
      const text = await metrics.registry.metrics();
      return [put, refused, applied, notLeader].map((prefix) => line(text, prefix));
    };
    expect(await counts()).toEqual([3, 1, 1, 1]);
    metrics.httpRequest("PUT", "/v1/kv/:key", 200);
    metrics.proposalFinished("kv", "applied", 1);
    expect(await counts()).toEqual([4, 1, 2, 1]);
  });
});
