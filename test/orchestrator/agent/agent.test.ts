/**
 * The agent against the real replicated model: a {@link FakeCluster} applies what the agent
 * proposes to a real ClusterStateMachine (and can delay, lose, duplicate or hold proposals), while
 * the test plays the rest of the cluster (other workers, users, the leader's liveness monitor) by
 * applying commands directly, and drives the task runner and the VM driver by hand.
 */
import { describe, expect, it } from "vitest";
import type { OrchestratorCommand } from "../../../src/statemachine/orchestrator/index.js";
import type { TaskRun } from "../../../src/orchestrator/drivers/task-runner.js";
import { qemuSpec, res, taskSpec, vmSpec } from "../model/fixtures.js";
import {
  AGENT_CAPACITY,
  AGENT_NODE,
  FakeCluster,
  startAgent,
  type FakeDiskServer,
  type ProposalFate,
} from "./agent-fakes.js";
import { DISK_LOOKUP_INTERVAL_MS } from "../../../src/orchestrator/agent/agent.js";

const OTHER_NODE = 2;

/** Registers another worker directly (as its own agent would). */
function registerOther(cluster: FakeCluster, capacity = AGENT_CAPACITY): void {
  cluster.apply({ type: "registerWorker", nodeId: OTHER_NODE, capacity, features: ["raw_exec"] });
}

/** Submits task `id` (tagged with its id in `args[0]`). */
function submit(cluster: FakeCluster, id: string, maxAttempts = 3): void {
  cluster.apply({ type: "submitTask", id, spec: taskSpec({ args: [id], maxAttempts }) });
}

/** A started agent whose worker is registered and settled. */
async function registeredAgent(cluster = new FakeCluster()) {
  const parts = startAgent(cluster);
  await cluster.clock.advance(10);
  expect(cluster.machine.orchestrator.worker(AGENT_NODE)?.status).toBe("online");
  return { cluster, ...parts };
}

describe("Agent: worker registration", () => {
  it("registers the node with its capacity and sorted, unique features", async () => {
    const cluster = new FakeCluster();
    startAgent(cluster, { features: ["ssd", "kvm", "ssd"] });
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.worker(AGENT_NODE)).toMatchObject({
      status: "online",
      capacity: AGENT_CAPACITY,
      features: ["kvm", "ssd"],
    });
    // Once registered, further reconciles propose nothing more.
    await cluster.clock.advance(5000);
    expect(cluster.proposalsOf("registerWorker")).toHaveLength(1);
  });

  it("keeps trying to register while the cluster cannot take it", async () => {
    const cluster = new FakeCluster();
    let lost = 3;
    cluster.fate = (c) => (c.type === "registerWorker" && lost-- > 0 ? "lose" : "apply");
    startAgent(cluster);
    await cluster.clock.advance(5000);
    expect(cluster.machine.orchestrator.worker(AGENT_NODE)?.status).toBe("online");
    expect(cluster.proposalsOf("registerWorker").map((p) => p.fate)).toEqual([
      "lose",
      "lose",
      "lose",
      "apply",
    ]);
  });

  it("waits 100 ms, then twice as long each time (up to 2 s), after a refused registration, however much is applied meanwhile", async () => {
    const cluster = new FakeCluster();
    let refused = 7;
    const attemptsAt: number[] = [];
    cluster.fate = (c) => {
      if (c.type !== "registerWorker") return "apply";
      attemptsAt.push(cluster.clock.now());
      return refused-- > 0 ? "lose" : "apply";
    };
    const { agent } = startAgent(cluster);
    // Other writes keep the agent reconciling every millisecond, as a busy cluster's applies do.
    for (let ms = 0; ms < 12_000; ms++) {
      agent.notify();
      await cluster.clock.advance(1);
    }
    expect(cluster.machine.orchestrator.worker(AGENT_NODE)?.status).toBe("online");
    const gaps = attemptsAt.slice(1).map((at, i) => at - (attemptsAt[i] as number));
    // Each gap is the pause (+ the turn the refusal and the reconcile take).
    const pauses = [100, 200, 400, 800, 1600, 2000, 2000];
    expect(gaps).toHaveLength(pauses.length);
    gaps.forEach((gap, i) => {
      expect(gap).toBeGreaterThanOrEqual(pauses[i] as number);
      expect(gap).toBeLessThanOrEqual((pauses[i] as number) + 5);
    });
  });

  it("registers again after the leader marked it offline, and again when its capacity changes", async () => {
    const { cluster } = await registeredAgent();
    cluster.apply({ type: "markWorkerOffline", nodeId: AGENT_NODE });
    expect(cluster.machine.orchestrator.worker(AGENT_NODE)?.status).toBe("offline");
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.worker(AGENT_NODE)?.status).toBe("online");
    expect(cluster.proposalsOf("registerWorker")).toHaveLength(2);

    // Someone registered this node with other numbers (an older agent): the agent puts its own back.
    cluster.apply({
      type: "registerWorker",
      nodeId: AGENT_NODE,
      capacity: res(1000, 1024),
      features: ["gpu"],
    });
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.worker(AGENT_NODE)).toMatchObject({
      capacity: AGENT_CAPACITY,
      features: ["raw_exec"],
    });
  });
});

describe("Agent: tasks", () => {
  it("runs an assigned task once and reports it started and finished, once each", async () => {
    const { cluster, runner } = await registeredAgent();
    submit(cluster, "t1");
    expect(cluster.machine.orchestrator.task("t1")).toMatchObject({
      status: "assigned",
      nodeId: AGENT_NODE,
    });
    await cluster.clock.advance(10);
    const [run] = runner.runsOf("t1");
    expect(run).toBeDefined();
    run?.start();
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.task("t1")?.status).toBe("running");
    run?.end("succeeded", { stdout: "hello\n" });
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.task("t1")).toMatchObject({
      status: "succeeded",
      result: { exitCode: 0, stdout: "hello\n" },
    });
    // Many reconciles later: nothing is run or reported again.
    await cluster.clock.advance(10_000);
    expect(runner.runsOf("t1")).toHaveLength(1);
    expect(cluster.proposalsOf("taskStarted", "t1")).toHaveLength(1);
    expect(cluster.proposalsOf("taskFinished", "t1")).toHaveLength(1);
    expect(cluster.proposalsOf("taskFinished", "t1")[0]?.command).toMatchObject({
      nodeId: AGENT_NODE,
      attempt: 1,
      outcome: "succeeded",
    });
  });

  for (const fate of ["lose", "lose-answer", "duplicate"] as const) {
    it(`runs a task once and ends it right when reports ${fate === "duplicate" ? "apply twice" : `are lost (${fate})`}`, async () => {
      const { cluster, runner } = await registeredAgent();
      const firstTry = new Set<string>();
      cluster.fate = (c: OrchestratorCommand): ProposalFate => {
        if (c.type !== "taskStarted" && c.type !== "taskFinished") return "apply";
        if (firstTry.has(c.type)) return "apply";
        firstTry.add(c.type);
        return fate;
      };
      cluster.delayMs = 3;
      submit(cluster, "t1");
      await cluster.clock.advance(10);
      runner.runsOf("t1")[0]?.start();
      await cluster.clock.advance(1000);
      expect(cluster.machine.orchestrator.task("t1")?.status).toBe("running");
      runner.runsOf("t1")[0]?.end("failed", { exitCode: 3 });
      await cluster.clock.advance(5000);
      expect(cluster.machine.orchestrator.task("t1")).toMatchObject({
        status: "failed",
        attempts: 1,
        result: { exitCode: 3 },
      });
      expect(runner.runsOf("t1")).toHaveLength(1);
      // A lost report is retried; an applied one is not sent again.
      const finished = cluster.proposalsOf("taskFinished", "t1").map((p) => p.fate);
      expect(finished).toEqual(fate === "duplicate" ? ["duplicate"] : [fate, "apply"]);
    });
  }

  it("takes a runner that says the attempt started before it returns (a task that ends at once)", async () => {
    const cluster = new FakeCluster();
    startAgent(cluster, {
      runTask: (_spec, options) => {
        options.onStarted();
        const ended: TaskRun = {
          outcome: "succeeded",
          result: {
            exitCode: 0,
            stdout: "",
            stderr: "",
            stdoutTruncated: false,
            stderrTruncated: false,
            durationMs: 0,
            error: "",
          },
        };
        return Promise.resolve(ended);
      },
    });
    await cluster.clock.advance(10);
    submit(cluster, "quick");
    await cluster.clock.advance(10);
    expect(cluster.proposalsOf("taskStarted", "quick")).toHaveLength(1);
    expect(cluster.machine.orchestrator.task("quick")?.status).toBe("succeeded");
  });

  it("kills a cancelled task and reports it cancelled", async () => {
    const { cluster, runner } = await registeredAgent();
    submit(cluster, "t1");
    await cluster.clock.advance(10);
    const run = runner.runsOf("t1")[0];
    run?.start();
    await cluster.clock.advance(10);
    cluster.apply({ type: "cancelTask", id: "t1" });
    expect(run?.signal.aborted).toBe(false);
    await cluster.clock.advance(10);
    expect(run?.signal.aborted).toBe(true);
    expect(cluster.machine.orchestrator.task("t1")).toMatchObject({
      status: "cancelled",
      result: { exitCode: null },
    });
    expect(cluster.proposalsOf("taskFinished", "t1")).toHaveLength(1);
  });

  it("reports a task cancelled before it started without running it", async () => {
    const { cluster, runner } = await registeredAgent();
    // Both apply before the agent's next reconcile.
    submit(cluster, "t1");
    cluster.apply({ type: "cancelTask", id: "t1" });
    await cluster.clock.advance(10);
    expect(runner.runsOf("t1")).toEqual([]);
    expect(cluster.machine.orchestrator.task("t1")?.status).toBe("cancelled");
  });

  it("kills, without reporting it, an attempt lost to markWorkerOffline and moved elsewhere", async () => {
    const { cluster, runner } = await registeredAgent();
    submit(cluster, "t1");
    registerOther(cluster);
    await cluster.clock.advance(10);
    const run = runner.runsOf("t1")[0];
    run?.start();
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.task("t1")?.status).toBe("running");

    // The leader stopped hearing from this node: the task moves to node 2 as attempt 2.
    cluster.apply({ type: "markWorkerOffline", nodeId: AGENT_NODE });
    expect(cluster.machine.orchestrator.task("t1")).toMatchObject({
      status: "assigned",
      nodeId: OTHER_NODE,
      attempts: 2,
    });
    await cluster.clock.advance(10);
    expect(run?.signal.aborted).toBe(true);
    await cluster.clock.advance(5000);
    expect(cluster.proposalsOf("taskFinished", "t1")).toEqual([]);
    expect(runner.runsOf("t1")).toHaveLength(1);
    expect(cluster.machine.orchestrator.task("t1")).toMatchObject({
      status: "assigned",
      nodeId: OTHER_NODE,
      attempts: 2,
    });
    // And the node came back as a worker.
    expect(cluster.machine.orchestrator.worker(AGENT_NODE)?.status).toBe("online");
  });

  it("drops a late report of an attempt the model has moved past, instead of retrying it", async () => {
    const { cluster, runner } = await registeredAgent();
    submit(cluster, "t1");
    registerOther(cluster);
    await cluster.clock.advance(10);
    const run = runner.runsOf("t1")[0];
    run?.start();
    await cluster.clock.advance(10);
    // The end is reported, but the report is held (this node is cut off) ...
    cluster.fate = (c) => (c.type === "taskFinished" ? "hold" : "apply");
    run?.end("succeeded");
    await cluster.clock.advance(10);
    // ... and meanwhile the leader moves the task away.
    cluster.apply({ type: "markWorkerOffline", nodeId: AGENT_NODE });
    cluster.releaseHeld();
    await cluster.clock.advance(10_000);
    expect(cluster.proposalsOf("taskFinished", "t1")).toHaveLength(1);
    expect(cluster.machine.orchestrator.task("t1")).toMatchObject({
      status: "assigned",
      nodeId: OTHER_NODE,
      attempts: 2,
    });
  });

  it("a new agent reports failed a task the model shows running here, and runs an assigned one", async () => {
    const { cluster, agent, runner } = await registeredAgent();
    submit(cluster, "running");
    await cluster.clock.advance(10);
    runner.runsOf("running")[0]?.start();
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.task("running")?.status).toBe("running");
    // The agent dies with its processes; a task is assigned meanwhile.
    await agent.close({ stopWork: false });
    submit(cluster, "assigned");
    await cluster.clock.advance(10);
    expect(runner.runsOf("assigned")).toEqual([]);

    const restarted = startAgent(cluster);
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.task("running")).toMatchObject({
      status: "failed",
      result: { exitCode: null, error: expect.stringContaining("restarted") },
    });
    expect(restarted.runner.runsOf("running")).toEqual([]);
    expect(restarted.runner.runsOf("assigned")).toHaveLength(1);
    await cluster.clock.advance(5000);
    expect(cluster.proposalsOf("taskFinished", "running")).toHaveLength(1);
  });
});

describe("Agent: VMs", () => {
  function createVm(cluster: FakeCluster, name: string, restart = 3): void {
    cluster.apply({
      type: "createVm",
      name,
      spec: vmSpec({ restart: { mode: "on-failure", maxRestarts: restart, backoffMs: 100 } }),
      desired: "running",
    });
  }

  it("starts a VM placed here and reports what the driver observes", async () => {
    const { cluster, vms } = await registeredAgent();
    createVm(cluster, "web");
    expect(cluster.machine.orchestrator.vm("web")).toMatchObject({
      status: "scheduled",
      nodeId: AGENT_NODE,
    });
    await cluster.clock.advance(10);
    const [handle] = vms.handlesOf("web");
    expect(handle?.request.previousRestarts).toBe(0);
    expect(cluster.machine.orchestrator.vm("web")?.status).toBe("starting");
    handle?.emit({ status: "running", pid: 42 });
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.vm("web")?.status).toBe("running");
    handle?.emit({ status: "starting", restarts: 1, lastError: "exit 1", restartInMs: 100 });
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.vm("web")).toMatchObject({
      status: "starting",
      restarts: 1,
      lastError: "exit 1",
    });
    await cluster.clock.advance(5000);
    expect(vms.handlesOf("web")).toHaveLength(1);
  });

  it("says again what runs when an older report lands after a newer one, and only then", async () => {
    const { cluster, vms } = await registeredAgent();
    // The first "starting" report times out at the agent but lands after "running" (simulator
    // seed 7300830 with --agents 5: the model then waited for a start for good).
    let late = true;
    cluster.fate = (c) => {
      if (c.type !== "vmObserved" || c.status !== "starting" || !late) return "apply";
      late = false;
      return "late";
    };
    createVm(cluster, "web");
    await cluster.clock.advance(10);
    const handle = vms.handlesOf("web")[0];
    handle?.emit({ status: "running", pid: 42 });
    await cluster.clock.advance(2000);
    expect(cluster.machine.orchestrator.vm("web")?.status).toBe("running");
    const running = () =>
      cluster
        .proposalsOf("vmObserved")
        .filter((p) => p.command.type === "vmObserved" && p.command.status === "running");
    expect(running()).toHaveLength(1);

    cluster.releaseHeld();
    expect(cluster.machine.orchestrator.vm("web")?.status).toBe("starting");
    await cluster.clock.advance(2000);
    expect(cluster.machine.orchestrator.vm("web")?.status).toBe("running");
    expect(running()).toHaveLength(2);
    // Once the model agrees, resyncs and applies say nothing more.
    submit(cluster, "other");
    await cluster.clock.advance(5000);
    expect(running()).toHaveLength(2);
    expect(vms.handlesOf("web")).toHaveLength(1);
  });

  it("stops a VM whose desired state is stopped and reports it stopped, which releases it", async () => {
    const { cluster, vms } = await registeredAgent();
    createVm(cluster, "web");
    await cluster.clock.advance(10);
    const handle = vms.handlesOf("web")[0];
    handle?.emit({ status: "running" });
    await cluster.clock.advance(10);
    cluster.apply({ type: "setVmDesired", name: "web", desired: "stopped" });
    await cluster.clock.advance(10);
    expect(handle?.stopCalls).toBe(1);
    expect(cluster.machine.orchestrator.vm("web")).toMatchObject({
      desired: "stopped",
      status: "stopped",
      nodeId: null,
    });
    expect(cluster.machine.orchestrator.worker(AGENT_NODE)?.allocated).toEqual(res(0, 0, 0));
    await cluster.clock.advance(5000);
    expect(vms.handlesOf("web")).toHaveLength(1);
  });

  it("discards a VM's stored disk once it is deleted and stopped, never a stopped VM's", async () => {
    const { cluster, vms } = await registeredAgent();
    createVm(cluster, "kept");
    createVm(cluster, "gone");
    await cluster.clock.advance(10);
    for (const handle of vms.handles) handle.emit({ status: "running" });
    await cluster.clock.advance(2000);
    expect(vms.discarded).toEqual([]);
    cluster.apply({ type: "setVmDesired", name: "kept", desired: "stopped" });
    cluster.apply({ type: "setVmDesired", name: "gone", desired: "stopped" });
    await cluster.clock.advance(2000);
    cluster.apply({ type: "deleteVm", name: "gone" });
    await cluster.clock.advance(2000);
    expect(vms.discarded).toEqual(["gone"]);
    expect([...vms.stored]).toEqual(["kept"]);
  });

  it("stops quietly a VM moved to another node, and one deleted while this node was cut off", async () => {
    const { cluster, vms } = await registeredAgent();
    createVm(cluster, "moved");
    createVm(cluster, "deleted");
    await cluster.clock.advance(10);
    for (const handle of vms.handles) handle.emit({ status: "running" });
    await cluster.clock.advance(10);

    // Node 1 goes offline; "moved" lands on node 2, "deleted" is stopped and deleted meanwhile;
    // all of it applies before the agent reconciles.
    registerOther(cluster, res(1000, 512));
    cluster.apply({ type: "markWorkerOffline", nodeId: AGENT_NODE });
    cluster.apply({ type: "setVmDesired", name: "deleted", desired: "stopped" });
    cluster.apply({ type: "deleteVm", name: "deleted" });
    expect(cluster.machine.orchestrator.vm("moved")?.nodeId).toBe(OTHER_NODE);
    const reportsBefore = cluster.proposalsOf("vmObserved").length;
    await cluster.clock.advance(5000);
    expect(vms.handles.map((h) => h.stopCalls)).toEqual([1, 1]);
    expect(cluster.proposalsOf("vmObserved")).toHaveLength(reportsBefore);
    expect(cluster.machine.orchestrator.vm("moved")).toMatchObject({
      nodeId: OTHER_NODE,
      status: "scheduled",
    });
    expect(cluster.machine.orchestrator.vm("deleted")).toBeUndefined();
    expect(vms.handles).toHaveLength(2);
  });

  it("says once that it stops a VM moved away, however long the stop takes", async () => {
    const cluster = new FakeCluster();
    const lines: string[] = [];
    const record = (message: string) => lines.push(message);
    const { vms } = startAgent(cluster, {
      log: { debug: () => undefined, info: record, warn: record },
    });
    await cluster.clock.advance(10);
    createVm(cluster, "web");
    await cluster.clock.advance(10);
    const handle = vms.handlesOf("web")[0];
    if (handle === undefined) throw new Error("the VM was not started");
    handle.holdStop = true;
    registerOther(cluster);
    cluster.apply({ type: "markWorkerOffline", nodeId: AGENT_NODE });
    // Many reconciles (applies and resyncs) while the stop is under way.
    for (let i = 0; i < 5; i++) {
      submit(cluster, `t${i}`);
      await cluster.clock.advance(1000);
    }
    expect(handle.stopCalls).toBeGreaterThan(0);
    handle.releaseStop();
    await cluster.clock.advance(10);
    expect(lines.filter((l) => l === "stopping a VM no longer placed here")).toHaveLength(1);
    expect(vms.handlesOf("web")).toHaveLength(1);
  });

  it("says that a VM's stop failed, and goes on, when the driver cannot stop it", async () => {
    const cluster = new FakeCluster();
    const warnings: { message: string; fields: unknown }[] = [];
    const { vms } = startAgent(cluster, {
      log: {
        debug: () => undefined,
        info: () => undefined,
        warn: (message, fields) => warnings.push({ message, fields }),
      },
    });
    await cluster.clock.advance(10);
    createVm(cluster, "web");
    createVm(cluster, "db");
    await cluster.clock.advance(10);
    const [web, db] = [vms.handlesOf("web")[0], vms.handlesOf("db")[0]];
    if (web === undefined || db === undefined) throw new Error("the VMs were not started");
    web.emit({ status: "running" });
    db.emit({ status: "running" });
    web.failStop = new Error("kill EPERM");
    cluster.apply({ type: "setVmDesired", name: "web", desired: "stopped" });
    await cluster.clock.advance(10);
    expect(web.stopCalls).toBe(1);
    expect(warnings).toEqual([
      { message: "could not stop a VM", fields: { vm: "web", error: "kill EPERM" } },
    ]);
    // The agent still works: the other VM stops and is reported stopped.
    cluster.apply({ type: "setVmDesired", name: "db", desired: "stopped" });
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.vm("db")).toMatchObject({ status: "stopped" });
  });

  it("does not restart a VM that failed for good until the model asks again", async () => {
    const { cluster, vms } = await registeredAgent();
    createVm(cluster, "web");
    await cluster.clock.advance(10);
    vms.handlesOf("web")[0]?.end("failed", "exit 1 after 3 restarts");
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.vm("web")).toMatchObject({
      status: "failed",
      nodeId: AGENT_NODE,
      lastError: "exit 1 after 3 restarts",
    });
    await cluster.clock.advance(10_000);
    expect(vms.handlesOf("web")).toHaveLength(1);

    // The user starts it again: it is placed afresh (restarts reset) and started.
    cluster.apply({ type: "setVmDesired", name: "web", desired: "running" });
    await cluster.clock.advance(10);
    expect(vms.handlesOf("web")).toHaveLength(2);
    expect(vms.handlesOf("web")[1]?.request.previousRestarts).toBe(0);
    expect(cluster.machine.orchestrator.vm("web")?.status).toBe("starting");
  });

  it("does not restart a VM that exited cleanly", async () => {
    const { cluster, vms } = await registeredAgent();
    createVm(cluster, "job");
    await cluster.clock.advance(10);
    vms.handlesOf("job")[0]?.end("stopped");
    await cluster.clock.advance(10_000);
    expect(cluster.machine.orchestrator.vm("job")).toMatchObject({
      desired: "running",
      status: "stopped",
      nodeId: AGENT_NODE,
    });
    expect(vms.handlesOf("job")).toHaveLength(1);
  });

  it("a new agent restarts the VMs the model runs here, carrying the restart count on", async () => {
    const { cluster, agent, vms } = await registeredAgent();
    createVm(cluster, "web");
    await cluster.clock.advance(10);
    vms.handlesOf("web")[0]?.emit({ status: "running", restarts: 2 });
    await cluster.clock.advance(10);
    await agent.close({ stopWork: false });

    const restarted = startAgent(cluster);
    await cluster.clock.advance(10);
    expect(restarted.vms.handlesOf("web")).toHaveLength(1);
    expect(restarted.vms.handlesOf("web")[0]?.request.previousRestarts).toBe(2);
  });

  it("says a VM wanted stopped that it does not run is stopped as asked, so a view behind the cluster cannot stop a VM started again", async () => {
    const { cluster, agent, vms } = await registeredAgent();
    createVm(cluster, "web");
    await cluster.clock.advance(10);
    vms.handlesOf("web")[0]?.emit({ status: "running" });
    await cluster.clock.advance(10);
    await agent.close({ stopWork: false });
    // Stopped while no agent ran here: the next one finds it wanted stopped and not running here.
    cluster.fate = (c) => (c.type === "vmObserved" && c.status === "stopped" ? "hold" : "apply");
    cluster.apply({ type: "setVmDesired", name: "web", desired: "stopped" });
    startAgent(cluster);
    await cluster.clock.advance(10);
    const report = cluster.proposalsOf("vmObserved", "web").at(-1)?.command;
    expect(report).toMatchObject({ status: "stopped", requestedStop: true });
    // The report is late: the VM was started again and went back to the queue meanwhile.
    cluster.apply({
      type: "vmObserved",
      name: "web",
      nodeId: AGENT_NODE,
      status: "stopping",
      restarts: 0,
      error: "",
    });
    cluster.apply({ type: "setVmDesired", name: "web", desired: "running" });
    cluster.apply({
      type: "vmObserved",
      name: "web",
      nodeId: AGENT_NODE,
      status: "stopped",
      restarts: 0,
      error: "",
      requestedStop: true,
    });
    expect(cluster.machine.orchestrator.vm("web")?.status).toBe("scheduled");
    cluster.releaseHeld();
    cluster.fate = () => "apply";
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.vm("web")).toMatchObject({
      desired: "running",
      nodeId: AGENT_NODE,
    });
    expect(cluster.machine.orchestrator.vm("web")?.status).not.toBe("stopped");
  });

  it("starts again a VM whose stop was overtaken by a new start", async () => {
    const { cluster, vms } = await registeredAgent();
    createVm(cluster, "web");
    await cluster.clock.advance(10);
    vms.handlesOf("web")[0]?.emit({ status: "running" });
    await cluster.clock.advance(10);
    // The user stops the VM and starts it again before the agent's stop report applies.
    cluster.fate = (c) => (c.type === "vmObserved" && c.status === "stopped" ? "hold" : "apply");
    cluster.apply({ type: "setVmDesired", name: "web", desired: "stopped" });
    await cluster.clock.advance(10);
    cluster.apply({ type: "setVmDesired", name: "web", desired: "running" });
    cluster.releaseHeld();
    cluster.fate = () => "apply";
    await cluster.clock.advance(5000);
    const handles = vms.handlesOf("web");
    expect(handles).toHaveLength(2);
    handles[1]?.emit({ status: "running" });
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.vm("web")).toMatchObject({
      desired: "running",
      status: "running",
      nodeId: AGENT_NODE,
    });
  });
});

describe("Agent: live migration", () => {
  const URI = "tcp:127.0.0.1:5555";
  const DISK_URI = "nbd:127.0.0.1:5556";

  /** An agent running qemu VMs, and node 2 registered with qemu too. */
  async function qemuAgents() {
    const cluster = new FakeCluster();
    const parts = startAgent(cluster, { vmKind: "qemu", features: ["qemu"] });
    await cluster.clock.advance(10);
    cluster.apply({
      type: "registerWorker",
      nodeId: OTHER_NODE,
      capacity: AGENT_CAPACITY,
      features: ["qemu"],
    });
    return { cluster, ...parts };
  }

  /** Qemu VM `name`, desired running, with a `diskGb` data disk (0: none). */
  function createQemuVm(cluster: FakeCluster, name: string, diskGb = 0): void {
    cluster.apply({ type: "createVm", name, spec: qemuSpec({ diskGb }), desired: "running" });
  }

  function observed(name: string, nodeId: number, status: "booting" | "running" | "failed") {
    return {
      type: "vmObserved",
      name,
      nodeId,
      status,
      restarts: 0,
      error: status === "failed" ? "no stream" : "",
      ...(status === "booting" ? { incomingUri: URI } : {}),
    } as const;
  }

  /** VM `v` running here (node 1). */
  async function runningHere() {
    const parts = await qemuAgents();
    createQemuVm(parts.cluster, "v");
    await parts.cluster.clock.advance(10);
    const [handle] = parts.vms.handlesOf("v");
    if (handle === undefined) throw new Error("the VM was not started");
    handle.emit({ status: "running" });
    await parts.cluster.clock.advance(10);
    expect(parts.cluster.machine.orchestrator.vm("v")).toMatchObject({
      nodeId: AGENT_NODE,
      status: "running",
    });
    return { ...parts, handle };
  }

  it("as the source, sends the VM once the target listens, and lets it go once it moved", async () => {
    const { cluster, handle } = await runningHere();
    cluster.apply({ type: "migrateVm", name: "v", targetNodeId: OTHER_NODE });
    await cluster.clock.advance(10);
    expect(handle.migrations).toHaveLength(0);
    cluster.apply(observed("v", OTHER_NODE, "booting"));
    await cluster.clock.advance(10);
    // To the target's address, naming the target node (over TLS its certificate must say so).
    expect(handle.migrations.map((m) => [m.uri, m.nodeId])).toEqual([[URI, OTHER_NODE]]);
    handle.migrations[0]?.complete();
    await cluster.clock.advance(10);
    const reports = cluster.proposalsOf("vmObserved", "v").length;
    cluster.apply(observed("v", OTHER_NODE, "running"));
    await cluster.clock.advance(10);
    expect(handle.stopCalls).toBe(1);
    expect(handle.migrations).toHaveLength(1);
    expect(cluster.proposalsOf("vmObserved", "v")).toHaveLength(reports);
    expect(cluster.machine.orchestrator.vm("v")).toMatchObject({
      nodeId: OTHER_NODE,
      status: "running",
    });
  });

  it("as the source, sends the disk where the target's disk listens", async () => {
    const { cluster, handle } = await runningHere();
    cluster.apply({ type: "migrateVm", name: "v", targetNodeId: OTHER_NODE });
    cluster.apply({ ...observed("v", OTHER_NODE, "booting"), incomingDiskUri: DISK_URI });
    await cluster.clock.advance(10);
    expect(handle.migrations.map((m) => [m.uri, m.diskUri])).toEqual([[URI, DISK_URI]]);
  });

  it("as the source, says at once that it could not send the VM: the model rolls back", async () => {
    const { cluster, handle } = await runningHere();
    cluster.apply({ type: "migrateVm", name: "v", targetNodeId: OTHER_NODE });
    cluster.apply(observed("v", OTHER_NODE, "booting"));
    await cluster.clock.advance(10);
    handle.migrations[0]?.fail(new Error("connection refused"));
    await cluster.clock.advance(10);
    expect(cluster.proposalsOf("vmObserved", "v").at(-1)?.command).toMatchObject({
      nodeId: AGENT_NODE,
      status: "running",
      sendFailedTo: URI,
      error: "connection refused",
    });
    expect(cluster.machine.orchestrator.vm("v")).toMatchObject({
      nodeId: AGENT_NODE,
      status: "running",
      lastError: `migration to node ${OTHER_NODE} failed: connection refused`,
    });
    expect(cluster.machine.orchestrator.vm("v")?.migration).toBeUndefined();
    expect(handle.stopCalls).toBe(0);
  });

  it("discards its disk of a VM that moved to another node, once its copy has stopped", async () => {
    const { cluster, handle, vms } = await runningHere();
    cluster.apply({ type: "migrateVm", name: "v", targetNodeId: OTHER_NODE });
    cluster.apply(observed("v", OTHER_NODE, "booting"));
    await cluster.clock.advance(2000);
    expect(vms.discarded).toEqual([]);
    handle.migrations[0]?.complete();
    cluster.apply(observed("v", OTHER_NODE, "running"));
    await cluster.clock.advance(2000);
    expect(handle.stopCalls).toBe(1);
    expect(vms.discarded).toEqual(["v"]);
  });

  it("starts a VM whose current disk is on another node on a fresh disk, and keeps its own disk", async () => {
    const { cluster, vms } = await qemuAgents();
    // Runs on node 2 first (this node drained): its current disk is there.
    cluster.apply({ type: "setWorkerDrain", nodeId: AGENT_NODE, draining: true });
    createQemuVm(cluster, "d", 1);
    cluster.apply(observed("d", OTHER_NODE, "running"));
    expect(cluster.machine.orchestrator.vm("d")?.diskNodeId).toBe(OTHER_NODE);
    // Node 2 drained, this one back: the VM comes here, and a disk of it kept here is stale.
    cluster.apply({ type: "setWorkerDrain", nodeId: AGENT_NODE, draining: false });
    cluster.apply({ type: "setWorkerDrain", nodeId: OTHER_NODE, draining: true });
    await cluster.clock.advance(10);
    const [first] = vms.handlesOf("d");
    expect(first?.request.freshDisk).toBe(true);
    first?.emit({ status: "running" });
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.vm("d")?.diskNodeId).toBe(AGENT_NODE);
    // Stopped and started again: the disk here is the current one, kept and used as it is.
    cluster.apply({ type: "setVmDesired", name: "d", desired: "stopped" });
    await cluster.clock.advance(10);
    await cluster.clock.advance(5000);
    expect(cluster.machine.orchestrator.vm("d")).toMatchObject({ status: "stopped", nodeId: null });
    expect(vms.discarded).toEqual([]);
    cluster.apply({ type: "setVmDesired", name: "d", desired: "running" });
    await cluster.clock.advance(10);
    expect(vms.handlesOf("d")).toHaveLength(2);
    expect(vms.handlesOf("d")[1]?.request.freshDisk).toBeUndefined();
  });

  it("as an agent-only worker, keeps the disk of a VM it does not see (stopped, not deleted)", async () => {
    const cluster = new FakeCluster();
    const { vms } = startAgent(cluster, {
      vmKind: "qemu",
      features: ["qemu"],
      partialVmView: true,
    });
    await cluster.clock.advance(10);
    createQemuVm(cluster, "d", 1);
    await cluster.clock.advance(10);
    const [first] = vms.handlesOf("d");
    // Never run anywhere before: a disk kept under its name is not its own.
    expect(first?.request.freshDisk).toBe(true);
    first?.emit({ status: "running" });
    await cluster.clock.advance(10);
    cluster.apply({ type: "setVmDesired", name: "d", desired: "stopped" });
    await cluster.clock.advance(10);
    await cluster.clock.advance(5000);
    expect(cluster.machine.orchestrator.vm("d")).toMatchObject({ status: "stopped", nodeId: null });
    expect(vms.discarded).toEqual([]);
    cluster.apply({ type: "setVmDesired", name: "d", desired: "running" });
    await cluster.clock.advance(10);
    expect(vms.handlesOf("d")[1]?.request.freshDisk).toBeUndefined();
  });

  it("as an agent-only worker, asks a server about the disks it does not see: discards a deleted VM's, at most once a minute", async () => {
    const cluster = new FakeCluster();
    const diskServer: FakeDiskServer = { asked: [], up: true };
    const { vms } = startAgent(cluster, {
      vmKind: "qemu",
      features: ["qemu"],
      partialVmView: true,
      diskServer,
    });
    await cluster.clock.advance(10);
    createQemuVm(cluster, "d", 1);
    await cluster.clock.advance(10);
    vms.handlesOf("d")[0]?.emit({ status: "running" });
    await cluster.clock.advance(10);
    // Stopped: the view no longer holds it, and the server says its disk is here: kept.
    cluster.apply({ type: "setVmDesired", name: "d", desired: "stopped" });
    await cluster.clock.advance(5000);
    expect(cluster.machine.orchestrator.vm("d")).toMatchObject({ status: "stopped", nodeId: null });
    expect(diskServer.asked).toEqual([["d"]]);
    expect(vms.discarded).toEqual([]);
    // Deleted while no server answers: still kept, and not asked again before the minute is up.
    diskServer.up = false;
    await cluster.clock.advance(DISK_LOOKUP_INTERVAL_MS - 15_000);
    cluster.apply({ type: "deleteVm", name: "d" });
    await cluster.clock.advance(1000);
    expect(diskServer.asked).toEqual([["d"]]);
    await cluster.clock.advance(DISK_LOOKUP_INTERVAL_MS);
    expect(diskServer.asked).toHaveLength(2);
    expect(vms.discarded).toEqual([]);
    // A server answers again: the deleted VM's disk goes at the next lookup.
    diskServer.up = true;
    await cluster.clock.advance(DISK_LOOKUP_INTERVAL_MS);
    expect(diskServer.asked).toHaveLength(3);
    expect(vms.discarded).toEqual(["d"]);
  });

  it("discards its disk of a waiting VM whose current disk is on another node", async () => {
    const { cluster, vms } = await qemuAgents();
    createQemuVm(cluster, "d", 1);
    await cluster.clock.advance(10);
    const [handle] = vms.handlesOf("d");
    handle?.emit({ status: "running" });
    await cluster.clock.advance(10);
    cluster.apply({ type: "migrateVm", name: "d", targetNodeId: OTHER_NODE });
    cluster.apply(observed("d", OTHER_NODE, "booting"));
    await cluster.clock.advance(10);
    handle?.migrations[0]?.complete();
    cluster.apply(observed("d", OTHER_NODE, "running"));
    expect(cluster.machine.orchestrator.vm("d")?.diskNodeId).toBe(OTHER_NODE);
    // Before this node's sweep, node 2 goes offline with this node drained: the VM waits, and
    // the disk here is older than node 2's.
    cluster.apply({ type: "setWorkerDrain", nodeId: AGENT_NODE, draining: true });
    cluster.apply({ type: "markWorkerOffline", nodeId: OTHER_NODE });
    expect(cluster.machine.orchestrator.vm("d")).toMatchObject({ status: "pending", nodeId: null });
    await cluster.clock.advance(5000);
    expect(vms.discarded).toEqual(["d"]);
  });

  it("as the source, resumes a guest it sent when the target fails, and keeps the reason", async () => {
    const { cluster, handle } = await runningHere();
    cluster.apply({ type: "migrateVm", name: "v", targetNodeId: OTHER_NODE });
    cluster.apply(observed("v", OTHER_NODE, "booting"));
    await cluster.clock.advance(10);
    handle.migrations[0]?.complete();
    await cluster.clock.advance(10);
    expect(handle.resumeCalls).toBe(0);
    cluster.apply(observed("v", OTHER_NODE, "failed"));
    await cluster.clock.advance(10);
    expect(handle.resumeCalls).toBe(1);
    expect(handle.stopCalls).toBe(0);
    expect(cluster.machine.orchestrator.vm("v")).toMatchObject({
      nodeId: AGENT_NODE,
      status: "running",
      lastError: `migration to node ${OTHER_NODE} failed: no stream`,
    });
  });

  it("as the target, starts an incoming copy, reports where it listens, and keeps it once it runs", async () => {
    const { cluster, vms } = await qemuAgents();
    // Placed on node 2 while this node is drained, then migrated here.
    cluster.apply({ type: "setWorkerDrain", nodeId: AGENT_NODE, draining: true });
    createQemuVm(cluster, "v");
    cluster.apply(observed("v", OTHER_NODE, "running"));
    cluster.apply({ type: "setWorkerDrain", nodeId: AGENT_NODE, draining: false });
    await cluster.clock.advance(10);
    expect(vms.handles).toHaveLength(0);
    cluster.apply({ type: "migrateVm", name: "v", targetNodeId: AGENT_NODE });
    await cluster.clock.advance(10);
    expect(vms.incoming).toHaveLength(1);
    const incoming = vms.incoming[0];
    if (incoming === undefined) throw new Error("no incoming copy");
    // Only the node the VM runs on may send it (over TLS, its certificate only is admitted).
    expect(incoming.request.sourceNodeId).toBe(OTHER_NODE);
    incoming.emit({ status: "booting", incomingUri: URI });
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.vm("v")?.migration?.incomingUri).toBe(URI);
    incoming.emit({ status: "running" });
    await cluster.clock.advance(10);
    expect(cluster.machine.orchestrator.vm("v")).toMatchObject({
      nodeId: AGENT_NODE,
      status: "running",
    });
    await cluster.clock.advance(2000);
    expect(incoming.stopCalls).toBe(0);
    expect(vms.handles).toHaveLength(1);
  });

  it("as the target, reports a failed incoming copy once and starts no other", async () => {
    const { cluster, vms } = await qemuAgents();
    cluster.apply({ type: "setWorkerDrain", nodeId: AGENT_NODE, draining: true });
    createQemuVm(cluster, "v");
    cluster.apply(observed("v", OTHER_NODE, "running"));
    cluster.apply({ type: "setWorkerDrain", nodeId: AGENT_NODE, draining: false });
    cluster.apply({ type: "migrateVm", name: "v", targetNodeId: AGENT_NODE });
    await cluster.clock.advance(10);
    vms.incoming[0]?.end("failed", "the stream broke");
    await cluster.clock.advance(2000);
    expect(cluster.machine.orchestrator.vm("v")).toMatchObject({
      nodeId: OTHER_NODE,
      status: "running",
      lastError: `migration to node ${AGENT_NODE} failed: the stream broke`,
    });
    expect(vms.handles).toHaveLength(1);
  });
});
