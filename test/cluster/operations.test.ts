/**
 * Operating a cluster over its lifetime, with real processes over TLS: a backup taken under
 * write load restores into a brand-new cluster with every write acknowledged before the backup
 * and the orchestrator and ACL state; and a cluster that lost two of three members for good is
 * recovered from the survivor with `--force-new-cluster`, losing nothing the survivor applied.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt } from "../cli/helpers.js";
import { ProcessCluster, until } from "./process-cluster.js";

const TEST_TIMEOUT_MS = 180_000;

describe("operations", () => {
  const clusters: ProcessCluster[] = [];
  const create = async (name: string, size: number): Promise<ProcessCluster> => {
    const cluster = await ProcessCluster.create({ size, name, clusterId: "ops-test" });
    clusters.push(cluster);
    return cluster;
  };

  beforeAll(async () => {
    await ensureBuilt();
  }, TEST_TIMEOUT_MS);

  const directories: string[] = [];
  afterEach(async () => {
    for (const cluster of clusters.splice(0)) await cluster.destroy();
    for (const dir of directories.splice(0)) rmSync(dir, { recursive: true, force: true });
  });

  it(
    "restores a backup taken under write load into a new cluster: acknowledged writes, orchestrator and ACL state",
    async () => {
      const old = await create("blixard-backup-", 3);
      old.startAll();
      await old.waitForLeader();
      const token = await old.bootstrapAcl();
      const client = old.client();
      // Worker 2 registers with its first heartbeat, a moment after the cluster elects.
      await until(
        () =>
          client.orchestrator
            .getWorker(2)
            .then(() => true)
            .catch(() => undefined),
        "worker 2 registered",
      );
      await client.orchestrator.drainWorker(2);

      // Writers keep writing while the backup is taken; each remembers what was acknowledged.
      const acknowledged = new Map<string, string>();
      let writing = true;
      const writer = async (w: number): Promise<void> => {
        for (let i = 0; writing; i++) {
          const key = `load/${w}/${i}`;
          await client.put(key, `v${i}`);
          acknowledged.set(key, `v${i}`);
        }
      };
      const writers = [0, 1, 2, 3].map(writer);
      await until(() => (acknowledged.size >= 200 ? true : undefined), "200 writes", 30_000);
      const before = new Map(acknowledged);
      // Outside the cluster's root, which goes with the cluster.
      const backups = mkdtempSync(join(tmpdir(), "blixard-backups-"));
      directories.push(backups);
      const file = join(backups, "backup.snap");
      const saved = await old.run("save", [
        "operator",
        "snapshot",
        "save",
        file,
        "--endpoints",
        old.nodes.map((n) => n.apiUrl).join(","),
        "--token",
        token,
        "--json",
      ]);
      expect(saved.code, saved.output).toBe(0);
      const afterSave = acknowledged.size;
      await until(() => (acknowledged.size >= afterSave + 100 ? true : undefined), "more writes");
      writing = false;
      await Promise.all(writers);
      const header = JSON.parse(saved.output.trim().split("\n").at(-1)!) as {
        index: number;
        clusterId: string;
        dataSha256: string;
      };
      expect(header.clusterId).toBe("ops-test");

      const inspected = await old.run("inspect", [
        "operator",
        "snapshot",
        "inspect",
        file,
        "--json",
      ]);
      expect(inspected.code, inspected.output).toBe(0);
      expect(JSON.parse(inspected.output) as { index: number }).toMatchObject({
        index: header.index,
        dataSha256: header.dataSha256,
      });
      await old.destroy();

      const restored = await create("blixard-restored-", 3);
      for (const n of restored.nodes) {
        const result = await restored.run(`restore ${n.id}`, [
          "operator",
          "snapshot",
          "restore",
          file,
          "--data-dir",
          n.dataDir,
          "--id",
          String(n.id),
          "--peer-listen",
          n.peerAddress,
          "--api-listen",
          n.apiAddress,
          "--initial-members",
          restored.initialMembers,
        ]);
        expect(result.code, result.output).toBe(0);
      }
      restored.startAll("restart");
      await restored.waitForLeader();
      // The old cluster's management token still works: the ACL state came along.
      restored.token = token;
      const fresh = restored.client();
      // The new leader's first entry lands after the backup's index once it is applied here
      // (the node asked may be a follower that has not applied it yet when the leader is known).
      const status = await until(async () => {
        const s = await fresh.status();
        return s.appliedIndex > header.index ? s : undefined;
      }, "the restored cluster to apply an entry past the backup");
      expect(status.config.voters).toEqual([1, 2, 3]);

      const found = new Map<string, string>();
      for (let start: string | undefined = "load/"; start !== undefined;) {
        const page = await fresh.list({ prefix: "load/", start, limit: 1000 });
        for (const entry of page.entries) found.set(entry.key, entry.valueText ?? "");
        start = page.more ? page.nextStart : undefined;
      }
      for (const [key, value] of before) expect(found.get(key), key).toBe(value);
      // Nothing that was never written; and the writes after the backup are not there.
      for (const key of found.keys())
        expect(acknowledged.has(key) || key.startsWith("load/")).toBe(true);
      expect(found.size).toBeLessThan(acknowledged.size);
      expect(found.size).toBeGreaterThanOrEqual(before.size);

      // Every member answers for itself with its software and protocol version.
      const statusRun = await restored.run("status", [
        "cluster",
        "status",
        "--json",
        "--endpoints",
        restored.node(1).apiUrl,
        "--token",
        token,
      ]);
      expect(statusRun.code, statusRun.output).toBe(0);
      const statusJson = JSON.parse(statusRun.output) as {
        version: string;
        members: { id: number; status?: { version: string; protocolVersion: number } }[];
      };
      expect(statusJson.members.map((m) => m.id)).toEqual([1, 2, 3]);
      for (const m of statusJson.members) expect(m.status?.version).toBe(statusJson.version);

      const worker = await fresh.orchestrator.getWorker(2);
      // Drained before the save with nothing on it (a drain without a deadline moves all at once).
      expect(worker.status).toBe("drained");
      await fresh.put("after-restore", "ok");
      expect((await fresh.get("after-restore"))?.entry.valueText).toBe("ok");
    },
    TEST_TIMEOUT_MS,
  );

  it(
    "recovers from the loss of two of three members with --force-new-cluster, losing nothing the survivor applied",
    async () => {
      const cluster = await create("blixard-force-", 3);
      cluster.startAll();
      const leader = await cluster.waitForLeader();
      await cluster.bootstrapAcl();
      const client = cluster.client();
      const written = new Map<string, string>();
      for (let i = 0; i < 300; i++) {
        await client.put(`k/${i}`, `value-${i}`);
        written.set(`k/${i}`, `value-${i}`);
      }
      // The survivor is a follower that has applied everything the leader committed.
      const survivor = cluster.nodes.map((n) => n.id).find((id) => id !== leader)!;
      const target = (await cluster.status(leader))!.commitIndex;
      await until(
        async () => ((await cluster.status(survivor))?.appliedIndex ?? 0) >= target || undefined,
        "the survivor to apply every write",
      );
      for (const n of cluster.nodes) if (n.id !== survivor) await cluster.kill(n.id);
      // No quorum: the survivor cannot elect a leader or take a write.
      await expect(
        cluster.client([survivor], { timeoutMs: 1500, retries: 1 }).put("no-quorum", "x"),
      ).rejects.toThrow();
      await cluster.stop(survivor);

      const node = cluster.node(survivor);
      const recovered = cluster.spawn(`node ${survivor} forced`, [
        "node",
        "start",
        "--data-dir",
        node.dataDir,
        "--force-new-cluster",
      ]);
      node.process = recovered;
      await cluster.waitForLeader([survivor]);
      expect(recovered.output).toContain("FORCE-NEW-CLUSTER");
      expect(
        readdirSync(node.dataDir).some((name) => name.startsWith("raft.before-force-new-cluster-")),
      ).toBe(true);

      const alone = cluster.client([survivor]);
      expect((await alone.status()).config.voters).toEqual([survivor]);
      const members = await alone.members();
      expect(members.members.map((m) => m.id)).toEqual([survivor]);
      for (const [key, value] of written) {
        expect((await alone.get(key))?.entry.valueText, key).toBe(value);
      }
      await alone.put("after-recovery", "ok");

      // A plain restart keeps the new one-member configuration and the data.
      await cluster.stop(survivor);
      cluster.start(survivor, "restart");
      await cluster.waitForLeader([survivor]);
      const again = cluster.client([survivor]);
      expect((await again.get("after-recovery"))?.entry.valueText).toBe("ok");
      expect((await again.get("k/299"))?.entry.valueText).toBe("value-299");
      expect(existsSync(join(node.dataDir, "raft"))).toBe(true);
    },
    TEST_TIMEOUT_MS,
  );
});
