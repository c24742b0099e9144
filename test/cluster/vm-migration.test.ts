/**
 * Live migration of a real microVM with a data disk between the two nodes of one cluster on this
 * machine (TCG): a counter the guest keeps in tmpfs, and its uptime, go on across the move (its
 * memory moved with it, it did not boot again); a file written on its disk before the move, and
 * a counter it keeps writing there during the move, are read back from the target's disk with
 * the guest's page cache dropped (the disk was copied, not just remembered); the VM is reported
 * running on the target; the stream and the disk went over mutual TLS with the nodes'
 * certificates; and a migration to a node that cannot start the VM rolls back, the VM still
 * running on its node. Needs QEMU, the Debian kernel and busybox-static
 * (BLIXARD_REQUIRE_QEMU=1 makes their absence a failure).
 */
import { existsSync, readFileSync, renameSync, statSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { VmJson } from "../../src/api/schema/orchestrator.js";
import type { BlixardClient } from "../../src/client/index.js";
import type { GuestImage } from "../orchestrator/drivers/guest-image.js";
import { ProcessCluster, until } from "./process-cluster.js";
import {
  BOOT_DEADLINE_MS,
  QEMU_AVAILABLE,
  requireQemuWhenAsked,
  useQemuCluster,
} from "./qemu-cluster.js";

/** A migration of a 128 MB guest takes a second or two; a loaded machine, much longer. */
const MIGRATION_DEADLINE_MS = 120_000;

let cluster: ProcessCluster;
let client: BlixardClient;
let guest: GuestImage;

/** The counter the guest's loop keeps in tmpfs, read through the guest agent. */
async function readCounter(name: string): Promise<{ count: number; uptimeS: number }> {
  const result = await client.orchestrator.execInVm(name, "cat /tmp/counter /proc/uptime");
  expect(result.exitCode, result.output).toBe(0);
  const [count, uptime] = result.output.trim().split(/\s+/);
  return { count: Number(count), uptimeS: Number(uptime) };
}

/** Waits until the VM is no longer migrating. */
function migrationOutcome(name: string): Promise<VmJson> {
  return until(
    async () => {
      const vm = await client.orchestrator.getVm(name);
      return vm.status === "migrating" ? undefined : vm;
    },
    "the migration to end",
    MIGRATION_DEADLINE_MS,
    100,
  );
}

describe.runIf(QEMU_AVAILABLE)("live migration of a qemu microVM between two nodes (TCG)", () => {
  useQemuCluster("blixard-migrate", 2, (started) => ({ cluster, client, guest } = started));

  it(
    "rolls back when the target cannot start the VM, then moves it with its memory and uptime",
    async () => {
      await client.orchestrator.createVm("mover", {
        driver: "qemu",
        kernel: guest.kernel,
        initrd: guest.initrd,
        vcpus: 1,
        memoryMb: 128,
        diskGb: 1,
      });
      const booted = await until(
        async () => {
          const vm = await client.orchestrator.getVm("mover");
          return vm.status === "running" || vm.status === "failed" ? vm : undefined;
        },
        "the guest to be ready",
        BOOT_DEADLINE_MS,
        100,
      );
      expect(booted.status, booted.lastError).toBe("running");
      const source = booted.nodeId as number;
      const target = cluster.nodes.find((n) => n.id !== source)!.id;

      // A file on the VM's disk (mounted on /data), written through to it.
      const payload = "written-on-the-source";
      const wrote = await client.orchestrator.execInVm(
        "mover",
        `echo ${payload} >/data/payload && sync`,
      );
      expect(wrote.exitCode, wrote.output).toBe(0);
      // A counter in tmpfs, bumped by a loop in the guest: it lives only in the guest's memory.
      // The loop writes it to the disk too (synced), so the disk changes while it is copied.
      const loop =
        "(i=0; while :; do i=$((i+1)); echo $i >/tmp/counter; echo $i >/data/counter; " +
        "sync; sleep 0.2; done) >/dev/null 2>&1 &";
      const started = await client.orchestrator.execInVm("mover", loop);
      expect(started.exitCode, started.output).toBe(0);
      await until(
        async () =>
          (await client.orchestrator.execInVm("mover", "cat /tmp/counter")).exitCode === 0
            ? true
            : undefined,
        "the counter to start",
        30_000,
        200,
      );
      const first = await readCounter("mover");

      // The target cannot start the VM (its kernel is gone from the node's image directory;
      // the source's QEMU loaded it at boot): the migration fails and rolls back.
      const hidden = `${guest.kernel}.hidden`;
      renameSync(guest.kernel, hidden);
      let back: VmJson;
      try {
        const migrating = await client.orchestrator.migrateVm("mover", { to: target });
        expect(migrating.status).toBe("migrating");
        expect(migrating.migration?.targetNodeId).toBe(target);
        back = await migrationOutcome("mover");
      } finally {
        renameSync(hidden, guest.kernel);
      }
      expect(back.nodeId).toBe(source);
      expect(back.status).toBe("running");
      expect(back.lastError).toMatch(new RegExp(`migration to node ${target} failed: .*kernel`));
      // Still running on the source: the guest went on counting.
      const afterRollback = await until(
        async () => {
          const now = await readCounter("mover");
          return now.count > first.count ? now : undefined;
        },
        "the counter to go on after the rollback",
        30_000,
        200,
      );
      expect(afterRollback.uptimeS).toBeGreaterThan(first.uptimeS);

      // Through the CLI, waiting for the outcome: the VM moves and runs on the target.
      const migrated = await cluster.run(
        "vm migrate",
        [
          "vm",
          "migrate",
          "mover",
          "--to",
          String(target),
          "--endpoints",
          cluster.node(source).apiUrl,
        ],
        MIGRATION_DEADLINE_MS + 10_000,
      );
      expect(migrated.code, migrated.output).toBe(0);
      expect(migrated.output).toContain(`migrated from node ${source} to node ${target}`);
      const moved = await client.orchestrator.getVm("mover");
      expect(moved.nodeId).toBe(target);
      expect(moved.status).toBe("running");
      expect(moved.migration).toBeUndefined();

      // The same guest, not a new boot: its counter and uptime carried on from before the move.
      const onTarget = await until(
        async () => {
          const now = await readCounter("mover");
          return now.count > afterRollback.count ? now : undefined;
        },
        "the counter to go on on the target",
        30_000,
        200,
      );
      expect(onTarget.uptimeS).toBeGreaterThan(afterRollback.uptimeS);
      const exec = await client.orchestrator.execInVm("mover", "true");
      expect(exec.nodeId).toBe(target);

      // The disk came along: with the guest's page cache dropped, the file written before the
      // move and the counter written during it are read from the target's copy of the disk.
      const fromDisk = await client.orchestrator.execInVm(
        "mover",
        "sync; echo 3 >/proc/sys/vm/drop_caches; cat /data/payload /data/counter",
      );
      expect(fromDisk.exitCode, fromDisk.output).toBe(0);
      const [readPayload, diskCounter] = fromDisk.output.trim().split(/\s+/);
      expect(readPayload).toBe(payload);
      expect(Number(diskCounter)).toBeGreaterThan(afterRollback.count);
      expect(
        existsSync(join(cluster.node(target).dataDir, "orchestrator", "disks", "mover.qcow2")),
      ).toBe(true);

      // Both went over mutual TLS with the nodes' own certificates (the cluster runs secure by
      // default): each end's QEMU had them, from a private copy in its node's data directory.
      const vmLog = (id: number) =>
        readFileSync(
          join(cluster.node(id).dataDir, "orchestrator", "vm-logs", "mover.log"),
          "utf8",
        );
      expect(vmLog(source)).toMatch(
        new RegExp(`migrating to node ${target} at tcp:\\S+ with the disk to nbd:\\S+ \\(TLS\\)`),
      );
      expect(vmLog(target)).toContain(`(TLS, from node ${source})`);
      expect(vmLog(target)).not.toContain("WARNING");
      for (const id of [source, target]) {
        const key = join(
          cluster.node(id).dataDir,
          "orchestrator",
          "migration-tls",
          "server-key.pem",
        );
        expect(statSync(key).mode & 0o777).toBe(0o600);
      }

      await client.orchestrator.stopVm("mover");
      await until(
        async () =>
          (await client.orchestrator.getVm("mover")).status === "stopped" ? true : undefined,
        "the VM to stop",
        60_000,
      );
      await client.orchestrator.deleteVm("mover");
    },
    BOOT_DEADLINE_MS + 3 * MIGRATION_DEADLINE_MS,
  );
});

requireQemuWhenAsked();
