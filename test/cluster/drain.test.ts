/**
 * `blixard worker drain` with real processes, on a 3-node cluster:
 * - without a deadline, draining the node that runs a long task and a process-driver VM moves
 *   both to another node at once. The task keeps its attempt number (a move spends no attempt),
 *   the processes on the drained node are stopped, the CLI says what moved and the worker is
 *   `drained` at once;
 * - with `--deadline`, a short task finishes where it runs, a long one is moved when the
 *   deadline passes (the leader's monitor proposes it), and the CLI, having waited and printed
 *   its progress, exits 0 once the worker is `drained`.
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { BlixardClient } from "../../src/client/index.js";
import { ensureBuilt } from "../cli/helpers.js";
import { ProcessCluster, until } from "./process-cluster.js";
import { sleepProcessesWith } from "./process-probes.js";

let cluster: ProcessCluster;
let client: BlixardClient;

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
  await cluster.waitForOnlineWorkers(client);
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
    await until(
      () => (sleepProcessesWith(taskMarker).length === 1 ? true : undefined),
      "task process",
    );
    await until(() => (sleepProcessesWith(vmMarker).length === 1 ? true : undefined), "VM process");
    const [oldTaskPid] = sleepProcessesWith(taskMarker);
    const [oldVmPid] = sleepProcessesWith(vmMarker);

    const drain = await cluster.run("drain", [
      "worker",
      "drain",
      String(node),
      "--endpoints",
      endpoints,
    ]);
    expect(drain.code, drain.output).toBe(0);
    expect(drain.output).toContain(
      `worker ${node} is drained; moved 1 task and 1 VM to other workers`,
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
      () => (sleepProcessesWith(taskMarker).includes(oldTaskPid!) ? undefined : true),
      "the drained node's task process to end",
    );
    await until(
      () => (sleepProcessesWith(vmMarker).includes(oldVmPid!) ? undefined : true),
      "the drained node's VM process to end",
    );
    await until(
      () => (sleepProcessesWith(taskMarker).length === 1 ? true : undefined),
      "one task copy",
    );
    await until(
      () => (sleepProcessesWith(vmMarker).length === 1 ? true : undefined),
      "one VM copy",
    );
    const worker = await client.orchestrator.getWorker(node);
    expect(worker).toMatchObject({ status: "drained", drain: true });
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
      status: "drained",
      moved: { tasks: 0, vms: 0 },
    });

    await client.orchestrator.cancelTask(task.id);
    await client.orchestrator.stopVm("drained-vm");
    await client.orchestrator.undrainWorker(node);
  }, 180_000);

  it("lets a short task finish before the deadline, moves a long one at it, then is drained", async () => {
    const endpoints = cluster.nodes.map((n) => n.apiUrl).join(",");
    const longMarker = `0.00${process.pid}3`;
    const resources = { cpuMillis: 100, memoryMb: 16, diskGb: 0 };
    const short = await client.orchestrator.submitTask({
      command: "sleep",
      args: ["5"],
      resources,
      maxAttempts: 1,
    });
    const long = await client.orchestrator.submitTask({
      command: "sleep",
      args: ["120", longMarker],
      resources,
      maxAttempts: 1,
    });
    const bothRunning = await until(async () => {
      const [s, l] = await Promise.all([
        client.orchestrator.getTask(short.id),
        client.orchestrator.getTask(long.id),
      ]);
      return s.status === "running" && l.status === "running" ? { s, l } : undefined;
    }, "both tasks to run");
    const node = bothRunning.s.nodeId!;
    // Binpack (the default) puts both on the same, fullest-after-placement node.
    expect(bothRunning.l.nodeId).toBe(node);

    const drain = await cluster.run(
      "drain with deadline",
      ["worker", "drain", String(node), "--deadline", "12s", "--endpoints", endpoints],
      60_000,
    );
    expect(drain.code, drain.output).toBe(0);
    expect(drain.output).toContain(`worker ${node} is draining; moved 0 tasks and 0 VMs`);
    // Progress, one line per change (not a terminal): both running, then only the long one.
    expect(drain.output).toMatch(new RegExp(`worker ${node} draining: 2 tasks and 0 VMs left`));
    expect(drain.output).toMatch(new RegExp(`worker ${node} draining: 1 task and 0 VMs left`));
    expect(drain.output).toContain(`worker ${node} is drained`);

    // The short task finished where it ran; the long one moved at the deadline, no attempt spent.
    expect(await client.orchestrator.getTask(short.id)).toMatchObject({
      status: "succeeded",
      nodeId: node,
      attempts: 1,
    });
    const moved = await until(async () => {
      const t = await client.orchestrator.getTask(long.id);
      return t.status === "running" && t.nodeId !== node ? t : undefined;
    }, "the long task to run on another node");
    expect(moved.attempts).toBe(1);
    await until(
      () => (sleepProcessesWith(longMarker).length === 1 ? true : undefined),
      "one copy of the long task",
    );
    const worker = await client.orchestrator.getWorker(node);
    expect(worker).toMatchObject({ status: "drained", drain: true });
    expect(worker.drainDeadlineMs).toBeUndefined();

    await client.orchestrator.cancelTask(long.id);
    await client.orchestrator.undrainWorker(node);
  }, 180_000);
});
