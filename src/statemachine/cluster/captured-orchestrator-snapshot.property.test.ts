/**
 * Property test of the orchestrator and ACL parts of snapshots encoded a slice at a time
 * (`captureSnapshot`, see `../orchestrator/snapshot-view.ts`, `../acl/snapshot-view.ts`): for
 * random orchestrator states (workers, tasks pending with shared or own reasons, placed, running,
 * finished; VMs) and ACL states (tokens, policies, bindings), with commands applied, queries answered (which write pending reasons back into entries) and
 * snapshots restored while the encoding is under way, the bytes equal the one-pass `snapshot()`
 * at the capture and restore to that state.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { AclCommand } from "../acl/types.js";
import { encodeKvCommand } from "../kv/command-codec.js";
import type { OrchestratorCommand } from "../orchestrator/commands.js";
import { RAW_EXEC_FEATURE } from "../orchestrator/features.js";
import type { TaskSpec, VmSpec } from "../orchestrator/types.js";
import { encodeCommandEnvelope } from "../session/envelope.js";
import {
  ClusterStateMachine,
  encodeAclCommand,
  encodeOrchestratorCommand,
} from "./cluster-state-machine.js";

const NODES = [1, 2, 3, 4];
const TASK_IDS = Array.from({ length: 14 }, (_, i) => `t${String(i).padStart(2, "0")}`);
const VM_NAMES = ["v0", "v1", "v2", "v3"];

function taskSpec(cpuMillis: number, feature: string | undefined): TaskSpec {
  return {
    command: "echo",
    args: ["hi"],
    env: {},
    cwd: "",
    shell: false,
    resources: { cpuMillis, memoryMb: 256, diskGb: 0 },
    requiredFeatures: feature === undefined ? [] : [feature],
    timeoutMs: 0,
    maxAttempts: 2,
  };
}

function vmSpec(vcpus: number, group: string): VmSpec {
  return {
    vcpus,
    memoryMb: 512,
    diskGb: 0,
    driver: "process",
    command: "sleep",
    args: ["infinity"],
    kernel: "",
    initrd: "",
    image: "",
    cmdline: "",
    requiredFeatures: [],
    antiAffinityGroup: group,
    restart: { mode: "on-failure", maxRestarts: 3, backoffMs: 100 },
  };
}

/** A command, or an agent's report on a task, resolved against the state when it runs. */
type Command =
  | { readonly kind: "command"; readonly command: OrchestratorCommand }
  | { readonly kind: "report"; readonly id: string; readonly failed: boolean }
  | { readonly kind: "kv"; readonly key: string }
  | { readonly kind: "acl"; readonly command: AclCommand };

const node = fc.constantFrom(...NODES);
const taskId = fc.constantFrom(...TASK_IDS);
const vmName = fc.constantFrom(...VM_NAMES);
/** Few shapes, so that many pending tasks share one (and its reason). */
const spec = fc
  .record({
    cpu: fc.constantFrom(500, 1000, 2500),
    feature: fc.constantFrom(undefined, undefined, "ssd"),
  })
  .map(({ cpu, feature }) => taskSpec(cpu, feature));

const orchestratorCommand: fc.Arbitrary<OrchestratorCommand> = fc.oneof(
  {
    weight: 3,
    arbitrary: fc.record({
      type: fc.constant("registerWorker" as const),
      nodeId: node,
      capacity: fc.constantFrom(
        { cpuMillis: 1000, memoryMb: 1024, diskGb: 0 },
        { cpuMillis: 3000, memoryMb: 2048, diskGb: 0 },
        { cpuMillis: 6000, memoryMb: 4096, diskGb: 0 },
      ),
      features: fc.constantFrom([RAW_EXEC_FEATURE], [RAW_EXEC_FEATURE, "ssd"], []),
    }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant("setWorkerDrain" as const),
      nodeId: node,
      draining: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ type: fc.constant("markWorkerOffline" as const), nodeId: node }),
  },
  {
    weight: 5,
    arbitrary: fc.record({ type: fc.constant("submitTask" as const), id: taskId, spec }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("submitTasks" as const),
      tasks: fc.uniqueArray(fc.record({ id: taskId, spec }), {
        minLength: 1,
        maxLength: 5,
        selector: (task) => task.id,
      }),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ type: fc.constant("cancelTask" as const), id: taskId }),
  },
  {
    weight: 2,
    arbitrary: fc.record({
      type: fc.constant("createVm" as const),
      name: vmName,
      spec: fc
        .record({ vcpus: fc.constantFrom(1, 4), group: fc.constantFrom("", "g") })
        .map(({ vcpus, group }) => vmSpec(vcpus, group)),
      desired: fc.constantFrom("running" as const, "stopped" as const),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("setVmDesired" as const),
      name: vmName,
      desired: fc.constantFrom("running" as const, "stopped" as const),
    }),
  },
  { weight: 1, arbitrary: fc.record({ type: fc.constant("deleteVm" as const), name: vmName }) },
  {
    weight: 1,
    arbitrary: fc.record({
      type: fc.constant("setSettings" as const),
      settings: fc.record({ placement: fc.constantFrom("binpack" as const, "spread" as const) }),
    }),
  },
);

const POLICIES = ["ops", "dev", "zz"];
const token = (n: number, management: boolean, policies: string[]) => ({
  accessorId: `acc-${n}`,
  secretHash: n.toString(16).padStart(64, "0"),
  name: `token ${n}`,
  description: "",
  policies,
  management,
  createdAtMs: 5,
  expiresAtMs: null,
});

const aclCommand: fc.Arbitrary<AclCommand> = fc.oneof(
  fc.constant({ type: "bootstrap" as const, token: token(0, true, []) }),
  fc.record({
    type: fc.constant("createToken" as const),
    token: fc
      .tuple(fc.integer({ min: 1, max: 12 }), fc.subarray(POLICIES, { maxLength: 1 }))
      .map(([n, policies]) => token(n, false, policies)),
  }),
  fc.record({
    type: fc.constant("revokeToken" as const),
    accessorId: fc.integer({ min: 0, max: 12 }).map((n) => `acc-${n}`),
  }),
  fc.record({
    type: fc.constant("upsertPolicy" as const),
    policy: fc.record({
      name: fc.constantFrom(...POLICIES),
      description: fc.constantFrom("", "reads app/"),
      rules: fc.constant([{ resource: "kv" as const, access: "read" as const, prefix: "app/" }]),
    }),
  }),
  fc.record({ type: fc.constant("deletePolicy" as const), name: fc.constantFrom(...POLICIES) }),
  fc.record({
    type: fc.constant("setCertBinding" as const),
    binding: fc.record({
      commonName: fc.constantFrom("node-a", "node-b"),
      description: fc.constantFrom("", "a node"),
      policies: fc.subarray(POLICIES, { maxLength: 1 }),
    }),
  }),
);

const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  { weight: 3, arbitrary: aclCommand.map((command) => ({ kind: "acl" as const, command })) },
  {
    weight: 8,
    arbitrary: orchestratorCommand.map((command) => ({ kind: "command" as const, command })),
  },
  {
    weight: 4,
    arbitrary: fc.record({
      kind: fc.constant("report" as const),
      id: taskId,
      failed: fc.boolean(),
    }),
  },
  {
    weight: 1,
    arbitrary: fc.record({ kind: fc.constant("kv" as const), key: fc.constantFrom("a", "b") }),
  },
);

/** What happens while a snapshot is being encoded. */
type Step =
  | { readonly kind: "slice"; readonly budgetBytes: number }
  | { readonly kind: "apply"; readonly command: Command }
  | { readonly kind: "query" }
  | { readonly kind: "restoreOther" };

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  {
    weight: 5,
    arbitrary: fc.record({
      kind: fc.constant("slice" as const),
      budgetBytes: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 65, max: 3000 })),
    }),
  },
  {
    weight: 6,
    arbitrary: fc.record({ kind: fc.constant("apply" as const), command: commandArbitrary }),
  },
  { weight: 3, arbitrary: fc.constant({ kind: "query" as const }) },
  { weight: 1, arbitrary: fc.constant({ kind: "restoreOther" as const }) },
);

/** The payload of `command` against `machine`'s state now (a report for a task's current attempt). */
function payloadOf(machine: ClusterStateMachine, command: Command): Uint8Array | undefined {
  if (command.kind === "kv") {
    return encodeKvCommand({ op: "put", key: command.key, value: new Uint8Array([1]) });
  }
  if (command.kind === "command") return encodeOrchestratorCommand(command.command);
  if (command.kind === "acl") return encodeAclCommand(command.command);
  const task = machine.orchestrator.task(command.id);
  if (task === undefined || task.nodeId === null) return undefined;
  if (task.status === "assigned") {
    return encodeOrchestratorCommand({
      type: "taskStarted",
      id: task.id,
      nodeId: task.nodeId,
      attempt: task.attempts,
    });
  }
  if (task.status !== "running") return undefined;
  return encodeOrchestratorCommand({
    type: "taskFinished",
    id: task.id,
    nodeId: task.nodeId,
    attempt: task.attempts,
    outcome: command.failed ? "failed" : "succeeded",
    result: {
      exitCode: command.failed ? 1 : 0,
      stdout: "out",
      stderr: "",
      stdoutTruncated: false,
      stderrTruncated: false,
      durationMs: 5,
      error: "",
    },
  });
}

/** Applies commands with increasing indexes and log times. */
function applier(machine: ClusterStateMachine) {
  let index = 0;
  return (command: Command): void => {
    const payload = payloadOf(machine, command);
    if (payload === undefined) return;
    index++;
    machine.apply({
      index,
      term: 1,
      data: encodeCommandEnvelope({ proposedAtMs: index * 10, payload }),
    });
  };
}

/** Reads every task and VM, as the API would (pending reasons are written back into entries). */
function queryAll(machine: ClusterStateMachine): void {
  for (const id of TASK_IDS) machine.orchestrator.task(id);
  machine.orchestrator.vms();
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((byte, i) => byte === b[i]);

describe("captureSnapshot: the orchestrator and ACL parts encoded a slice at a time", () => {
  it("equals snapshot() at the capture and restores to it, whatever is applied, queried or restored meanwhile", () => {
    fc.assert(
      fc.property(
        fc.array(commandArbitrary, { minLength: 10, maxLength: 80, size: "max" }),
        fc.array(commandArbitrary, { maxLength: 30 }),
        fc.boolean(),
        fc.array(stepArbitrary, { minLength: 10, maxLength: 80, size: "max" }),
        (before, other, queryBefore, steps) => {
          const machine = new ClusterStateMachine();
          const apply = applier(machine);
          for (const command of before) apply(command);
          if (queryBefore) queryAll(machine);
          const otherMachine = new ClusterStateMachine();
          const applyOther = applier(otherMachine);
          for (const command of other) applyOther(command);
          const otherSnapshot = otherMachine.snapshot();

          const encoding = machine.captureSnapshot();
          const expected = machine.snapshot();

          const slices: Uint8Array[] = [];
          const take = (budgetBytes?: number): boolean => {
            const slice = encoding.next(budgetBytes);
            if (slice === undefined) return false;
            slices.push(slice.slice());
            return true;
          };
          for (const step of steps) {
            if (step.kind === "slice") take(step.budgetBytes);
            else if (step.kind === "apply") apply(step.command);
            else if (step.kind === "query") queryAll(machine);
            else machine.restore(otherSnapshot);
          }
          while (take(97));
          const bytes = encoding.finish();

          expect(sameBytes(bytes, expected)).toBe(true);
          const joined = new Uint8Array(slices.reduce((sum, s) => sum + s.length, 0));
          let offset = 0;
          for (const slice of slices) {
            joined.set(slice, offset);
            offset += slice.length;
          }
          expect(sameBytes(joined, expected)).toBe(true);
          expect(encoding.encodedBytes).toBeGreaterThanOrEqual(expected.length);

          const restored = new ClusterStateMachine();
          restored.restore(bytes);
          expect(sameBytes(restored.snapshot(), expected)).toBe(true);
        },
      ),
      { numRuns: 300 },
    );
  });
});
