/**
 * The orchestrator with real processes: a 3-node cluster runs tasks and process-driver VMs
 * through its agents, retries a task whose node was SIGKILLed, keeps a VM running through a
 * leader failover, moves it when its node dies, and leaves exactly one copy once the dead node
 * comes back and reconciles. Workers are declared dead after 2 s here (default 10 s).
 */
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { BlixardClient } from "../../src/client/index.js";
import { ensureBuilt } from "../cli/helpers.js";
import { http, ProcessCluster, until } from "./process-cluster.js";
import { sleepProcessesWith } from "./process-probes.js";

const DEAD_AFTER_MS = 2000;
let cluster: ProcessCluster;
let client: BlixardClient;

beforeAll(async () => {
  await ensureBuilt();
  cluster = await ProcessCluster.create({
    size: 3,
    name: "blixard-orchestrator",
    extraArgs: ["--worker-dead-after-ms", String(DEAD_AFTER_MS), "--enable-raw-exec"],
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

/** Makes sure every node runs (restarting the ones a test killed) and all are online workers. */
async function allUp(): Promise<void> {
  for (const n of cluster.nodes) if (!cluster.isUp(n.id)) cluster.start(n.id, "restart");
  await cluster.waitForLeader();
  await until(
    async () =>
      (await client.orchestrator.listWorkers()).every((w) => w.status === "online")
        ? true
        : undefined,
    "every worker online again",
    30_000,
  );
}

describe("the orchestrator across real processes", () => {
  it("runs 50 tasks spread over the cluster, each with its own output", async () => {
    await client.orchestrator.setSettings({ placement: "spread" });
    const submitted = await Promise.all(
      Array.from({ length: 50 }, (_, i) =>
        client.orchestrator.submitTask({
          command: "echo",
          args: [`task-${i}`],
          resources: { cpuMillis: 100, memoryMb: 16, diskGb: 0 },
        }),
      ),
    );
    const done = await Promise.all(
      submitted.map((t) => client.orchestrator.waitTask(t.id, { timeoutMs: 60_000 })),
    );
    done.forEach((task, i) => {
      expect(task.status, JSON.stringify(task)).toBe("succeeded");
      expect(task.result?.stdout).toBe(`task-${i}\n`);
      expect(task.result?.exitCode).toBe(0);
    });
    const nodes = new Set(done.map((t) => t.nodeId));
    expect(nodes.size).toBeGreaterThan(1);
    // Every worker's resources are free again.
    const workers = await client.orchestrator.listWorkers();
    for (const w of workers) expect(w.allocated).toEqual({ cpuMillis: 0, memoryMb: 0, diskGb: 0 });
    await client.orchestrator.setSettings({ placement: "binpack" });
  });

  it("retries a task elsewhere when its node is SIGKILLed, and the retry completes", async () => {
    await allUp();
    const task = await client.orchestrator.submitTask({
      command: "sh",
      args: ["-c", "sleep 3; echo finished"],
      resources: { cpuMillis: 100, memoryMb: 16, diskGb: 0 },
      maxAttempts: 3,
    });
    const running = await until(async () => {
      const t = await client.orchestrator.getTask(task.id);
      return t.status === "running" ? t : undefined;
    }, "the task to run");
    const victim = running.nodeId!;
    await cluster.kill(victim);
    const done = await client.orchestrator.waitTask(task.id, { timeoutMs: 60_000 });
    expect(done.status, JSON.stringify(done)).toBe("succeeded");
    expect(done.attempts).toBe(2);
    expect(done.nodeId).not.toBe(victim);
    expect(done.result?.stdout).toBe("finished\n");
    const workers = await client.orchestrator.listWorkers();
    expect(workers.find((w) => w.nodeId === victim)?.status).toBe("offline");
  });

  it("keeps a process VM through a leader failover, moves it when its node dies, and leaves one copy", async () => {
    await allUp();
    const marker = `${1000 + Math.floor(Math.random() * 1000)}.${process.pid}`;
    await client.orchestrator.createVm("keeper", {
      driver: "process",
      command: "sleep",
      args: [marker],
      vcpus: 1,
      memoryMb: 32,
    });
    const placed = await until(async () => {
      const vm = await client.orchestrator.getVm("keeper");
      return vm.status === "running" ? vm : undefined;
    }, "the VM to run");
    const home = placed.nodeId!;
    await until(
      () => (sleepProcessesWith(marker).length === 1 ? true : undefined),
      "one VM process",
    );
    const [firstPid] = sleepProcessesWith(marker);

    // Leader failover while the VM runs on a follower: it keeps running, untouched.
    let leader = await cluster.waitForLeader();
    if (leader === home) {
      const other = cluster.nodes.map((n) => n.id).find((id) => id !== home)!;
      await client.transferLeader(other);
      leader = await until(
        async () => ((await cluster.waitForLeader()) === other ? other : undefined),
        "the transfer",
      );
    }
    await cluster.kill(leader);
    await cluster.waitForLeader(cluster.nodes.map((n) => n.id).filter((id) => id !== leader));
    const afterFailover = await client.orchestrator.getVm("keeper");
    expect(afterFailover).toMatchObject({ status: "running", nodeId: home, restarts: 0 });
    expect(sleepProcessesWith(marker)).toEqual([firstPid]);
    cluster.start(leader, "restart");
    await allUp();

    // Its node dies, and its VM process with it (bound to the node: it would otherwise run on
    // beside the copy started elsewhere); after the dead-worker timeout the VM runs elsewhere.
    await cluster.kill(home);
    await until(
      () => (sleepProcessesWith(marker).includes(firstPid!) ? undefined : true),
      `the VM process (pid ${firstPid}) to die with its node`,
      10_000,
    );
    const moved = await until(
      async () => {
        const vm = await client.orchestrator.getVm("keeper");
        return vm.status === "running" && vm.nodeId !== home ? vm : undefined;
      },
      "the VM to run on another node",
      30_000,
    );
    expect(moved.nodeId).not.toBe(home);

    // The dead node comes back: one copy runs.
    const restarted = cluster.start(home, "restart");
    await allUp();
    await until(
      () => (sleepProcessesWith(marker).length === 1 ? true : undefined),
      "exactly one VM process once the old node reconciled",
      30_000,
    );
    expect(sleepProcessesWith(marker)).not.toContain(firstPid);
    // Its replayed log still placed the VM on it, but its agent waited until the node had caught
    // up with the cluster (which moved the VM): it never started a second copy, even briefly.
    expect(
      restarted.logLines().filter((l) => l["msg"] === "starting VM" && l["vm"] === "keeper"),
    ).toEqual([]);
    await client.orchestrator.stopVm("keeper");
    await until(
      async () =>
        (await client.orchestrator.getVm("keeper")).status === "stopped" ? true : undefined,
      "the VM to stop",
    );
    await until(
      () => (sleepProcessesWith(marker).length === 0 ? true : undefined),
      "no VM process",
    );
    await client.orchestrator.deleteVm("keeper");
  });

  it("refuses bad specs with clear errors and keeps serving", async () => {
    await allUp();
    const url = cluster.node(1).apiUrl;
    const cases = [
      {
        what: "negative memory",
        path: "/v1/tasks",
        body: { spec: { command: "echo", resources: { memoryMb: -1 } } },
        status: 400,
        message: /memoryMb/,
      },
      {
        what: "unknown driver",
        path: "/v1/vms",
        body: { name: "bad", spec: { driver: "docker", command: "x" } },
        status: 400,
        message: /driver/,
      },
      {
        what: "missing command",
        path: "/v1/tasks",
        body: { spec: { args: ["x"] } },
        status: 400,
        message: /command/,
      },
      {
        what: "a process VM without a command",
        path: "/v1/vms",
        body: { name: "empty", spec: { driver: "process" } },
        status: 400,
        message: /command/,
      },
    ];
    for (const c of cases) {
      const answer = await http(url, "POST", c.path, { body: JSON.stringify(c.body) });
      expect(answer.status, c.what).toBe(c.status);
      expect((answer.body as { code: string }).code, c.what).toBe("INVALID_ARGUMENT");
      expect((answer.body as { message: string }).message, c.what).toMatch(c.message);
    }
    const spec = { driver: "process", command: "sleep", args: ["1"] };
    const first = await http(url, "POST", "/v1/vms", {
      body: JSON.stringify({ name: "twin", spec, desired: "stopped" }),
    });
    expect(first.status, JSON.stringify(first.body)).toBe(200);
    const second = await http(url, "POST", "/v1/vms", {
      body: JSON.stringify({ name: "twin", spec, desired: "stopped" }),
    });
    expect(second.status).toBe(409);
    expect((second.body as { code: string }).code).toBe("CONFLICT");
    expect((second.body as { message: string }).message).toMatch(/twin/);
    const ok = await client.orchestrator.submitTask({ command: "true" });
    expect((await client.orchestrator.waitTask(ok.id, { timeoutMs: 30_000 })).status).toBe(
      "succeeded",
    );
  });
});
