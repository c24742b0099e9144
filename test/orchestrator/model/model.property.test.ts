/**
 * Property tests of the orchestrator model over random command sequences (users, agents with
 * current and stale reports, worker failures):
 * - after every command the invariants hold (no over-commit, allocation = sum of placed work,
 *   features, anti-affinity, nothing on draining-new or offline workers, no placeable pending
 *   work — so pending work is placed as soon as capacity appears);
 * - an error result leaves the state unchanged;
 * - determinism: a twin model fed the same commands returns the same results and snapshot
 *   bytes, also when it is replaced at random points by a restore of the first one's snapshot;
 * - the placement index decides as the reference scan does: a model placing by scanning every
 *   worker returns the same results and bytes for the same commands;
 * - direct placements are the scheduler's choice on the state before the command;
 * - a task's reports are accepted only for its current node and attempt, it succeeds at most
 *   once, its attempts never exceed its maximum, and a finished task never changes;
 * - a task on a worker that goes offline is retried elsewhere while attempts remain, else lost
 *   (or cancelled if a cancel was pending); VMs desired running are moved off it.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { CommandResult } from "../../../src/statemachine/command-result.js";
import type {
  OrchestratorCommand,
  OrchestratorResult,
} from "../../../src/statemachine/orchestrator/commands.js";
import { OrchestratorModel } from "../../../src/statemachine/orchestrator/model.js";
import { RAW_EXEC_FEATURE } from "../../../src/statemachine/orchestrator/features.js";
import { choosePlacement } from "../../../src/statemachine/orchestrator/scheduler.js";
import type { Task, VmStatus } from "../../../src/statemachine/orchestrator/types.js";
import {
  checkInvariants,
  qemuSpec,
  res,
  sameBytes,
  taskResult,
  taskSpec,
  vmSpec,
} from "./fixtures.js";

const NODES = [1, 2, 3, 4];
const TASK_IDS = ["t0", "t1", "t2", "t3", "t4", "t5", "t6", "t7"];
const VM_NAMES = ["v0", "v1", "v2", "v3", "v4"];
const FEATURES = ["kvm", "qemu", "ssd"];

/** A step: a command, or an agent's report resolved against the state when it runs. */
type Step =
  | { readonly kind: "command"; readonly command: OrchestratorCommand }
  | { readonly kind: "start"; readonly pick: number; readonly stale: boolean }
  | {
      readonly kind: "finish";
      readonly pick: number;
      readonly stale: boolean;
      readonly outcome: "succeeded" | "failed" | "timed_out" | "cancelled";
    }
  | {
      readonly kind: "observe";
      readonly pick: number;
      readonly stale: boolean;
      readonly status: Exclude<VmStatus, "pending" | "scheduled">;
    }
  /**
   * An operator drains a worker that runs a task, with a deadline (random drains rarely do); if
   * no task runs, an agent starts one first.
   */
  | { readonly kind: "drainBusy"; readonly pick: number; readonly deadlineMs: number }
  /**
   * The leader's monitor steps a worker whose drain deadline is pending: when `due`, log time
   * first moves on to the deadline (as the leader's clock would), else possibly early.
   */
  | { readonly kind: "deadline"; readonly pick: number; readonly due: boolean }
  /**
   * An operator migrates a running qemu VM (random commands seldom find one); if none runs, its
   * agent reports one running first.
   */
  | { readonly kind: "migrateRunning"; readonly pick: number; readonly to: number | undefined };

const node = fc.constantFrom(...NODES);
const taskId = fc.constantFrom(...TASK_IDS);
const vmName = fc.constantFrom(...VM_NAMES);

const commandStep: fc.Arbitrary<Step> = fc
  .oneof(
    {
      weight: 3,
      arbitrary: fc.record({
        type: fc.constant("registerWorker" as const),
        nodeId: node,
        capacity: fc.constantFrom(
          res(2000, 2048, 10),
          res(4000, 4096, 20),
          res(1000, 1024, 0),
          res(3000, 1024, 5),
        ),
        // Mostly nodes started with --enable-raw-exec; some without, whose work must stay pending.
        features: fc.oneof(
          { weight: 4, arbitrary: fc.subarray(FEATURES).map((f) => [...f, RAW_EXEC_FEATURE]) },
          { weight: 1, arbitrary: fc.subarray(FEATURES) },
        ),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.oneof(
        fc.record({
          type: fc.constant("setWorkerDrain" as const),
          nodeId: node,
          draining: fc.boolean(),
        }),
        fc.record({
          type: fc.constant("setWorkerDrain" as const),
          nodeId: node,
          draining: fc.constant(true),
          deadlineMs: fc.integer({ min: 0, max: 1500 }),
        }),
      ),
    },
    {
      weight: 2,
      arbitrary: fc.record({ type: fc.constant("drainDeadlineReached" as const), nodeId: node }),
    },
    {
      weight: 1,
      arbitrary: fc.record({ type: fc.constant("markWorkerOffline" as const), nodeId: node }),
    },
    {
      weight: 4,
      arbitrary: fc.record({
        type: fc.constant("submitTask" as const),
        id: taskId,
        spec: fc
          .record({
            cpu: fc.constantFrom(1, 500, 1000, 2500),
            memory: fc.constantFrom(1, 256, 1024),
            features: fc.subarray(FEATURES, { maxLength: 1 }),
            maxAttempts: fc.integer({ min: 1, max: 3 }),
          })
          .map(({ cpu, memory, features, maxAttempts }) =>
            taskSpec({ resources: res(cpu, memory), requiredFeatures: features, maxAttempts }),
          ),
      }),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        type: fc.constant("submitTasks" as const),
        tasks: fc.array(
          fc.record({
            id: taskId,
            spec: fc
              .constantFrom(1, 500, 2500)
              .map((cpu) => taskSpec({ resources: res(cpu, 256), maxAttempts: 2 })),
          }),
          { maxLength: 3 },
        ),
      }),
    },
    { weight: 1, arbitrary: fc.record({ type: fc.constant("cancelTask" as const), id: taskId }) },
    {
      weight: 2,
      arbitrary: fc.record({
        type: fc.constant("createVm" as const),
        name: vmName,
        spec: fc
          .record({
            qemu: fc.boolean(),
            vcpus: fc.integer({ min: 1, max: 2 }),
            group: fc.constantFrom("", "g"),
          })
          .map(({ qemu, vcpus, group }) =>
            (qemu ? qemuSpec : vmSpec)({ vcpus, memoryMb: 512, antiAffinityGroup: group }),
          ),
        desired: fc.constantFrom("running" as const, "running" as const, "stopped" as const),
      }),
    },
    {
      weight: 2,
      arbitrary: fc.record({
        type: fc.constant("setVmDesired" as const),
        name: vmName,
        desired: fc.constantFrom("running" as const, "stopped" as const),
      }),
    },
    { weight: 1, arbitrary: fc.record({ type: fc.constant("deleteVm" as const), name: vmName }) },
    {
      weight: 1,
      arbitrary: fc
        .record({ name: vmName, to: fc.option(node, { nil: undefined }) })
        .map(({ name, to }) => ({
          type: "migrateVm" as const,
          name,
          ...(to === undefined ? {} : { targetNodeId: to }),
        })),
    },
    {
      weight: 1,
      arbitrary: fc.record({
        type: fc.constant("setSettings" as const),
        settings: fc.record({ placement: fc.constantFrom("binpack" as const, "spread" as const) }),
      }),
    },
  )
  .map((command) => ({ kind: "command" as const, command }));

const reportStep: fc.Arbitrary<Step> = fc.oneof(
  fc.record({ kind: fc.constant("start" as const), pick: fc.nat(), stale: fc.boolean() }),
  fc.record({
    kind: fc.constant("finish" as const),
    pick: fc.nat(),
    stale: fc.boolean(),
    outcome: fc.constantFrom(
      "succeeded" as const,
      "failed" as const,
      "timed_out" as const,
      "cancelled" as const,
    ),
  }),
  fc.record({
    kind: fc.constant("observe" as const),
    pick: fc.nat(),
    stale: fc.boolean(),
    status: fc.constantFrom(
      "starting" as const,
      "running" as const,
      "stopping" as const,
      "stopped" as const,
      "failed" as const,
    ),
  }),
);

const drainStep: fc.Arbitrary<Step> = fc.oneof(
  fc.record({
    kind: fc.constant("drainBusy" as const),
    pick: fc.nat(),
    deadlineMs: fc.integer({ min: 1, max: 3000 }),
  }),
  fc.record({ kind: fc.constant("deadline" as const), pick: fc.nat(), due: fc.boolean() }),
);

const migrateStep: fc.Arbitrary<Step> = fc.record({
  kind: fc.constant("migrateRunning" as const),
  pick: fc.nat(),
  to: fc.option(node, { nil: undefined }),
});

const stepsArbitrary = fc.array(
  fc.record({
    step: fc.oneof(
      { weight: 6, arbitrary: commandStep },
      { weight: 4, arbitrary: reportStep },
      { weight: 2, arbitrary: drainStep },
      { weight: 1, arbitrary: migrateStep },
    ),
    advanceMs: fc.integer({ min: 0, max: 1000 }),
    restoreTwin: fc.integer({ min: 0, max: 19 }).map((n) => n === 0),
  }),
  { minLength: 20, maxLength: 80 },
);

/** Turns an agent's report into a command about the current state (a stale one is off by one). */
function resolve(model: OrchestratorModel, step: Step): OrchestratorCommand | undefined {
  if (step.kind === "command") return step.command;
  if (step.kind === "drainBusy") {
    const running = model.tasks({ status: "running", limit: 1000 });
    const task = running[step.pick % Math.max(1, running.length)];
    if (task === undefined) {
      // Nothing runs yet (random reports seldom leave a task running): its agent starts one.
      const assigned = model.tasks({ status: "assigned", limit: 1000 });
      const next = assigned[step.pick % Math.max(1, assigned.length)];
      return next === undefined
        ? undefined
        : {
            type: "taskStarted",
            id: next.id,
            nodeId: next.nodeId as number,
            attempt: next.attempts,
          };
    }
    const nodeId = task.nodeId as number;
    return { type: "setWorkerDrain", nodeId, draining: true, deadlineMs: step.deadlineMs };
  }
  if (step.kind === "deadline") {
    const waiting = model.workers().filter((w) => w.drainDeadlineMs !== undefined);
    const worker = waiting[step.pick % Math.max(1, waiting.length)];
    return worker === undefined
      ? undefined
      : { type: "drainDeadlineReached", nodeId: worker.nodeId };
  }
  if (step.kind === "migrateRunning") {
    const qemu = model.vms().filter((vm) => vm.spec.driver === "qemu" && vm.nodeId !== null);
    const running = qemu.filter((vm) => vm.status === "running");
    const vm = running[step.pick % Math.max(1, running.length)];
    if (vm === undefined) {
      const other = qemu[step.pick % Math.max(1, qemu.length)];
      return other === undefined || other.migration !== undefined
        ? undefined
        : {
            type: "vmObserved",
            name: other.name,
            nodeId: other.nodeId as number,
            status: "running",
            restarts: other.restarts,
            error: "",
          };
    }
    return {
      type: "migrateVm",
      name: vm.name,
      ...(step.to === undefined ? {} : { targetNodeId: step.to }),
    };
  }
  if (step.kind === "observe") {
    const placed = model.vms().filter((vm) => vm.nodeId !== null);
    const vm = placed[step.pick % Math.max(1, placed.length)];
    if (vm === undefined) return undefined;
    // A migrating VM's target reports half the time, where it listens too.
    const target = step.pick % 2 === 0 ? vm.migration?.targetNodeId : undefined;
    const nodeId =
      target ?? (step.stale ? ((vm.nodeId as number) % NODES.length) + 1 : (vm.nodeId as number));
    return {
      type: "vmObserved",
      name: vm.name,
      nodeId,
      status: step.status,
      restarts: step.pick % 3,
      error: "",
      ...(target !== undefined && step.status === "starting"
        ? { incomingUri: `tcp:127.0.0.1:${1000 + (step.pick % 100)}` }
        : {}),
    };
  }
  const tasks = model.tasks({ limit: 1000 }).filter((t) => t.nodeId !== null);
  const task = tasks[step.pick % Math.max(1, tasks.length)];
  if (task === undefined) return undefined;
  const nodeId = task.nodeId as number;
  const attempt = step.stale && task.attempts > 1 ? task.attempts - 1 : task.attempts;
  const where = step.stale && task.attempts <= 1 ? (nodeId % NODES.length) + 1 : nodeId;
  if (step.kind === "start") return { type: "taskStarted", id: task.id, nodeId: where, attempt };
  return {
    type: "taskFinished",
    id: task.id,
    nodeId: where,
    attempt,
    outcome: step.outcome,
    result: taskResult({ exitCode: step.outcome === "succeeded" ? 0 : null }),
  };
}

const TERMINAL = new Set(["succeeded", "failed", "timed_out", "cancelled", "lost"]);

/** Checks what one command did to the tasks against the rules of the task lifecycle. */
function checkTaskTransitions(
  command: OrchestratorCommand,
  result: CommandResult<OrchestratorResult>,
  before: ReadonlyMap<string, Task>,
  after: OrchestratorModel,
  successes: Map<string, number>,
  deadlineBefore: number | undefined,
): void {
  for (const [id, old] of before) {
    const now = after.task(id);
    if (now === undefined) continue;
    // A drain gives the moved attempt back (the re-placement reuses its number): the only way
    // attempts go down, by one, and only for a placed task of the drained worker now pending.
    const drainedBack =
      ((command.type === "setWorkerDrain" && command.draining) ||
        command.type === "drainDeadlineReached") &&
      result.ok &&
      old.nodeId === command.nodeId &&
      (old.status === "assigned" || old.status === "running") &&
      now.status === "pending";
    expect(now.attempts, `task ${id} attempts`).toBeGreaterThanOrEqual(
      drainedBack ? old.attempts - 1 : old.attempts,
    );
    expect(now.attempts).toBeLessThanOrEqual(now.spec.maxAttempts);
    if (TERMINAL.has(old.status)) expect(now, `finished task ${id} changed`).toEqual(old);
    if (now.status === "succeeded" && old.status !== "succeeded") {
      successes.set(id, (successes.get(id) ?? 0) + 1);
      expect(successes.get(id), `task ${id} succeeded twice`).toBe(1);
    }
  }
  if (result.ok && (command.type === "taskStarted" || command.type === "taskFinished")) {
    const old = before.get(command.id) as Task;
    expect(old.nodeId, "a report is accepted only from the current node").toBe(command.nodeId);
    expect(old.attempts, "a report is accepted only for the current attempt").toBe(command.attempt);
  }
  // A deadline step does something only for a worker whose deadline was pending.
  const drain =
    result.ok &&
    ((command.type === "setWorkerDrain" && command.draining) ||
      (command.type === "drainDeadlineReached" && deadlineBefore !== undefined));
  if (drain) {
    const worker = after.worker(command.nodeId);
    // Tasks left running until a deadline stay where they are; the rest moves.
    const deadline = worker?.drainDeadlineMs;
    for (const [id, old] of before) {
      if (old.nodeId !== command.nodeId || (old.status !== "assigned" && old.status !== "running"))
        continue;
      const now = after.task(id) as Task;
      if (deadline !== undefined && old.status === "running" && now.nodeId === command.nodeId) {
        expect(now).toEqual(old);
        continue;
      }
      if (old.cancelRequested) expect(now.status).toBe("cancelled");
      else if (now.status === "pending") expect(now.attempts).toBe(old.attempts - 1);
      else {
        expect(now).toMatchObject({ status: "assigned", attempts: old.attempts });
        expect(now.nodeId).not.toBe(command.nodeId);
      }
    }
    const left = after.assignments(command.nodeId);
    expect(left.vms).toEqual([]);
    if (deadline === undefined) expect(left.tasks).toEqual([]);
    else expect(left.tasks.every((task) => task.status === "running")).toBe(true);
  }
  if (command.type === "markWorkerOffline" && result.ok) {
    for (const [id, old] of before) {
      if (old.nodeId !== command.nodeId || (old.status !== "assigned" && old.status !== "running"))
        continue;
      const now = after.task(id) as Task;
      if (old.cancelRequested) expect(now.status).toBe("cancelled");
      else if (old.attempts < old.spec.maxAttempts) {
        expect(["pending", "assigned"]).toContain(now.status);
        expect(now.nodeId).not.toBe(command.nodeId);
      } else expect(now.status).toBe("lost");
    }
    expect(after.assignments(command.nodeId)).toEqual({ tasks: [], vms: [] });
  }
}

/** The scheduler's choice for a task about to be submitted, on the state before the submit. */
function expectedNode(
  model: OrchestratorModel,
  command: OrchestratorCommand,
): number | null | undefined {
  if (command.type !== "submitTask" || model.task(command.id) !== undefined) return undefined;
  const groupNodes = new Map<string, Set<number>>();
  for (const vm of model.vms()) {
    if (vm.nodeId === null || vm.spec.antiAffinityGroup === "") continue;
    groupNodes.set(
      vm.spec.antiAffinityGroup,
      (groupNodes.get(vm.spec.antiAffinityGroup) ?? new Set()).add(vm.nodeId),
    );
  }
  const decision = choosePlacement(
    {
      resources: command.spec.resources,
      requiredFeatures: [...new Set([...command.spec.requiredFeatures, RAW_EXEC_FEATURE])].sort(),
      antiAffinityGroup: "",
    },
    { workers: model.workers(), groupNodes, strategy: model.settings().placement },
  );
  return decision.placed ? decision.nodeId : null;
}

describe("OrchestratorModel properties", () => {
  it("keeps every invariant, is deterministic and survives snapshot/restore, for any command sequence", () => {
    let commandsApplied = 0;
    let placements = 0;
    let deadlineMoves = 0;
    fc.assert(
      fc.property(stepsArbitrary, (steps) => {
        const model = new OrchestratorModel();
        let twin = new OrchestratorModel();
        const reference = new OrchestratorModel({ referenceScheduler: true });
        const successes = new Map<string, number>();
        let nowMs = 1000;
        for (const { step, advanceMs, restoreTwin } of steps) {
          nowMs += advanceMs;
          const command = resolve(model, step);
          if (step.kind === "deadline" && step.due && command?.type === "drainDeadlineReached") {
            nowMs = Math.max(nowMs, model.worker(command.nodeId)?.drainDeadlineMs ?? 0);
          }
          if (command === undefined) continue;
          commandsApplied++;
          const beforeTasks = new Map(model.tasks({ limit: 1000 }).map((t) => [t.id, t]));
          const expected = expectedNode(model, command);
          const deadlineBefore =
            "nodeId" in command ? model.worker(command.nodeId)?.drainDeadlineMs : undefined;
          const result = model.apply(command, nowMs);
          if (!result.ok) {
            // The twin has not applied the command yet: it holds the state before it.
            expect(
              sameBytes(model.snapshot(), twin.snapshot()),
              `${command.type} failed but changed state`,
            ).toBe(true);
          }
          if (command.type === "drainDeadlineReached" && result.ok) {
            const moved = (result.value as { moved?: { tasks: number } }).moved?.tasks ?? 0;
            if (moved > 0) deadlineMoves++;
          }
          if (expected !== undefined && result.ok) {
            placements++;
            expect((result.value as { task: Task }).task.nodeId).toBe(expected);
          }
          checkInvariants(model);
          checkTaskTransitions(command, result, beforeTasks, model, successes, deadlineBefore);
          expect(twin.apply(command, nowMs)).toEqual(result);
          expect(reference.apply(command, nowMs), "the scan decided otherwise").toEqual(result);
          const bytes = model.snapshot();
          expect(sameBytes(twin.snapshot(), bytes), "the twin diverged").toBe(true);
          expect(sameBytes(reference.snapshot(), bytes), "the scan diverged").toBe(true);
          if (restoreTwin) {
            twin = new OrchestratorModel();
            twin.restore(bytes);
          }
        }
      }),
      { numRuns: 80 },
    );
    expect(commandsApplied).toBeGreaterThan(1200);
    expect(placements).toBeGreaterThan(150);
    // Sequences do reach a deadline with tasks still running on the drained worker.
    expect(deadlineMoves).toBeGreaterThan(0);
  });
});
