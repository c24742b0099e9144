/**
 * `blixard worker drain` with real processes: on a 3-node cluster, draining the node that runs a
 * long task and a process-driver VM moves both to another node at once. The task keeps its
 * attempt number (a move spends no attempt), the processes on the drained node are stopped, and
 * the CLI says what moved.
 */
import { readdirSync, readFileSync } from "node:fs";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { BlixardClient } from "../../src/client/index.js";
import { ensureBuilt } from "../cli/helpers.js";
import { ProcessCluster, until } from "./process-cluster.js";

let cluster: ProcessCluster;
let client: BlixardClient;

/** Live `sleep` processes whose arguments include `marker` (zombies excluded), from /proc. */
function processesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      const state = /\) (\S)/.exec(readFileSync(`/proc/${entry}/stat`, "utf8"))?.[1];
      if (state !== "Z" && args[0] === "sleep" && args.includes(marker)) found.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

beforeAll(async () => {
  await ensureBuilt();
  cluster = await ProcessCluster.create({
    size: 3,
    name: "blixard-drain",
    extraArgs: ["--enable-raw-exec"],
  });
  cluster.startAll();
  await cluster.waitForLeader();
  client = cluster.client();
  await until(
    async () =>
      (await client.orchestrator.listWorkers()).filter((w) => w.status === "online").length === 3
        ? true
        : undefined,
    "three online workers",
  );
});

afterAll(async () => {
  await cluster?.destroy();
});

beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    process.stderr.write(`node logs:\n${cluster.logs(80)}\n`);
  });
});

describe("worker drain across real processes", () => {
  it("moves a running task (attempt unchanged) and a VM off the drained node and stops them there", async () => {
    const endpoints = cluster.nodes.map((n) => n.apiUrl).join(",");
    // `sleep` sums its arguments: the second one only makes the processes findable.
    const taskMarker = `0.00${process.pid}1`;
    const vmMarker = `0.00${process.pid}2`;
    const task = await client.orchestrator.submitTask({
      command: "sleep",
      args: ["120", taskMarker],
      resources: { cpuMillis: 100, memoryMb: 16, diskGb: 0 },
      maxAttempts: 1,
    });
    await client.orchestrator.createVm("drained-vm", {
      driver: "process",
      command: "sleep",
      args: ["120", vmMarker],
      vcpus: 1,
      memoryMb: 16,
    });
    const running = await until(async () => {
      const t = await client.orchestrator.getTask(task.id);
      return t.status === "running" ? t : undefined;
    }, "the task to run");
    const node = running.nodeId!;
    expect(running.attempts).toBe(1);
    // Binpack (the default) puts both on the same, fullest-after-placement node.
    const vm = await until(async () => {
      const v = await client.orchestrator.getVm("drained-vm");
      return v.status === "running" ? v : undefined;
    }, "the VM to run");
    expect(vm.nodeId).toBe(node);
    await until(() => (processesWith(taskMarker).length === 1 ? true : undefined), "task process");
    await until(() => (processesWith(vmMarker).length === 1 ? true : undefined), "VM process");
    const [oldTaskPid] = processesWith(taskMarker);
    const [oldVmPid] = processesWith(vmMarker);

    const drain = await cluster.run("drain", [
      "worker",
      "drain",
      String(node),
      "--endpoints",
      endpoints,
    ]);
    expect(drain.code, drain.output).toBe(0);
    expect(drain.output).toContain(
      `worker ${node} is draining; moved 1 task and 1 VM to other workers`,
    );

    const moved = await until(async () => {
      const t = await client.orchestrator.getTask(task.id);
      return t.status === "running" && t.nodeId !== node ? t : undefined;
    }, "the task to run on another node");
    expect(moved.attempts).toBe(1);
    const movedVm = await until(async () => {
      const v = await client.orchestrator.getVm("drained-vm");
      return v.status === "running" && v.nodeId !== node ? v : undefined;
    }, "the VM to run on another node");
    expect(movedVm.nodeId).not.toBe(node);
    // The drained node's copies are gone; exactly one new copy of each runs.
    await until(
      () => (processesWith(taskMarker).includes(oldTaskPid!) ? undefined : true),
      "the drained node's task process to end",
    );
    await until(
      () => (processesWith(vmMarker).includes(oldVmPid!) ? undefined : true),
      "the drained node's VM process to end",
    );
    await until(() => (processesWith(taskMarker).length === 1 ? true : undefined), "one task copy");
    await until(() => (processesWith(vmMarker).length === 1 ? true : undefined), "one VM copy");
    const worker = await client.orchestrator.getWorker(node);
    expect(worker).toMatchObject({ status: "draining", drain: true });
    expect(worker.allocated).toEqual({ cpuMillis: 0, memoryMb: 0, diskGb: 0 });

    // Draining again moves nothing; --json carries the counts.
    const again = await cluster.run("drain again", [
      "worker",
      "drain",
      String(node),
      "--endpoints",
      endpoints,
      "--json",
    ]);
    expect(again.code, again.output).toBe(0);
    expect(JSON.parse(again.output)).toMatchObject({
      nodeId: node,
      status: "draining",
      moved: { tasks: 0, vms: 0 },
    });

    await client.orchestrator.cancelTask(task.id);
    await client.orchestrator.stopVm("drained-vm");
  }, 180_000);
});
