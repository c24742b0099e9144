/**
 * The task commands of the orchestrator model: submit, placement, start, finish, cancel, and
 * every refused transition. Each test checks the model's invariants at the end.
 */
import { afterEach, describe, expect, it } from "vitest";
import {
  MAX_ACTIVE_TASKS,
  MAX_SUBMIT_BATCH_TASKS,
  MAX_FINISHED_TASKS,
  MAX_TASK_OUTPUT_BYTES,
} from "../../../src/statemachine/orchestrator/limits.js";
import { Harness, checkInvariants, res, sameBytes, taskResult, taskSpec } from "./fixtures.js";

let h: Harness;
afterEach(() => checkInvariants(h.model));

describe("submitTask", () => {
  it("places a task on a worker at once: assigned, attempt 1, resources allocated", () => {
    h = new Harness();
    h.register(1, res(4000, 4096));
    const task = h.submit("t1", { resources: res(1000, 256) });
    expect(task).toMatchObject({ status: "assigned", nodeId: 1, attempts: 1, pendingReason: "" });
    expect(task.submittedAtMs).toBe(task.updatedAtMs);
    expect(h.worker(1).allocated).toEqual(res(1000, 256));
    expect(h.model.assignments(1).tasks.map((t) => t.id)).toEqual(["t1"]);
  });

  it("keeps a task pending with the reason when nothing fits, and says which constraint", () => {
    h = new Harness();
    expect(h.submit("a", { requiredFeatures: ["gpu"] }).pendingReason).toBe(
      "no worker is registered",
    );
    h.register(2, res(1000, 1024));
    h.register(3, res(500, 4096));
    const big = h.submit("big", { resources: res(2000, 256) });
    expect(big).toMatchObject({ status: "pending", nodeId: null, attempts: 0 });
    expect(big.pendingReason).toBe(
      "no worker has 2000 millicores of cpu free (most free: 1000 on node 2)",
    );
    const kvm = h.submit("kvm", { requiredFeatures: ["kvm"] });
    expect(kvm.pendingReason).toBe("no online worker has feature kvm");
  });

  it("refuses a taken id with CONFLICT, even of a finished task", () => {
    h = new Harness();
    h.register(1, res(4000, 4096));
    h.submit("t1");
    expect(h.err({ type: "submitTask", id: "t1", spec: taskSpec() }).code).toBe("CONFLICT");
    h.finish("t1");
    const error = h.err({ type: "submitTask", id: "t1", spec: taskSpec() });
    expect(error).toMatchObject({ code: "CONFLICT" });
    expect(error.message).toContain("submit with a new id");
  });

  it.each([
    ["an empty command", { command: "" }, "INVALID_ARGUMENT"],
    ["negative memory", { resources: res(0, -1) }, "INVALID_ARGUMENT"],
    ["fractional cpu", { resources: res(0.5, 1) }, "INVALID_ARGUMENT"],
    ["no cpu (unbounded)", { resources: res(0, 256) }, "INVALID_ARGUMENT"],
    ["no memory (unbounded)", { resources: res(1000, 0) }, "INVALID_ARGUMENT"],
    ["PATH in env", { env: { PATH: "/tmp/evil" } }, "INVALID_ARGUMENT"],
    ["LD_PRELOAD in env", { env: { LD_PRELOAD: "/tmp/evil.so" } }, "INVALID_ARGUMENT"],
    ["LD_LIBRARY_PATH in secretEnv", { secretEnv: { LD_LIBRARY_PATH: "/x" } }, "INVALID_ARGUMENT"],
    ["NODE_OPTIONS in env", { env: { NODE_OPTIONS: "--require /x.js" } }, "INVALID_ARGUMENT"],
    [
      "a name both plain and secret",
      { env: { A: "1" }, secretEnv: { A: "2" } },
      "INVALID_ARGUMENT",
    ],
    ["0 attempts", { maxAttempts: 0 }, "INVALID_ARGUMENT"],
    ["101 attempts", { maxAttempts: 101 }, "INVALID_ARGUMENT"],
    ["a negative timeout", { timeoutMs: -1 }, "INVALID_ARGUMENT"],
    ["a timeout past what a timer can hold", { timeoutMs: 2 ** 31 }, "INVALID_ARGUMENT"],
    ["a NUL in an argument", { args: ["a\u0000b"] }, "INVALID_ARGUMENT"],
    ["a bad env name", { env: { "A=B": "x" } }, "INVALID_ARGUMENT"],
    ["a bad feature name", { requiredFeatures: ["has space"] }, "INVALID_ARGUMENT"],
    ["a huge argument", { args: ["x".repeat(5000)] }, "TOO_LARGE"],
    ["too many arguments", { args: Array.from({ length: 257 }, () => "a") }, "TOO_LARGE"],
    [
      "too many spec bytes",
      { args: Array.from({ length: 9 }, () => "x".repeat(4000)) },
      "TOO_LARGE",
    ],
  ])("refuses %s", (_what, overrides, code) => {
    h = new Harness();
    const error = h.err({ type: "submitTask", id: "t", spec: taskSpec(overrides) });
    expect(error.code).toBe(code);
  });

  it("says why a PATH or LD_ variable is refused", () => {
    h = new Harness();
    const path = h.err({ type: "submitTask", id: "t", spec: taskSpec({ env: { PATH: "/x" } }) });
    expect(path.message).toContain(
      "submitTask.spec.env.PATH may not be set: PATH is set by the node",
    );
    const preload = h.err({
      type: "submitTask",
      id: "t",
      spec: taskSpec({ env: { LD_PRELOAD: "/x.so" } }),
    });
    expect(preload.message).toContain("LD_PRELOAD would change how the dynamic loader");
  });

  it("keeps secret variables apart from env, and drops an empty secretEnv from the canonical spec", () => {
    h = new Harness();
    const task = h.submit("t", { env: { A: "1" }, secretEnv: { TOKEN: "s3cret" } });
    expect(task.spec.env).toEqual({ A: "1" });
    expect(task.spec.secretEnv).toEqual({ TOKEN: "s3cret" });
    const plain = h.submit("u", { secretEnv: {} });
    expect(Object.hasOwn(plain.spec, "secretEnv")).toBe(false);
  });

  it("leaves a task pending where no worker runs raw work, saying how to enable it", () => {
    h = new Harness();
    h.register(1, res(4000, 4096), ["ssd"], false);
    const task = h.submit("t");
    expect(task.status).toBe("pending");
    expect(task.pendingReason).toBe(
      "no online worker has feature raw_exec (raw tasks and process VMs run only on nodes started with --enable-raw-exec)",
    );
    // A worker with raw_exec registering places it.
    h.register(2, res(4000, 4096));
    expect(h.task("t")).toMatchObject({ status: "assigned", nodeId: 2 });
  });

  it("refuses a malformed id", () => {
    h = new Harness();
    for (const id of ["", "-x", "a b", "é", "x".repeat(129)]) {
      expect(h.err({ type: "submitTask", id, spec: taskSpec() }).code).toMatch(
        /INVALID_ARGUMENT|TOO_LARGE/,
      );
    }
  });

  it("names the field that is wrong", () => {
    h = new Harness();
    const error = h.err({ type: "submitTask", id: "t", spec: taskSpec({ maxAttempts: 0 }) });
    expect(error.message).toContain("submitTask.spec.maxAttempts must be an integer in 1..100");
  });

  it("refuses submits past the bound on unfinished tasks with OVERLOADED", () => {
    h = new Harness();
    // In batches, with ids in ascending order (appended to the id index): the bound is large.
    const spec = taskSpec();
    for (let i = 0; i < MAX_ACTIVE_TASKS; i += MAX_SUBMIT_BATCH_TASKS) {
      const count = Math.min(MAX_SUBMIT_BATCH_TASKS, MAX_ACTIVE_TASKS - i);
      const tasks = Array.from({ length: count }, (_, j) => ({
        id: `t${String(i + j).padStart(6, "0")}`,
        spec,
      }));
      const result = h.model.apply({ type: "submitTasks", tasks }, 1);
      expect(
        result.ok && result.value.type === "batch" && result.value.items.every((item) => item.ok),
      ).toBe(true);
    }
    // (Not `h.err`: two snapshots of 100,000 tasks would take most of this test's time.)
    const refused = h.model.apply({ type: "submitTask", id: "one-more", spec }, 1);
    expect(refused.ok === false && refused.error.code).toBe("OVERLOADED");
    expect(h.model.task("one-more")).toBeUndefined();
    // In a batch, the items past the bound are refused and the others still apply.
    h.ok({ type: "cancelTask", id: "t000000" });
    const result = h.ok({
      type: "submitTasks",
      tasks: [
        { id: "fits", spec },
        { id: "over", spec },
      ],
    });
    expect(
      result.type === "batch" && result.items.map((item) => (item.ok ? item.status : item.code)),
    ).toEqual(["pending", "OVERLOADED"]);
    h.ok({ type: "cancelTask", id: "t000001" });
    h.submit("one-more");
  });
});

describe("taskStarted and taskFinished", () => {
  it("runs the lifecycle assigned → running → succeeded and releases the resources", () => {
    h = new Harness();
    h.register(1, res(2000, 2048));
    h.submit("t", { resources: res(1500, 1000) });
    expect(h.start("t").status).toBe("running");
    const done = h.finish("t", "succeeded", taskResult({ stdout: "out" }));
    expect(done).toMatchObject({ status: "succeeded", nodeId: 1, attempts: 1 });
    expect(done.result?.stdout).toBe("out");
    expect(h.worker(1).allocated).toEqual(res(0, 0));
  });

  it("finishes from assigned too (the start report may never come)", () => {
    h = new Harness();
    h.register(1, res(2000, 2048));
    h.submit("t");
    expect(h.finish("t", "failed", taskResult({ exitCode: 2 })).status).toBe("failed");
  });

  it.each(["failed", "timed_out"] as const)("records the outcome %s", (outcome) => {
    h = new Harness();
    h.register(1, res(2000, 2048));
    h.submit("t");
    h.start("t");
    expect(h.finish("t", outcome, taskResult({ exitCode: null })).status).toBe(outcome);
  });

  it("refuses reports from the wrong node or a stale attempt with CONFLICT", () => {
    h = new Harness();
    h.register(1, res(2000, 2048));
    h.register(2, res(2000, 2048));
    h.submit("t");
    const wrongNode = h.err({ type: "taskStarted", id: "t", nodeId: 2, attempt: 1 });
    expect(wrongNode.code).toBe("CONFLICT");
    expect(wrongNode.message).toContain("assigned as attempt 1 on node 1");
    expect(h.err({ type: "taskStarted", id: "t", nodeId: 1, attempt: 2 }).code).toBe("CONFLICT");
    const finish = {
      type: "taskFinished",
      id: "t",
      nodeId: 2,
      attempt: 1,
      outcome: "succeeded",
      result: taskResult(),
    } as const;
    expect(h.err(finish).code).toBe("CONFLICT");
  });

  it("treats a repeated start of the running attempt as a no-op", () => {
    h = new Harness();
    h.register(1, res(2000, 2048));
    h.submit("t");
    const running = h.start("t");
    const before = h.model.snapshot();
    expect(h.start("t")).toEqual(running);
    expect(sameBytes(h.model.snapshot(), before)).toBe(true);
  });

  it("treats a repeat of the finishing report as a no-op, and any other report as stale", () => {
    h = new Harness();
    h.register(1, res(2000, 2048));
    h.submit("t");
    const done = h.finish("t", "succeeded", taskResult({ stdout: "a" }));
    const before = h.model.snapshot();
    const again = h.model.apply(
      {
        type: "taskFinished",
        id: "t",
        nodeId: 1,
        attempt: 1,
        outcome: "succeeded",
        result: taskResult({ stdout: "a" }),
      },
      99_999,
    );
    expect(again).toEqual({ ok: true, value: { type: "task", task: done } });
    expect(sameBytes(h.model.snapshot(), before)).toBe(true);
    const other = h.err({
      type: "taskFinished",
      id: "t",
      nodeId: 1,
      attempt: 1,
      outcome: "failed",
      result: taskResult({ exitCode: 1 }),
    });
    expect(other.message).toContain("already finished (succeeded");
    expect(h.err({ type: "taskStarted", id: "t", nodeId: 1, attempt: 1 }).code).toBe("CONFLICT");
  });

  it("refuses a finish reported as cancelled when no cancel was asked for", () => {
    h = new Harness();
    h.register(1, res(2000, 2048));
    h.submit("t");
    const error = h.err({
      type: "taskFinished",
      id: "t",
      nodeId: 1,
      attempt: 1,
      outcome: "cancelled",
      result: taskResult({ exitCode: null }),
    });
    expect(error.message).toContain("was not asked to cancel");
  });

  it("refuses a result over the output limit with TOO_LARGE", () => {
    h = new Harness();
    h.register(1, res(2000, 2048));
    h.submit("t");
    const error = h.err({
      type: "taskFinished",
      id: "t",
      nodeId: 1,
      attempt: 1,
      outcome: "succeeded",
      result: taskResult({ stdout: "x".repeat(MAX_TASK_OUTPUT_BYTES + 1) }),
    });
    expect(error.code).toBe("TOO_LARGE");
  });

  it("answers NOT_FOUND for an unknown task", () => {
    h = new Harness();
    expect(h.err({ type: "taskStarted", id: "nope", nodeId: 1, attempt: 1 }).code).toBe(
      "NOT_FOUND",
    );
    expect(h.err({ type: "cancelTask", id: "nope" }).code).toBe("NOT_FOUND");
  });

  it("places pending work when a finish frees capacity, oldest first", () => {
    h = new Harness();
    h.register(1, res(1000, 1000));
    h.submit("a", { resources: res(1000, 100) });
    h.submit("b", { resources: res(600, 100) });
    h.submit("c", { resources: res(400, 100) });
    expect(h.model.pendingQueue()).toEqual(["task:b", "task:c"]);
    h.finish("a");
    expect(h.task("b")).toMatchObject({ status: "assigned", nodeId: 1 });
    expect(h.task("c")).toMatchObject({ status: "assigned", nodeId: 1 });
  });

  it("backfills: a small task passes a big one that does not fit", () => {
    h = new Harness();
    h.register(1, res(1000, 1000));
    h.submit("a", { resources: res(800, 100) });
    h.submit("big", { resources: res(900, 100) });
    h.submit("small", { resources: res(200, 100) });
    expect(h.task("small").status).toBe("assigned");
    expect(h.task("big").status).toBe("pending");
  });
});

describe("cancelTask", () => {
  it("cancels a pending task at once", () => {
    h = new Harness();
    const task = h.submit("t");
    expect(task.status).toBe("pending");
    const cancelled = (h.ok({ type: "cancelTask", id: "t" }) as { task: { status: string } }).task;
    expect(cancelled).toMatchObject({ status: "cancelled", pendingReason: "" });
    expect(h.task("t").result?.error).toContain("cancelled before it was placed");
    expect(h.model.pendingQueue()).toEqual([]);
  });

  it("flags an assigned or running task; its agent reports cancelled", () => {
    h = new Harness();
    h.register(1, res(2000, 2048));
    h.submit("t");
    h.start("t");
    h.ok({ type: "cancelTask", id: "t" });
    expect(h.task("t")).toMatchObject({ status: "running", cancelRequested: true });
    const before = h.model.snapshot();
    h.ok({ type: "cancelTask", id: "t" });
    expect(sameBytes(h.model.snapshot(), before)).toBe(true);
    expect(h.model.assignments(1).tasks[0]?.cancelRequested).toBe(true);
    expect(h.finish("t", "cancelled", taskResult({ exitCode: null })).status).toBe("cancelled");
    expect(h.worker(1).allocated).toEqual(res(0, 0));
  });

  it("lets a flagged task still report the outcome it reached first", () => {
    h = new Harness();
    h.register(1, res(2000, 2048));
    h.submit("t");
    h.ok({ type: "cancelTask", id: "t" });
    expect(h.finish("t", "succeeded").status).toBe("succeeded");
  });

  it("refuses to cancel a finished task with CONFLICT", () => {
    h = new Harness();
    h.register(1, res(2000, 2048));
    h.submit("t");
    h.finish("t");
    expect(h.err({ type: "cancelTask", id: "t" }).message).toContain("nothing to cancel");
  });
});

describe("finished tasks", () => {
  it("forgets the task that finished first once more than the bound are kept", () => {
    h = new Harness();
    h.register(1, res(1_000_000, 1_000_000));
    const count = MAX_FINISHED_TASKS + 2;
    for (let i = 0; i < count; i++) {
      const id = `t${String(i).padStart(6, "0")}`;
      h.model.apply({ type: "submitTask", id, spec: taskSpec({ resources: res(1, 1) }) }, 1);
      h.model.apply(
        {
          type: "taskFinished",
          id,
          nodeId: 1,
          attempt: 1,
          outcome: "succeeded",
          result: taskResult(),
        },
        1,
      );
    }
    expect(h.model.task("t000000")).toBeUndefined();
    expect(h.model.task("t000001")).toBeUndefined();
    expect(h.model.task("t000002")?.status).toBe("succeeded");
    expect(h.model.tasks({ limit: 1000 })).toHaveLength(1000);
  });
});

describe("tasks()", () => {
  it("lists by id with status and node filters and paging", () => {
    h = new Harness();
    h.register(1, res(1000, 1000));
    h.register(2, res(1000, 1000));
    for (const id of ["d", "a", "c", "b", "e"]) h.submit(id, { resources: res(1000, 1) });
    expect(h.model.tasks().map((t) => t.id)).toEqual(["a", "b", "c", "d", "e"]);
    // d came first and took node 1 (a tie goes to the lowest id), a took node 2.
    expect(h.model.tasks({ status: "pending" }).map((t) => t.id)).toEqual(["b", "c", "e"]);
    expect(h.model.tasks({ nodeId: 1 }).map((t) => t.id)).toEqual(["d"]);
    expect(h.model.tasks({ nodeId: 2 }).map((t) => t.id)).toEqual(["a"]);
    expect(h.model.tasks({ after: "b", limit: 2 }).map((t) => t.id)).toEqual(["c", "d"]);
    expect(h.model.tasks({ after: "bb" }).map((t) => t.id)).toEqual(["c", "d", "e"]);
    expect(() => h.model.tasks({ limit: 0 })).toThrow(/limit/);
    expect(() => h.model.tasks({ limit: 1001 })).toThrow(/limit/);
  });
});
