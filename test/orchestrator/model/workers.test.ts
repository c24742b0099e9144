/**
 * The worker commands of the orchestrator model: registration, drain, and failure handling
 * (marking a worker offline moves its work). Each test checks the model's invariants at the end.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  MAX_DRAIN_DEADLINE_MS,
  MAX_WORKERS,
} from "../../../src/statemachine/orchestrator/limits.js";
import { Harness, checkInvariants, qemuSpec, res, taskResult, vmSpec } from "./fixtures.js";

let h: Harness;
afterEach(() => checkInvariants(h.model));

describe("registerWorker", () => {
  it("registers an online worker with sorted, unique features and the log time", () => {
    h = new Harness();
    h.nowMs = 5000;
    const worker = h.register(3, res(4000, 8192, 100), ["ssd", "kvm", "ssd"], false);
    expect(worker).toEqual({
      nodeId: 3,
      capacity: res(4000, 8192, 100),
      features: ["kvm", "ssd"],
      status: "online",
      drain: false,
      allocated: res(0, 0, 0),
      lastSeenMs: 5000,
    });
    expect(h.model.workers().map((w) => w.nodeId)).toEqual([3]);
  });

  it("places pending work when the first worker registers", () => {
    h = new Harness();
    h.submit("t");
    h.createVm("v");
    h.register(1, res(4000, 4096));
    expect(h.task("t")).toMatchObject({ status: "assigned", nodeId: 1 });
    expect(h.vm("v")).toMatchObject({ status: "scheduled", nodeId: 1 });
  });

  it("updates capacity and features on re-registration and places what now fits", () => {
    h = new Harness();
    h.register(1, res(1000, 1024));
    h.submit("big", { resources: res(3000, 1024) });
    h.submit("gpu", { resources: res(1, 1), requiredFeatures: ["gpu"] });
    const worker = h.register(1, res(4000, 2048), ["gpu"]);
    expect(worker.capacity).toEqual(res(4000, 2048));
    expect(h.task("big").status).toBe("assigned");
    expect(h.task("gpu").status).toBe("assigned");
  });

  it("refuses a registration that would strand placed work, changing nothing", () => {
    h = new Harness();
    h.register(1, res(4000, 4096), ["kvm"]);
    h.submit("t", { resources: res(3000, 1000), requiredFeatures: ["kvm"] });
    const shrink = h.err({
      type: "registerWorker",
      nodeId: 1,
      capacity: res(2000, 4096),
      features: ["kvm"],
    });
    expect(shrink.code).toBe("CONFLICT");
    expect(shrink.message).toContain("drain it");
    const drop = h.err({
      type: "registerWorker",
      nodeId: 1,
      capacity: res(4000, 4096),
      features: [],
    });
    expect(drop.message).toContain("task t on worker 1 requires kvm");
  });

  it("refuses a qemu worker dropping qemu while a qemu VM is on it", () => {
    h = new Harness();
    h.register(1, res(4000, 4096), ["qemu"]);
    h.createVm("q", qemuSpec());
    const error = h.err({
      type: "registerWorker",
      nodeId: 1,
      capacity: res(4000, 4096),
      features: [],
    });
    expect(error.message).toContain("VM q on worker 1 requires qemu");
  });

  it("keeps a drained worker drained and refreshes lastSeenMs", () => {
    h = new Harness();
    h.register(1, res(1000, 1000));
    h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true });
    h.nowMs = 9000;
    expect(h.register(1, res(1000, 1000))).toMatchObject({ status: "drained", lastSeenMs: 9000 });
  });

  it.each([
    ["node id 0", { nodeId: 0, capacity: res(1, 1), features: [] }],
    ["negative cpu", { nodeId: 1, capacity: res(-1, 1), features: [] }],
    ["a bad feature", { nodeId: 1, capacity: res(1, 1), features: ["no spaces"] }],
    ["too much memory", { nodeId: 1, capacity: res(1, 2 ** 41), features: [] }],
  ])("refuses %s with INVALID_ARGUMENT", (_what, fields) => {
    h = new Harness();
    expect(h.err({ type: "registerWorker", ...fields }).code).toBe("INVALID_ARGUMENT");
  });

  it("refuses workers past the bound with OVERLOADED", () => {
    h = new Harness();
    for (let id = 1; id <= MAX_WORKERS; id++) {
      h.model.apply({ type: "registerWorker", nodeId: id, capacity: res(1, 1), features: [] }, 1);
    }
    const error = h.err({
      type: "registerWorker",
      nodeId: MAX_WORKERS + 1,
      capacity: res(1, 1),
      features: [],
    });
    expect(error.code).toBe("OVERLOADED");
    h.register(1, res(2, 2));
  });
});

describe("setWorkerDrain", () => {
  it("gives a draining worker no new work; undrain places the queue", () => {
    h = new Harness();
    h.register(1, res(2000, 2048));
    expect(h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true })).toEqual({
      type: "worker",
      worker: h.worker(1),
      moved: { tasks: 0, vms: 0 },
    });
    // It held nothing, so it is drained at once.
    expect(h.worker(1)).toMatchObject({ status: "drained", drain: true });
    const queued = h.submit("queued");
    expect(queued.pendingReason).toBe("no worker is online (1 draining, 0 offline)");
    h.ok({ type: "setWorkerDrain", nodeId: 1, draining: false });
    expect(h.worker(1).status).toBe("online");
    expect(h.task("queued")).toMatchObject({ status: "assigned", nodeId: 1, attempts: 1 });
  });

  it("moves a drained worker's tasks elsewhere without spending an attempt", () => {
    h = new Harness();
    h.register(1, res(4000, 4096));
    h.submit("running", { maxAttempts: 1 });
    h.submit("assigned");
    h.start("running");
    h.register(2, res(4000, 4096));
    const drained = h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true });
    expect(drained).toMatchObject({ moved: { tasks: 2, vms: 0 } });
    expect(h.task("running")).toMatchObject({ status: "assigned", nodeId: 2, attempts: 1 });
    expect(h.task("assigned")).toMatchObject({ status: "assigned", nodeId: 2, attempts: 1 });
    expect(h.worker(1).allocated).toEqual(res(0, 0, 0));
    expect(h.model.assignments(1)).toEqual({ tasks: [], vms: [] });
    // The old node's copy is stale; the moved attempt runs to its end on node 2.
    const stale = h.err({ type: "taskStarted", id: "assigned", nodeId: 1, attempt: 1 });
    expect(stale.code).toBe("CONFLICT");
    h.start("running");
    expect(h.finish("running").status).toBe("succeeded");
  });

  it("keeps a drained worker's tasks pending, attempt given back, until a worker can take them", () => {
    h = new Harness();
    h.register(1, res(1000, 1000));
    h.submit("t", { maxAttempts: 1 });
    h.start("t");
    h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true });
    expect(h.task("t")).toMatchObject({ status: "pending", nodeId: null, attempts: 0 });
    expect(h.task("t").pendingReason).toBe("no worker is online (1 draining, 0 offline)");
    h.register(2, res(1000, 1000));
    expect(h.task("t")).toMatchObject({ status: "assigned", nodeId: 2, attempts: 1 });
  });

  it("cancels rather than moves a drained worker's task whose cancel was pending", () => {
    h = new Harness();
    h.register(1, res(1000, 1000));
    h.register(2, res(1000, 1000));
    h.submit("t");
    h.ok({ type: "cancelTask", id: "t" });
    h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true });
    expect(h.task("t")).toMatchObject({ status: "cancelled", nodeId: 1, attempts: 1 });
    expect(h.worker(1).allocated).toEqual(res(0, 0, 0));
    expect(h.worker(2).allocated).toEqual(res(0, 0, 0));
  });

  it("moves a drained worker's VMs desired running and releases those desired stopped", () => {
    h = new Harness();
    h.register(1, res(4000, 4096));
    h.createVm("keep");
    h.createVm("stopping");
    h.ok({ type: "setVmDesired", name: "stopping", desired: "stopped" });
    h.register(2, res(4000, 4096));
    const drained = h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true });
    expect(drained).toMatchObject({ moved: { tasks: 0, vms: 2 } });
    expect(h.vm("keep")).toMatchObject({ status: "scheduled", nodeId: 2 });
    expect(h.vm("stopping")).toMatchObject({ status: "stopped", nodeId: null });
    expect(h.model.assignments(1)).toEqual({ tasks: [], vms: [] });
    const stale = h.err({
      type: "vmObserved",
      name: "keep",
      nodeId: 1,
      status: "running",
      restarts: 0,
      error: "",
    });
    expect(stale.code).toBe("CONFLICT");
  });

  it("moves nothing on a second drain and places nothing on the drained worker", () => {
    h = new Harness();
    h.register(1, res(4000, 4096));
    h.submit("t");
    h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true });
    const before = h.model.snapshot();
    expect(h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true })).toMatchObject({
      moved: { tasks: 0, vms: 0 },
    });
    expect(h.model.snapshot()).toEqual(before);
    h.createVm("v");
    expect(h.vm("v").status).toBe("pending");
    expect(h.task("t").status).toBe("pending");
  });

  it("remembers a drain of an offline worker: it comes back drained", () => {
    h = new Harness();
    h.register(1, res(1000, 1000));
    h.ok({ type: "markWorkerOffline", nodeId: 1 });
    expect(h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true })).toMatchObject({
      worker: { status: "offline", drain: true },
    });
    expect(h.register(1, res(1000, 1000)).status).toBe("drained");
    h.ok({ type: "setWorkerDrain", nodeId: 1, draining: false });
    expect(h.worker(1).status).toBe("online");
  });

  it("answers NOT_FOUND for an unregistered worker", () => {
    h = new Harness();
    expect(h.err({ type: "setWorkerDrain", nodeId: 7, draining: true }).code).toBe("NOT_FOUND");
    expect(h.err({ type: "markWorkerOffline", nodeId: 7 }).code).toBe("NOT_FOUND");
  });
});

describe("setWorkerDrain with a deadline", () => {
  /** Node 1 runs `running`, has `assigned` assigned and VM `v`; node 2 is empty. */
  function busyPair(): void {
    h = new Harness();
    h.register(1, res(4000, 4096));
    h.submit("running");
    h.submit("assigned");
    h.createVm("v");
    h.start("running");
    h.register(2, res(4000, 4096));
  }

  it("moves VMs and tasks not yet running at once and leaves running tasks until the deadline", () => {
    busyPair();
    h.nowMs = 10_000;
    const drained = h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true, deadlineMs: 5000 });
    expect(drained).toMatchObject({
      moved: { tasks: 1, vms: 1 },
      worker: { status: "draining", drain: true, drainDeadlineMs: 15_000 },
    });
    expect(h.task("running")).toMatchObject({ status: "running", nodeId: 1, attempts: 1 });
    expect(h.task("assigned")).toMatchObject({ status: "assigned", nodeId: 2, attempts: 1 });
    expect(h.vm("v")).toMatchObject({ status: "scheduled", nodeId: 2 });
    // Nothing new goes to the draining worker.
    expect(h.submit("new").nodeId).toBe(2);
  });

  it("refuses the deadline step before log time reaches it, changing nothing", () => {
    busyPair();
    h.nowMs = 10_000;
    h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true, deadlineMs: 5000 });
    h.nowMs = 14_999;
    const early = h.err({ type: "drainDeadlineReached", nodeId: 1 });
    expect(early.code).toBe("CONFLICT");
    expect(early.message).toContain("log time 15000");
    expect(h.task("running")).toMatchObject({ status: "running", nodeId: 1 });
  });

  it("moves the tasks still running at the deadline with their attempt given back; then drained", () => {
    busyPair();
    h.nowMs = 10_000;
    h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true, deadlineMs: 5000 });
    h.nowMs = 15_000;
    const reached = h.ok({ type: "drainDeadlineReached", nodeId: 1 });
    expect(reached).toMatchObject({ moved: { tasks: 1, vms: 0 }, worker: { status: "drained" } });
    expect(h.worker(1).drainDeadlineMs).toBeUndefined();
    expect(h.task("running")).toMatchObject({ status: "assigned", nodeId: 2, attempts: 1 });
    expect(h.model.assignments(1)).toEqual({ tasks: [], vms: [] });
    // The drained node's late report of the moved attempt is refused.
    const stale = h.err({
      type: "taskFinished",
      id: "running",
      nodeId: 1,
      attempt: 1,
      outcome: "succeeded",
      result: taskResult(),
    });
    expect(stale.code).toBe("CONFLICT");
    // A second deadline step (a new leader's duplicate) changes nothing.
    const before = h.model.snapshot();
    expect(h.ok({ type: "drainDeadlineReached", nodeId: 1 })).toMatchObject({
      moved: { tasks: 0, vms: 0 },
    });
    expect(h.model.snapshot()).toEqual(before);
  });

  it("is drained as soon as its last running task finishes before the deadline", () => {
    busyPair();
    h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true, deadlineMs: 60_000 });
    expect(h.worker(1).status).toBe("draining");
    expect(h.finish("running")).toMatchObject({ status: "succeeded", nodeId: 1, attempts: 1 });
    expect(h.worker(1)).toMatchObject({ status: "drained", allocated: res(0, 0, 0) });
    expect(h.worker(1).drainDeadlineMs).toBeUndefined();
  });

  it("is drained at once when nothing is running, whatever the deadline", () => {
    h = new Harness();
    h.register(1, res(4000, 4096));
    h.register(2, res(4000, 4096));
    h.submit("assigned");
    const drained = h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true, deadlineMs: 60_000 });
    expect(drained).toMatchObject({ moved: { tasks: 1, vms: 0 }, worker: { status: "drained" } });
    expect(h.worker(1).drainDeadlineMs).toBeUndefined();
  });

  it("brings a deadline forward on a second drain, never back; no deadline moves the rest now", () => {
    busyPair();
    h.nowMs = 10_000;
    h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true, deadlineMs: 5000 });
    h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true, deadlineMs: 60_000 });
    expect(h.worker(1).drainDeadlineMs).toBe(15_000);
    h.nowMs = 11_000;
    h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true, deadlineMs: 1000 });
    expect(h.worker(1).drainDeadlineMs).toBe(12_000);
    const now = h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true });
    expect(now).toMatchObject({ moved: { tasks: 1, vms: 0 }, worker: { status: "drained" } });
    expect(h.task("running")).toMatchObject({ status: "assigned", nodeId: 2, attempts: 1 });
  });

  it("undrain keeps the running tasks where they are and clears the deadline", () => {
    busyPair();
    h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true, deadlineMs: 5000 });
    const undrained = h.ok({ type: "setWorkerDrain", nodeId: 1, draining: false });
    expect(undrained).toMatchObject({ worker: { status: "online", drain: false } });
    expect(h.worker(1).drainDeadlineMs).toBeUndefined();
    expect(h.task("running")).toMatchObject({ status: "running", nodeId: 1 });
    expect(h.ok({ type: "drainDeadlineReached", nodeId: 1 })).toMatchObject({
      moved: { tasks: 0, vms: 0 },
    });
    expect(h.task("running").nodeId).toBe(1);
  });

  it("drops the deadline when the draining worker goes offline; it comes back drained", () => {
    busyPair();
    h.ok({ type: "setWorkerDrain", nodeId: 1, draining: true, deadlineMs: 5000 });
    h.ok({ type: "markWorkerOffline", nodeId: 1 });
    expect(h.worker(1)).toMatchObject({ status: "offline", drain: true });
    expect(h.worker(1).drainDeadlineMs).toBeUndefined();
    // Lost with its node, not drained: that attempt counts.
    expect(h.task("running")).toMatchObject({ status: "assigned", nodeId: 2, attempts: 2 });
    expect(h.register(1, res(4000, 4096)).status).toBe("drained");
  });

  it("refuses a deadline on an undrain, or past the longest, with INVALID_ARGUMENT", () => {
    h = new Harness();
    h.register(1, res(1000, 1000));
    const undrain = h.err({ type: "setWorkerDrain", nodeId: 1, draining: false, deadlineMs: 1 });
    expect(undrain.code).toBe("INVALID_ARGUMENT");
    const long = h.err({
      type: "setWorkerDrain",
      nodeId: 1,
      draining: true,
      deadlineMs: MAX_DRAIN_DEADLINE_MS + 1,
    });
    expect(long.code).toBe("INVALID_ARGUMENT");
    expect(h.err({ type: "drainDeadlineReached", nodeId: 7 }).code).toBe("NOT_FOUND");
  });
});

describe("markWorkerOffline", () => {
  it("retries a lost task elsewhere as the next attempt and refuses the old node's reports", () => {
    h = new Harness();
    h.register(1, res(1000, 1000));
    h.register(2, res(2000, 2000));
    h.submit("t");
    expect(h.task("t").nodeId).toBe(1);
    h.start("t");
    h.ok({ type: "markWorkerOffline", nodeId: 1 });
    expect(h.task("t")).toMatchObject({ status: "assigned", nodeId: 2, attempts: 2 });
    expect(h.worker(1)).toMatchObject({ status: "offline", allocated: res(0, 0, 0) });
    const stale = h.err({
      type: "taskFinished",
      id: "t",
      nodeId: 1,
      attempt: 1,
      outcome: "succeeded",
      result: taskResult(),
    });
    expect(stale.message).toContain("stale");
    h.start("t");
    expect(h.finish("t").status).toBe("succeeded");
  });

  it("keeps a lost task pending until a worker can take it", () => {
    h = new Harness();
    h.register(1, res(1000, 1000));
    h.submit("t");
    h.ok({ type: "markWorkerOffline", nodeId: 1 });
    expect(h.task("t")).toMatchObject({ status: "pending", nodeId: null, attempts: 1 });
    expect(h.task("t").pendingReason).toBe("no worker is online (0 draining, 1 offline)");
    h.register(1, res(1000, 1000));
    expect(h.task("t")).toMatchObject({ status: "assigned", nodeId: 1, attempts: 2 });
  });

  it("marks a task lost once its attempts are used up", () => {
    h = new Harness();
    h.register(1, res(1000, 1000));
    h.register(2, res(1000, 1000));
    h.submit("t", { maxAttempts: 2 });
    h.ok({ type: "markWorkerOffline", nodeId: 1 });
    expect(h.task("t")).toMatchObject({ status: "assigned", nodeId: 2, attempts: 2 });
    h.ok({ type: "markWorkerOffline", nodeId: 2 });
    const lost = h.task("t");
    expect(lost).toMatchObject({ status: "lost", nodeId: 2, attempts: 2 });
    expect(lost.result?.error).toBe("lost: node 2 went offline during attempt 2 of 2");
  });

  it("cancels rather than retries a task whose cancel was pending", () => {
    h = new Harness();
    h.register(1, res(1000, 1000));
    h.register(2, res(1000, 1000));
    h.submit("t");
    h.ok({ type: "cancelTask", id: "t" });
    h.ok({ type: "markWorkerOffline", nodeId: 1 });
    expect(h.task("t")).toMatchObject({ status: "cancelled", nodeId: 1 });
    expect(h.worker(2).allocated).toEqual(res(0, 0, 0));
  });

  it("moves VMs desired running and releases VMs desired stopped", () => {
    h = new Harness();
    h.register(1, res(4000, 4096));
    h.createVm("keep");
    h.createVm("stopping");
    h.ok({ type: "setVmDesired", name: "stopping", desired: "stopped" });
    expect(h.vm("stopping")).toMatchObject({ nodeId: 1, desired: "stopped" });
    h.register(2, res(4000, 4096));
    h.ok({ type: "markWorkerOffline", nodeId: 1 });
    expect(h.vm("keep")).toMatchObject({
      status: "scheduled",
      nodeId: 2,
      lastError: "node 1 went offline",
    });
    expect(h.vm("stopping")).toMatchObject({ status: "stopped", nodeId: null });
    expect(h.model.assignments(1)).toEqual({ tasks: [], vms: [] });
  });

  it("is a no-op on a worker already offline", () => {
    h = new Harness();
    h.register(1, res(1000, 1000));
    h.ok({ type: "markWorkerOffline", nodeId: 1 });
    const before = h.model.snapshot();
    h.ok({ type: "markWorkerOffline", nodeId: 1 });
    expect(h.model.snapshot()).toEqual(before);
  });

  it("never places work on an offline worker", () => {
    h = new Harness();
    h.register(1, res(1000, 1000));
    h.ok({ type: "markWorkerOffline", nodeId: 1 });
    expect(h.submit("t").status).toBe("pending");
    expect(h.createVm("v", vmSpec()).status).toBe("pending");
  });
});
