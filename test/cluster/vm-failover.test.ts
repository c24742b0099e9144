/**
 * A node dies under a running microVM (issue 12, real QEMU under TCG, three real nodes so a
 * majority survives): killed as a machine dies (the node and its QEMU at once), the model marks
 * its worker offline, the VM goes back to pending with the reason and is placed on another node,
 * where it boots and its guest answers; `vm get` names the new node and one QEMU runs for it.
 * Killed alone (SIGKILL of the node process), the node's QEMU dies with it rather than run on
 * beside the VM's new copy. A VM with a disk boots elsewhere on a fresh disk: what its guest
 * wrote stays in the dead node's data directory. Needs QEMU, the Debian kernel and busybox-static
 * (BLIXARD_REQUIRE_QEMU=1 makes their absence a failure).
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import type { VmJson } from "../../src/api/schema/orchestrator.js";
import type { BlixardClient, ClusterEvent } from "../../src/client/index.js";
import { DEFAULT_KERNEL_CMDLINE } from "../../src/orchestrator/drivers/qemu-args.js";
import type { GuestImage } from "../orchestrator/drivers/guest-image.js";
import { ProcessCluster, until } from "./process-cluster.js";
import { qemuProcessesOf, type QemuProcess } from "./process-probes.js";
import {
  BOOT_DEADLINE_MS,
  QEMU_AVAILABLE,
  requireQemuWhenAsked,
  useQemuCluster,
} from "./qemu-cluster.js";

/**
 * Time without a word from a worker before it is offline: short for a quick test, long enough
 * that a live node busy with TCG guests on this loaded machine is not taken for dead.
 */
const DEAD_AFTER_MS = 5000;

/** From a node's death to its worker offline: the dead-after time, an election, slack for load. */
const OFFLINE_DEADLINE_MS = DEAD_AFTER_MS + 45_000;

/** A killed node's QEMU must be gone within this (it dies with the node, see process-group.ts). */
const ORPHAN_DEADLINE_MS = 10_000;

let cluster: ProcessCluster;
let client: BlixardClient;
let guest: GuestImage;

/** The QEMUs of VM `name` that the nodes of this cluster run. */
function qemusOf(name: string): QemuProcess[] {
  return qemuProcessesOf(name, cluster.root);
}

/** The node whose run directory holds this QEMU's monitor socket. */
function nodeOf(proc: QemuProcess): number | undefined {
  const id = /\/node-(\d+)\/orchestrator\/run\//.exec(proc.args)?.[1];
  return id === undefined ? undefined : Number(id);
}

function describeQemus(procs: readonly QemuProcess[]): string {
  return procs.length === 0
    ? "none"
    : procs.map((p) => `pid ${p.pid} on node ${nodeOf(p) ?? "?"}`).join(", ");
}

/** Restarts any node that is down and waits for a leader and three online workers. */
async function allUp(): Promise<void> {
  for (const n of cluster.nodes) if (!cluster.isUp(n.id)) cluster.start(n.id, "restart");
  await cluster.waitForLeader(undefined, 60_000);
  await until(
    async () =>
      (await client.orchestrator.listWorkers()).filter((w) => w.status === "online").length === 3
        ? true
        : undefined,
    "three online workers",
    OFFLINE_DEADLINE_MS,
  );
}

/**
 * Creates a qemu VM booting the guest: without disk, or with a blank data disk of `diskGb` on
 * which each boot bumps a counter (`/data/count`).
 */
async function createVm(name: string, diskGb = 0): Promise<void> {
  const script = [
    "n=$(cat /data/count 2>/dev/null || echo 0)",
    "echo $((n+1)) >/data/count",
    "sync",
  ].join("\n");
  await client.orchestrator.createVm(name, {
    driver: "qemu",
    kernel: guest.kernel,
    initrd: guest.initrd,
    vcpus: 1,
    memoryMb: 128,
    ...(diskGb === 0
      ? {}
      : {
          diskGb,
          cmdline: `${DEFAULT_KERNEL_CMDLINE} blixard.run=${Buffer.from(script).toString("base64")}`,
        }),
  });
}

/** Node `id`'s disk of VM `name` (see qemu-disks.ts). */
function diskOn(id: number, name: string): string {
  return join(cluster.node(id).dataDir, "orchestrator", "disks", `${name}.qcow2`);
}

/** The boot counter on VM `name`'s data disk, once its boot script has written it. */
async function bootCount(name: string): Promise<string> {
  let last = "";
  return until(
    async () => {
      const result = await client.orchestrator.execInVm(name, "cat /data/count");
      last = result.output.trim();
      return result.exitCode === 0 && last !== "" ? last : undefined;
    },
    () => `the boot counter on VM ${name}'s disk (last read ${JSON.stringify(last)})`,
    30_000,
    250,
  );
}

/** Waits until VM `name` is running (its guest announced readiness) on a node other than `notOn`. */
async function runningVm(name: string, notOn?: number): Promise<VmJson> {
  let last: VmJson | undefined;
  const vm = await until(
    async () => {
      last = await client.orchestrator.getVm(name);
      if (last.status === "failed") return last;
      return last.status === "running" && last.nodeId !== notOn ? last : undefined;
    },
    () =>
      `VM ${name} running${notOn === undefined ? "" : ` on a node other than ${notOn}`} (last seen ${JSON.stringify(last)})`,
    BOOT_DEADLINE_MS,
    100,
  );
  expect(vm.status, vm.lastError).toBe("running");
  return vm;
}

/** Waits until exactly one QEMU runs for VM `name`, and returns it. */
async function theOneQemu(name: string): Promise<QemuProcess> {
  let seen: QemuProcess[] = [];
  await until(
    () => ((seen = qemusOf(name)).length === 1 ? true : undefined),
    () => `exactly one QEMU of VM ${name} (seen: ${describeQemus(seen)})`,
    30_000,
  );
  return seen[0]!;
}

/** The guest answers through its agent (a command run in it), so it booted and is up. */
async function expectGuestAnswers(name: string): Promise<void> {
  const result = await client.orchestrator.execInVm(name, "echo guest-$((6*7))");
  expect(result.exitCode, result.output).toBe(0);
  expect(result.output).toContain("guest-42");
}

/** VM `name`'s changes from the start of the log until it runs on node `until`. */
async function vmHistory(name: string, untilOn: number): Promise<VmJson[]> {
  const history: VmJson[] = [];
  const events = client.events({
    topics: ["vm"],
    key: name,
    from: 1,
    signal: AbortSignal.timeout(30_000),
  });
  for await (const event of events as AsyncIterable<ClusterEvent>) {
    if (event.vm === undefined) continue;
    history.push(event.vm as VmJson);
    if (event.vm.status === "running" && event.vm.nodeId === untilOn) break;
  }
  return history;
}

/** Stops and deletes VM `name`, so the next test's boot does not share the CPU with it. */
async function removeVm(name: string): Promise<void> {
  await client.orchestrator.stopVm(name);
  await until(
    async () => ((await client.orchestrator.getVm(name)).status === "stopped" ? true : undefined),
    `VM ${name} to stop`,
    60_000,
  );
  await client.orchestrator.deleteVm(name);
}

describe.runIf(QEMU_AVAILABLE)("a node dies under a running qemu microVM (TCG)", () => {
  useQemuCluster("blixard-vmfailover", 3, (started) => ({ cluster, client, guest } = started), {
    size: 3,
    extraArgs: ["--worker-dead-after-ms", String(DEAD_AFTER_MS)],
  });

  it(
    "a node dies with its QEMU: the VM goes back to pending, is placed elsewhere and boots there, once",
    async () => {
      await allUp();
      const name = "failover";
      await createVm(name);
      const first = await runningVm(name);
      const home = first.nodeId!;
      const original = await theOneQemu(name);
      expect(nodeOf(original), describeQemus([original])).toBe(home);

      // As a machine dies: the node process and everything it ran (QEMU leads its own process
      // group), at once, with no chance to clean up.
      const dying = cluster.node(home).process!;
      cluster.signal(home, "SIGKILL");
      try {
        process.kill(-original.pid, "SIGKILL");
      } catch (error) {
        if ((error as NodeJS.ErrnoException).code !== "ESRCH") throw error;
      }
      await dying.waitExit(10_000);

      const survivors = cluster.nodes.map((n) => n.id).filter((id) => id !== home);
      let workers: unknown;
      await until(
        async () => {
          const listed = await client.orchestrator.listWorkers();
          workers = listed.map((w) => [w.nodeId, w.status]);
          return listed.find((w) => w.nodeId === home)?.status === "offline" ? true : undefined;
        },
        () => `worker ${home} to be marked offline (workers: ${JSON.stringify(workers)})`,
        OFFLINE_DEADLINE_MS,
      );

      const moved = await runningVm(name, home);
      expect(survivors).toContain(moved.nodeId);
      await expectGuestAnswers(name);

      const shown = await cluster.run("vm get", [
        "vm",
        "get",
        name,
        "--endpoints",
        cluster.node(survivors[0]!).apiUrl,
      ]);
      expect(shown.code, shown.output).toBe(0);
      expect(shown.output).toMatch(new RegExp(`^node\\s+${moved.nodeId}$`, "m"));
      expect(shown.output).toMatch(/^status\s+running$/m);

      const now = await theOneQemu(name);
      expect(nodeOf(now), describeQemus([now])).toBe(moved.nodeId);

      // The history says why it moved: it left the dead node with the reason, then ran elsewhere.
      const history = await vmHistory(name, moved.nodeId!);
      const left = history.findIndex((vm) => vm.lastError === `node ${home} went offline`);
      expect(
        left,
        `an event with lastError "node ${home} went offline" in ${JSON.stringify(history.map((vm) => [vm.status, vm.nodeId, vm.lastError]))}`,
      ).toBeGreaterThan(0);
      expect(history[left - 1]).toMatchObject({ nodeId: home });
      expect(["pending", "scheduled"]).toContain(history[left]!.status);
      expect(history[left]!.nodeId).not.toBe(home);
      expect(history.at(-1)).toMatchObject({ status: "running", nodeId: moved.nodeId });

      await removeVm(name);
    },
    2 * BOOT_DEADLINE_MS + OFFLINE_DEADLINE_MS + 60_000,
  );

  it(
    "a node process killed alone takes its QEMU with it, so the VM runs once, elsewhere",
    async () => {
      await allUp();
      const name = "orphan";
      await createVm(name);
      const first = await runningVm(name);
      const home = first.nodeId!;
      const original = await theOneQemu(name);
      expect(nodeOf(original), describeQemus([original])).toBe(home);

      // Only the node process: its QEMU is in another process group and session.
      await cluster.kill(home);
      let left: QemuProcess[] = [];
      await until(
        () =>
          (left = qemusOf(name).filter((p) => nodeOf(p) === home)).length === 0 ? true : undefined,
        () =>
          `the QEMU of node ${home} (pid ${original.pid}) to die with its node; still running: ${describeQemus(left)}`,
        ORPHAN_DEADLINE_MS,
      );

      const moved = await runningVm(name, home);
      await expectGuestAnswers(name);
      const now = await theOneQemu(name);
      expect(nodeOf(now), describeQemus([now])).toBe(moved.nodeId);

      // The node comes back: nothing of its previous life was left to reap, and the VM stays put.
      const restarted = cluster.start(home, "restart");
      await allUp();
      expect(await client.orchestrator.getVm(name)).toMatchObject({
        status: "running",
        nodeId: moved.nodeId,
      });
      // Its replayed log still placed the VM on it, but its agent started only once the node had
      // caught up with the cluster: it never started a second copy, even for a moment.
      expect(qemusOf(name).map((p) => p.pid)).toEqual([now.pid]);
      expect(
        restarted.logLines().filter((l) => l["msg"] === "starting VM" && l["vm"] === name),
      ).toEqual([]);

      await removeVm(name);
    },
    2 * BOOT_DEADLINE_MS + OFFLINE_DEADLINE_MS + 60_000,
  );

  it(
    "a VM with a disk boots elsewhere on a fresh disk; the guest's writes stay on the dead node",
    async () => {
      await allUp();
      const name = "diskful";
      await createVm(name, 1);
      const home = (await runningVm(name)).nodeId!;
      expect(await bootCount(name)).toBe("1");
      expect(existsSync(diskOn(home, name))).toBe(true);

      await cluster.kill(home);
      const moved = await runningVm(name, home);
      // A blank disk again: the guest formatted it and counted its first boot on it.
      expect(await bootCount(name)).toBe("1");
      expect(existsSync(diskOn(moved.nodeId!, name))).toBe(true);
      // The disk the guest wrote on its first node is left there, unreachable while it is down.
      expect(existsSync(diskOn(home, name))).toBe(true);

      await removeVm(name);
    },
    2 * BOOT_DEADLINE_MS + OFFLINE_DEADLINE_MS + 60_000,
  );
});

requireQemuWhenAsked();
