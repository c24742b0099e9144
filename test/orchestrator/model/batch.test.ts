/**
 * The batch commands (`submitTasks`, `agentReports`) and the shape-grouped placement pass: a
 * batch does what its items would do one by one (same bytes for submits), refuses items on their
 * own, and a pass places in seq order across shapes and keeps every pending reason current.
 */
import { describe, expect, it } from "vitest";
import type {
  BatchItemOutcome,
  OrchestratorCommand,
} from "../../../src/statemachine/orchestrator/commands.js";
import { OrchestratorModel } from "../../../src/statemachine/orchestrator/model.js";
import type { TaskSpec } from "../../../src/statemachine/orchestrator/types.js";
import { Harness, checkInvariants, res, sameBytes, taskResult, taskSpec } from "./fixtures.js";

function items(h: Harness, command: OrchestratorCommand): readonly BatchItemOutcome[] {
  const value = h.ok(command);
  if (value.type !== "batch") throw new Error(`expected a batch result, got ${value.type}`);
  return value.items;
}

function batch(ids: string[], spec: Partial<TaskSpec> = {}): OrchestratorCommand {
  return { type: "submitTasks", tasks: ids.map((id) => ({ id, spec: taskSpec(spec) })) };
}

describe("submitTasks", () => {
  it("leaves the same state, byte for byte, as the same submits one by one", () => {
    const specs = [res(500, 256), res(1500, 256), res(3000, 256), res(250, 4096), res(500, 256)];
    const one = new OrchestratorModel();
    const many = new OrchestratorModel();
    for (const model of [one, many]) {
      model.apply(
        { type: "registerWorker", nodeId: 1, capacity: res(2000, 2048), features: ["raw_exec"] },
        1,
      );
      model.apply(
        { type: "registerWorker", nodeId: 2, capacity: res(4000, 1024), features: ["raw_exec"] },
        1,
      );
    }
    const tasks = specs.map((resources, i) => ({ id: `t${i}`, spec: taskSpec({ resources }) }));
    for (const task of tasks) one.apply({ type: "submitTask", ...task }, 2);
    const result = many.apply({ type: "submitTasks", tasks }, 2);
    expect(result.ok).toBe(true);
    expect(sameBytes(one.snapshot(), many.snapshot())).toBe(true);
    if (!result.ok || result.value.type !== "batch") throw new Error("not a batch result");
    expect(result.value.items.map((item) => (item.ok ? item.nodeId : item.code))).toEqual(
      tasks.map((task) => one.task(task.id)?.nodeId),
    );
    const pending = result.value.items.filter((item) => item.ok && item.status === "pending");
    expect(pending.length).toBeGreaterThan(0);
    for (const item of pending) {
      expect(item).toMatchObject({ pendingReason: one.task(item.id)?.pendingReason });
    }
    checkInvariants(many);
  });

  it("refuses a taken id (also one taken earlier in the batch) for that item only", () => {
    const h = new Harness();
    h.register(1, res(4000, 4096));
    h.submit("old");
    const outcomes = items(h, batch(["a", "old", "b", "a"]));
    expect(outcomes).toEqual([
      { ok: true, id: "a", status: "assigned", nodeId: 1 },
      {
        ok: false,
        id: "old",
        code: "CONFLICT",
        message: "task id old is taken; submit with a new id",
      },
      { ok: true, id: "b", status: "assigned", nodeId: 1 },
      { ok: false, id: "a", code: "CONFLICT", message: "task id a is taken; submit with a new id" },
    ]);
    expect(h.task("b").status).toBe("assigned");
    // The first "a" is the one kept.
    expect(h.task("a").attempts).toBe(1);
  });

  it("refuses a malformed batch as a whole: nothing applies", () => {
    const h = new Harness();
    h.register(1, res(4000, 4096));
    const error = h.err({
      type: "submitTasks",
      tasks: [
        { id: "good", spec: taskSpec() },
        { id: "bad", spec: taskSpec({ maxAttempts: 0 }) },
      ],
    });
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(h.model.task("good")).toBeUndefined();
  });
});

describe("agentReports", () => {
  it("applies each report on its own: a stale one is refused, the others apply", () => {
    const h = new Harness();
    h.register(1, res(4000, 4096));
    h.register(2, res(4000, 4096));
    h.submit("a");
    h.submit("b");
    h.start("b");
    const node = h.task("a").nodeId as number;
    const outcomes = items(h, {
      type: "agentReports",
      nodeId: node,
      reports: [
        { type: "taskStarted", id: "a", nodeId: node, attempt: 1 },
        // Attempt 2 never happened: stale.
        {
          type: "taskFinished",
          id: "b",
          nodeId: node,
          attempt: 2,
          outcome: "succeeded",
          result: taskResult(),
        },
        {
          type: "taskFinished",
          id: "nope",
          nodeId: node,
          attempt: 1,
          outcome: "failed",
          result: taskResult(),
        },
        {
          type: "taskFinished",
          id: "a",
          nodeId: node,
          attempt: 1,
          outcome: "succeeded",
          result: taskResult(),
        },
      ],
    });
    expect(outcomes.map((item) => (item.ok ? item.status : item.code))).toEqual([
      "running",
      "CONFLICT",
      "NOT_FOUND",
      "succeeded",
    ]);
    expect(h.task("a").status).toBe("succeeded");
    expect(h.task("b").status).toBe("running");
    checkInvariants(h.model);
  });

  it("places pending work once, after the last report, on what the reports freed", () => {
    const h = new Harness();
    h.register(1, res(2000, 2048));
    h.submit("a", { resources: res(1000, 256) });
    h.submit("b", { resources: res(1000, 256) });
    h.submit("c", { resources: res(2000, 256) });
    expect(h.task("c").status).toBe("pending");
    const outcomes = items(h, {
      type: "agentReports",
      nodeId: 1,
      reports: ["a", "b"].map((id) => ({
        type: "taskFinished" as const,
        id,
        nodeId: 1,
        attempt: 1,
        outcome: "succeeded" as const,
        result: taskResult(),
      })),
    });
    expect(outcomes.every((item) => item.ok)).toBe(true);
    expect(h.task("c")).toMatchObject({ status: "assigned", nodeId: 1 });
    checkInvariants(h.model);
  });

  it("refuses reports about another node as a whole", () => {
    const h = new Harness();
    h.register(1, res(2000, 2048));
    h.submit("a");
    const error = h.err({
      type: "agentReports",
      nodeId: 2,
      reports: [{ type: "taskStarted", id: "a", nodeId: 1, attempt: 1 }],
    });
    expect(error.code).toBe("INVALID_ARGUMENT");
    expect(h.task("a").status).toBe("assigned");
  });
});

describe("the placement pass by shape", () => {
  it("places in seq order across shapes, past shapes that do not fit", () => {
    const h = new Harness();
    h.submit("big-1", { resources: res(3000, 256) });
    h.submit("small-1", { resources: res(500, 256) });
    h.submit("gpu-1", { resources: res(500, 256), requiredFeatures: ["gpu"] });
    h.submit("small-2", { resources: res(500, 256) });
    h.submit("big-2", { resources: res(3000, 256) });
    h.submit("small-3", { resources: res(500, 256) });
    h.register(1, res(4000, 4096));
    // big-1 first (3000), small-1 (3500), small-2 (4000); big-2 and small-3 no longer fit.
    expect(h.model.assignments(1).tasks.map((task) => task.id)).toEqual([
      "big-1",
      "small-1",
      "small-2",
    ]);
    expect(h.model.pendingQueue()).toEqual(["task:gpu-1", "task:big-2", "task:small-3"]);
    expect(h.task("gpu-1").pendingReason).toBe("no online worker has feature gpu");
    const full = "no worker has 500 millicores of cpu free (most free: 0 on node 1)";
    expect(h.task("small-3").pendingReason).toBe(full);
    expect(h.task("big-2").pendingReason).toBe(
      "no worker has 3000 millicores of cpu free (most free: 0 on node 1)",
    );
    checkInvariants(h.model);
  });

  it("keeps the reason of every item of a shape current as workers come and go", () => {
    const h = new Harness();
    for (let i = 0; i < 50; i++) h.submit(`t${i}`, { resources: res(1000, 256) });
    h.register(1, res(2000, 2048));
    h.register(2, res(1500, 2048));
    const reason = "no worker has 1000 millicores of cpu free (most free: 500 on node 2)";
    for (let i = 3; i < 50; i++) expect(h.task(`t${i}`).pendingReason).toBe(reason);
    h.ok({ type: "markWorkerOffline", nodeId: 2 });
    // t2 was on node 2: back in the queue, ahead of the rest; everything pending says why.
    const now = "no worker has 1000 millicores of cpu free (most free: 0 on node 1)";
    expect(h.model.pendingQueue()[0]).toBe("task:t2");
    for (let i = 2; i < 50; i++) expect(h.task(`t${i}`).pendingReason).toBe(now);
    checkInvariants(h.model);
  });

  it("a submit that does not fit says why as of now; the queue ahead keeps its reason until the next pass", () => {
    const h = new Harness();
    h.register(1, res(2000, 2048));
    h.submit("big-1", { resources: res(3000, 256) });
    expect(h.task("big-1").pendingReason).toBe(
      "no worker has 3000 millicores of cpu free (most free: 2000 on node 1)",
    );
    h.submit("small", { resources: res(500, 256) });
    h.submit("big-2", { resources: res(3000, 256) });
    expect(h.task("big-2").pendingReason).toBe(
      "no worker has 3000 millicores of cpu free (most free: 1500 on node 1)",
    );
    expect(h.task("big-1").pendingReason).toBe(
      "no worker has 3000 millicores of cpu free (most free: 2000 on node 1)",
    );
    h.register(2, res(1000, 2048));
    for (const id of ["big-1", "big-2"]) {
      expect(h.task(id).pendingReason).toBe(
        "no worker has 3000 millicores of cpu free (most free: 1500 on node 1)",
      );
    }
    const restored = new OrchestratorModel();
    restored.restore(h.model.snapshot());
    expect(restored.task("big-1")).toEqual(h.task("big-1"));
  });

  it("restores into a model that continues exactly as the original", () => {
    const h = new Harness();
    for (let i = 0; i < 20; i++) h.submit(`t${i}`, { resources: res(1000 + (i % 3) * 500, 256) });
    h.register(1, res(3000, 2048));
    const restored = new OrchestratorModel();
    restored.restore(h.model.snapshot());
    const next: OrchestratorCommand = {
      type: "registerWorker",
      nodeId: 2,
      capacity: res(5000, 2048),
      features: ["raw_exec"],
    };
    expect(restored.apply(next, h.nowMs)).toEqual(h.model.apply(next, h.nowMs));
    expect(sameBytes(restored.snapshot(), h.model.snapshot())).toBe(true);
  });
});
