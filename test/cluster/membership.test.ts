/**
 * Membership changes with real processes: a fourth node joins a running three-node cluster
 * (`node start --join`), catches up through a snapshot, is promoted, and the leader is removed;
 * the cluster keeps serving, every node learns the members' addresses from the changes it
 * applies, and the joined node restarts from its data directory alone.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { REMOVED_EXIT_CODE } from "../../src/cli/exit-status.js";
import { cli, ensureBuilt, exitWithin } from "../cli/helpers.js";
import { TestCluster } from "./membership-helpers.js";

const KEYS = 40;

describe("membership changes across processes", () => {
  let cluster: TestCluster;

  beforeAll(async () => {
    await ensureBuilt();
    cluster = await TestCluster.create(5, "blixard-membership-test-", "membership-test");
  });

  afterAll(() => cluster.destroy());

  it("joins a node through a snapshot, promotes it, removes the leader, replaces a voter through a joint configuration, keeps serving", async () => {
    const c = cluster;
    const founders = [1, 2, 3];
    for (const id of founders) {
      c.start(id, [
        "--id",
        String(id),
        "--data-dir",
        c.dir(id),
        "--peer-listen",
        c.peer(id),
        "--api-listen",
        c.api(id),
        "--initial-members",
        c.members(founders),
        "--cluster-id",
        "membership-test",
        "--snapshot-every-entries",
        "10",
      ]);
    }
    await c.leader(founders);
    const client = c.client(founders);
    for (let i = 0; i < KEYS; i += 10) {
      await Promise.all(
        Array.from({ length: 10 }, (_, j) => client.put(`key-${i + j}`, `value-${i + j}`)),
      );
    }
    const before = await c.until(async () => {
      const s = await c.status(await c.leader(founders));
      return s !== undefined && s.snapshotIndex > 0 ? s : undefined;
    }, "a snapshot on the leader");

    // Node 4 joins through node 1's API (forwarded to the leader if node 1 is not it).
    const joiner = c.start(4, [
      "--id",
      "4",
      "--data-dir",
      c.dir(4),
      "--peer-listen",
      c.peer(4),
      "--api-listen",
      c.api(4),
      "--join",
      c.url(1),
      "--cluster-id",
      "membership-test",
      "--snapshot-every-entries",
      "10",
    ]);
    const caughtUp = await c.until(
      async () => {
        const s = await c.status(4);
        return s !== undefined &&
          s.config.learners.includes(4) &&
          s.appliedIndex >= before.commitIndex &&
          s.snapshotIndex > 0
          ? s
          : undefined;
      },
      "node 4 to catch up as a learner",
      30_000,
    );
    expect(caughtUp.config.voters).toEqual([1, 2, 3]);
    expect(joiner.output()).toContain("installed snapshot from leader");
    // An old key, read locally (stale) and linearizably, on the new node.
    const onFour = c.client([4], { timeoutMs: 5000 });
    expect((await onFour.get("key-0", { consistency: "stale" }))?.entry.valueText).toBe("value-0");
    expect((await onFour.get(`key-${KEYS - 1}`))?.entry.valueText).toBe(`value-${KEYS - 1}`);

    // Every node learned node 4's addresses from the change it applied, and keeps them on disk.
    for (const id of founders) {
      const members = await c.probe(id).members();
      expect(
        members.members.find((m) => m.id === 4),
        `node ${id}`,
      ).toMatchObject({
        suffrage: "learner",
        raftAddress: c.peer(4),
        apiAddress: `${c.url(4)}/`,
      });
      const stored = JSON.parse(readFileSync(join(c.dir(id), "members.json"), "utf8"));
      expect(stored.members.map((m: { id: number }) => m.id)).toEqual([1, 2, 3, 4]);
    }
    const learnerView = await c.cli(["cluster", "members", "--endpoints", c.url(2)]);
    expect(learnerView.stdout).toMatch(/^4\s+learner\s/m);

    // Promote it (through a follower or the leader: forwarded either way).
    const promote = await c.cli(["cluster", "promote", "4", "--endpoints", c.url(2), "--json"]);
    expect(promote.status, promote.stderr).toBe(0);
    expect(JSON.parse(promote.stdout).config).toMatchObject({ voters: [1, 2, 3, 4], learners: [] });
    await c.until(async () => {
      const s = await c.status(4);
      return s?.config.voters.includes(4) === true ? true : undefined;
    }, "node 4 to see itself a voter");

    // Make node 1 the leader, then remove it: it steps down and the others elect a leader.
    const transfer = await c.cli(["cluster", "transfer-leader", "1", "--endpoints", c.url(3)]);
    expect(transfer.status, transfer.stderr).toBe(0);
    expect(transfer.stdout).toBe("node 1 is the leader\n");
    const remove = await c.cli(["cluster", "remove", "1", "--endpoints", c.url(1)]);
    expect(remove.status, remove.stderr).toBe(0);
    expect(remove.stdout).toContain("node 1 removed");
    expect(remove.stdout).toMatch(/^voters\s+2, 3, 4$/m);
    const remaining = [2, 3, 4];
    const leader = await c.leader(remaining);
    expect(remaining).toContain(leader);
    for (const id of remaining) {
      await c.until(async () => {
        const s = await c.status(id);
        return s !== undefined && s.config.voters.join() === "2,3,4" && !s.joint ? true : undefined;
      }, `node ${id} to apply the removal`);
    }
    const after = c.client(remaining);
    await after.put("after-removal", "yes");
    expect((await onFour.get("after-removal"))?.entry.valueText).toBe("yes");
    const members = await c.cli(["cluster", "members", "--endpoints", c.url(3), "--json"]);
    expect(JSON.parse(members.stdout).members.map((m: { id: number }) => m.id)).toEqual(remaining);
    const unknown = await c.cli(["cluster", "remove", "9", "--endpoints", c.url(leader)]);
    expect(unknown.status).toBe(3);
    expect(unknown.stderr).toContain("[NOT_FOUND]");

    // The removed node learns it, says so once and stops by itself with exit code 20.
    const removed = c.processes.get(1)!;
    expect(await exitWithin(removed.exited, 15_000), c.output()).toBe(REMOVED_EXIT_CODE);
    expect(removed.output().split("this node was removed from the cluster").length - 1).toBe(1);
    c.processes.delete(1);

    // The joined node restarts from its data directory alone, knowing its peers.
    expect(await c.stop(4), c.output()).toBe(0);
    c.start(4, ["--data-dir", c.dir(4)]);
    await c.until(async () => {
      const read = await c
        .probe(4)
        .get("after-removal")
        .catch(() => null);
      return read?.entry.valueText === "yes" ? true : undefined;
    }, "node 4 to serve reads after its restart");
    await after.put("after-restart", "yes");
    expect((await onFour.get("after-restart"))?.entry.valueText).toBe("yes");

    // Node 5 joins, then replaces node 2 in one joint-consensus change: the answer is the joint
    // configuration (old and new voter sets), which the cluster then leaves on its own.
    c.start(5, [
      "--id",
      "5",
      "--data-dir",
      c.dir(5),
      "--peer-listen",
      c.peer(5),
      "--api-listen",
      c.api(5),
      "--join",
      c.url(3),
      "--cluster-id",
      "membership-test",
    ]);
    await c.until(
      async () => {
        const s = await c.status(5);
        return s?.config.learners.includes(5) === true ? true : undefined;
      },
      "node 5 to join as a learner",
      30_000,
    );
    const replace = await c.cli([
      "cluster",
      "replace",
      "2",
      "5",
      "--endpoints",
      c.url(3),
      "--json",
    ]);
    expect(replace.status, replace.stderr).toBe(0);
    expect(JSON.parse(replace.stdout).config).toMatchObject({
      voters: [3, 4, 5],
      votersOutgoing: [2, 3, 4],
    });
    for (const id of [3, 4, 5]) {
      await c.until(async () => {
        const s = await c.status(id);
        return s !== undefined && s.config.voters.join() === "3,4,5" && !s.joint ? true : undefined;
      }, `node ${id} to leave the joint configuration`);
    }
    const final = c.client([3, 4, 5]);
    await final.put("after-replace", "yes");
    expect((await final.get("after-replace", { consistency: "stale" }))?.entry.valueText).toBe(
      "yes",
    );
    // The replaced node was removed: it stops by itself with exit code 20.
    expect(await exitWithin(c.processes.get(2)!.exited, 15_000), c.output()).toBe(
      REMOVED_EXIT_CODE,
    );
    c.processes.delete(2);
    for (const id of [3, 4, 5]) expect(await c.stop(id), c.output()).toBe(0);
  }, 120_000);

  it("refuses --join with --initial-members, and a wildcard address to announce", async () => {
    const both = await cli([
      "node",
      "start",
      "--id",
      "5",
      "--data-dir",
      join(cluster.root, "bad-1"),
      "--peer-listen",
      "127.0.0.1:1",
      "--api-listen",
      "127.0.0.1:2",
      "--initial-members",
      "5=127.0.0.1:1@127.0.0.1:2",
      "--join",
      "http://127.0.0.1:3",
    ]);
    expect(both.status).toBe(64);
    expect(both.stderr).toContain("give --join or --initial-members, not both");
    const wildcard = await cli([
      "node",
      "start",
      "--id",
      "5",
      "--data-dir",
      join(cluster.root, "bad-2"),
      "--peer-listen",
      "0.0.0.0:7001",
      "--api-listen",
      "127.0.0.1:8001",
      "--join",
      "http://127.0.0.1:3",
    ]);
    expect(wildcard.status).toBe(64);
    expect(wildcard.stderr).toContain("give an address its peers can reach");
  });
});
