/**
 * The orchestrator model's snapshot: deterministic bytes, exact round trips (a restored model
 * behaves exactly like the original), and restore refusing bad or inconsistent bytes without
 * changing anything.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isBlixardError } from "../../../src/common/index.js";
import type { OrchestratorCommand } from "../../../src/statemachine/orchestrator/commands.js";
import { OrchestratorModel } from "../../../src/statemachine/orchestrator/model.js";
import {
  Harness,
  checkInvariants,
  qemuSpec,
  res,
  sameBytes,
  taskResult,
  taskSpec,
  vmSpec,
} from "./fixtures.js";

const HEADER_BYTES = 6;

/** A model holding every kind of worker, task and VM status. */
function richModel(): Harness {
  const h = new Harness();
  h.register(1, res(4000, 4096, 50), ["ssd"]);
  h.register(2, res(2000, 2048, 10), ["qemu", "kvm"]);
  h.register(3, res(8000, 8192, 100));
  h.register(4, res(1000, 1000));
  h.ok({ type: "setWorkerDrain", nodeId: 3, draining: true });
  h.ok({ type: "setSettings", settings: { placement: "spread" } });
  h.createVm("q", qemuSpec({ vcpus: 1, memoryMb: 256 }));
  h.submit("assigned", { env: { Z: "1", A: "2" } });
  h.submit("running");
  h.start("running");
  h.submit("done");
  h.finish("done", "failed", taskResult({ exitCode: 3, stderr: "bad" }));
  h.submit("cancel-me", { requiredFeatures: ["gpu"] });
  h.ok({ type: "cancelTask", id: "cancel-me" });
  h.submit("waiting", { resources: res(64_000, 1) });
  h.createVm("web", vmSpec({ antiAffinityGroup: "web" }));
  h.createVm("web-2", vmSpec({ antiAffinityGroup: "web" }));
  h.createVm("off", vmSpec(), "stopped");
  h.createVm("huge", vmSpec({ vcpus: 64 }));
  h.ok({
    type: "vmObserved",
    name: "web",
    nodeId: h.vm("web").nodeId as number,
    status: "running",
    restarts: 1,
    error: "x",
  });
  h.ok({ type: "markWorkerOffline", nodeId: 4 });
  // A worker draining with a deadline: its running task may finish there until then.
  h.register(5, res(1000, 1000), ["tpu"]);
  h.submit("slow", { requiredFeatures: ["tpu"], resources: res(500, 100) });
  h.start("slow");
  h.ok({ type: "setWorkerDrain", nodeId: 5, draining: true, deadlineMs: 60_000 });
  expect(h.worker(5)).toMatchObject({ status: "draining", drainDeadlineMs: h.nowMs + 59_999 });
  expect(h.worker(3).status).toBe("drained");
  expect(h.vm("q").nodeId).toBe(2);
  return h;
}

function jsonOf(snapshot: Uint8Array): Record<string, unknown> {
  return JSON.parse(new TextDecoder().decode(snapshot.subarray(HEADER_BYTES))) as Record<
    string,
    unknown
  >;
}

function withJson(snapshot: Uint8Array, json: unknown): Uint8Array {
  const body = new TextEncoder().encode(JSON.stringify(json));
  const bytes = new Uint8Array(HEADER_BYTES + body.length);
  bytes.set(snapshot.subarray(0, HEADER_BYTES));
  bytes.set(body, HEADER_BYTES);
  return bytes;
}

/** Restores `bytes` into `model`; returns the error code, or "none". Checks a failure changed nothing. */
function restoreCode(model: OrchestratorModel, bytes: Uint8Array): string {
  const before = model.snapshot();
  try {
    model.restore(bytes);
    return "none";
  } catch (error) {
    if (!isBlixardError(error)) throw error;
    expect(sameBytes(model.snapshot(), before), "a failed restore changes nothing").toBe(true);
    return error.code;
  }
}

describe("orchestrator snapshot", () => {
  it("round-trips: the restored model has the same bytes, queries and future", () => {
    const original = richModel();
    checkInvariants(original.model);
    const bytes = original.model.snapshot();
    const copy = new Harness();
    copy.model.restore(bytes);
    copy.nowMs = original.nowMs;
    expect(copy.model.snapshot()).toEqual(bytes);
    expect(copy.model.workers()).toEqual(original.model.workers());
    expect(copy.model.tasks()).toEqual(original.model.tasks());
    expect(copy.model.vms()).toEqual(original.model.vms());
    expect(copy.model.pendingQueue()).toEqual(original.model.pendingQueue());
    checkInvariants(copy.model);
    const future: OrchestratorCommand[] = [
      { type: "registerWorker", nodeId: 4, capacity: res(100_000, 100_000, 100), features: [] },
      { type: "submitTask", id: "later", spec: taskSpec() },
      { type: "setWorkerDrain", nodeId: 3, draining: false },
      { type: "markWorkerOffline", nodeId: 1 },
      { type: "setVmDesired", name: "off", desired: "running" },
    ];
    for (const command of future) {
      expect(copy.run(command)).toEqual(original.run(command));
      expect(copy.model.snapshot()).toEqual(original.model.snapshot());
    }
  });

  it("gives equal bytes for equal states and restores the finished order for eviction", () => {
    const a = richModel();
    const b = richModel();
    expect(a.model.snapshot()).toEqual(b.model.snapshot());
    expect(jsonOf(a.model.snapshot()).finished).toEqual(["done", "cancel-me"]);
  });

  it("reads a snapshot from before drains ended: an empty draining worker restores drained", () => {
    const original = richModel();
    const json = jsonOf(original.model.snapshot());
    // As a node without the drained status wrote it: worker 3, drained and empty, is draining.
    (json.workers as Record<string, unknown>[])[2]!.status = "draining";
    const old = withJson(original.model.snapshot(), json);
    const copy = new Harness();
    copy.model.restore(old);
    expect(copy.model.worker(3)).toMatchObject({ status: "drained", drain: true });
    expect(copy.model.snapshot()).toEqual(original.model.snapshot());
    checkInvariants(copy.model);
  });

  it("keeps a pending drain deadline across a restore, and its step moves the task then", () => {
    const original = richModel();
    const copy = new Harness();
    copy.model.restore(original.model.snapshot());
    expect(copy.model.worker(5)?.drainDeadlineMs).toBe(original.worker(5).drainDeadlineMs);
    for (const h of [original, copy]) {
      h.nowMs = h.worker(5).drainDeadlineMs as number;
      expect(h.ok({ type: "drainDeadlineReached", nodeId: 5 })).toMatchObject({
        moved: { tasks: 1, vms: 0 },
        worker: { status: "drained" },
      });
    }
    expect(copy.model.snapshot()).toEqual(original.model.snapshot());
  });

  it("refuses bad framing", () => {
    const model = richModel().model;
    const good = model.snapshot();
    expect(restoreCode(model, good.subarray(0, 3))).toBe("INVALID_ARGUMENT");
    const badMagic = good.slice();
    badMagic[0] = 0;
    expect(restoreCode(model, badMagic)).toBe("INVALID_ARGUMENT");
    const badVersion = good.slice();
    badVersion[5] = 2;
    expect(restoreCode(model, badVersion)).toBe("INVALID_ARGUMENT");
    expect(restoreCode(model, good.subarray(0, good.length - 1))).toBe("INVALID_ARGUMENT");
  });

  type Json = Record<string, any>; // eslint-disable-line @typescript-eslint/no-explicit-any
  const corruptions: [string, (json: Json) => void, string][] = [
    [
      "an over-committed worker",
      (j) => (j.workers[0].capacity.cpuMillis = 1),
      "over-commits node 1",
    ],
    [
      "an allocation that is not the sum",
      (j) => (j.workers[2].allocated.memoryMb += 1),
      "allocation is not the sum",
    ],
    ["work on an offline worker", (j) => (j.workers[0].status = "offline"), "offline node 1"],
    ["a status that contradicts drain", (j) => (j.workers[0].drain = true), "inconsistent"],
    [
      "work on a drained worker",
      (j) => Object.assign(j.workers[0], { status: "drained", drain: true }),
      "drained node 1",
    ],
    [
      "a drain deadline on a worker not draining",
      (j) => (j.workers[0].drainDeadlineMs = 5),
      "a drain deadline on a worker online",
    ],
    ["unsorted features", (j) => (j.workers[1].features = ["qemu", "kvm"]), "sorted"],
    ["a lost feature", (j) => (j.workers[1].features = ["kvm"]), "needs qemu"],
    ["workers out of order", (j) => j.workers.reverse(), "out of order"],
    ["tasks out of order", (j) => j.tasks.reverse(), "out of order"],
    ["a duplicate seq", (j) => (j.vms[0].seq = j.tasks[0].seq), "used twice"],
    ["a seq at nextSeq", (j) => (j.tasks[0].seq = j.nextSeq), "seq must be an integer"],
    [
      "a pending task on a node",
      (j) => (j.tasks.find((t: Json) => t.task.status === "pending").task.nodeId = 1),
      "pending on a node",
    ],
    [
      "a finished task without a result",
      (j) => (j.tasks.find((t: Json) => t.task.id === "done").task.result = null),
      "without a result",
    ],
    ["a finished list missing a task", (j) => j.finished.pop(), "exactly once"],
    [
      "a finished list naming a live task",
      (j) => (j.finished[0] = "running"),
      "not a finished task",
    ],
    [
      "an anti-affinity violation",
      (j) => {
        const [a, b] = j.vms.filter((v: Json) => v.vm.spec.antiAffinityGroup === "web");
        b.vm.nodeId = a.vm.nodeId;
      },
      "anti-affinity",
    ],
    ["an unknown field", (j) => (j.extra = 1), "not a known field"],
    ["a bad task spec", (j) => (j.tasks[0].task.spec.maxAttempts = 0), "maxAttempts"],
  ];

  it.each(corruptions)("refuses %s, changing nothing", (_what, corrupt, message) => {
    const model = richModel().model;
    const json = jsonOf(model.snapshot());
    corrupt(json as Json);
    const before = model.snapshot();
    let caught: unknown;
    try {
      model.restore(withJson(before, json));
    } catch (error) {
      caught = error;
    }
    expect(caught).toMatchObject({ code: "INVALID_ARGUMENT" });
    expect((caught as Error).message).toContain(message);
    expect(sameBytes(model.snapshot(), before)).toBe(true);
  });

  it("restores flipped bytes only into a consistent model, or refuses them", () => {
    const good = richModel().model.snapshot();
    let accepted = 0;
    fc.assert(
      fc.property(fc.nat(), fc.integer({ min: 0, max: 255 }), (at, value) => {
        const bytes = good.slice();
        bytes[at % bytes.length] = value;
        const model = new OrchestratorModel();
        const code = restoreCode(model, bytes);
        expect(["none", "INVALID_ARGUMENT"]).toContain(code);
        if (code === "none") {
          accepted++;
          checkInvariants(model, { pendingUnplaceable: false });
        }
      }),
      { numRuns: 600 },
    );
    expect(accepted).toBeGreaterThan(0);
  });
});
