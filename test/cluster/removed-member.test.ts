/**
 * A member removed while it could not hear the cluster (SIGSTOPped, so it never applies its own
 * removal) learns it from its peers' refusal once it runs again: it says so once and exits with
 * code 20; started again from its data directory, it exits the same way. (That restart once hung:
 * a removal replayed from the log before the node had wired its stop path was dropped.)
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REMOVED_EXIT_CODE } from "../../src/cli/exit-status.js";
import { ensureBuilt, exitWithin } from "../cli/helpers.js";
import { TestCluster } from "./membership-helpers.js";

describe("a removed member", () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    await ensureBuilt();
    cluster = await TestCluster.create(3, "blixard-removed-member-test-", "removed-member-test");
  });

  afterAll(() => cluster.destroy());

  it("learns its removal from its peers' refusal and exits with code 20", async () => {
    const c = cluster;
    const ids = [1, 2, 3];
    const args = (id: number): string[] => [
      "--id",
      String(id),
      "--data-dir",
      c.dir(id),
      "--peer-listen",
      c.peer(id),
      "--api-listen",
      c.api(id),
      "--initial-members",
      c.members(ids),
      "--cluster-id",
      "removed-member-test",
    ];
    for (const id of ids) c.start(id, args(id));
    const leader = await c.leader(ids, 60_000);
    const victim = ids.find((id) => id !== leader)!;
    const rest = ids.filter((id) => id !== victim);
    const node = c.processes.get(victim)!;
    node.child.kill("SIGSTOP");
    try {
      const remove = await c.cli([
        "cluster",
        "remove",
        String(victim),
        "--endpoints",
        c.url(leader),
      ]);
      expect(remove.status, remove.stderr).toBe(0);
      await c.leader(rest, 60_000);
    } finally {
      node.child.kill("SIGCONT");
    }
    expect(await exitWithin(node.exited, 20_000), c.output()).toBe(REMOVED_EXIT_CODE);
    // It learns it from a refusal, or from the append of its own removal still in flight.
    expect(node.output()).toMatch(/refused it as removed|it applied its own removal/);
    expect(node.output().split("this node was removed from the cluster").length - 1).toBe(1);
    c.processes.delete(victim);

    // Started again, it stops again (its log may or may not hold the removal).
    const again = c.start(victim, ["--data-dir", c.dir(victim)]);
    expect(await exitWithin(again.exited, 20_000), c.output()).toBe(REMOVED_EXIT_CODE);
    // However it learnt it: from its log at start, from replaying its own removal, or a refusal.
    expect(again.output()).toMatch(/not starting|it applied its own removal|refused it as removed/);
    c.processes.delete(victim);
    await c.leader(rest, 60_000);
  }, 180_000);
});
