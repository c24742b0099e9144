/**
 * Live migration of a VM from its node (the source) to another (the target). Private to the
 * orchestrator folder; `model.ts` and `vm-commands.ts` call these.
 *
 * The model decides, the agents act, and their reports come back as `vmObserved`:
 *
 * 1. `migrateVm` on a `running` qemu VM picks a target (the one named, if it is feasible as for
 *    a placement, else the scheduler's choice among the other workers) and makes the VM
 *    `migrating` with `migration.targetNodeId`; the target holds the VM's resources too (and its
 *    anti-affinity group) from then on, so nothing else can take them.
 * 2. The target's agent starts a QEMU waiting for the stream and reports `starting` or `booting`
 *    with `incomingUri` (and, for a VM with a disk, `incomingDiskUri`: where its fresh disk takes
 *    the copy); the model records them. The source's agent then sends the VM (and its disk)
 *    there.
 * 3. The target reports `running` (its guest runs after the stream): the VM moves to the target,
 *    which now holds it alone. The source's agent sees the VM gone and ends its paused copy.
 * 4. Failure rolls back to the source, `running` with the reason as last error: the target
 *    reports `failed` or `stopped` (its QEMU died, the stream broke, it timed out), the target
 *    goes offline or is drained, the VM is asked to stop, or the source reports that it could not
 *    send the VM to where the target listens (`sendFailedTo`). If the source's own copy ends
 *    (any report other than `running`/`unhealthy` from the source) or the source goes offline or
 *    is drained, the migration is abandoned and the VM is handled as it would be without one (its
 *    restart policy on the source, or the normal reschedule).
 */
import { invariant } from "../../common/index.js";
import type { NodeId } from "../../raft/types.js";
import { errorResult, okResult, type CommandResult } from "../command-result.js";
import type { OrchestratorCommand, OrchestratorResult } from "./commands.js";
import { placePending } from "./placement.js";
import { choosePlacement } from "./scheduler.js";
import { vmRequest, type OrchestratorState } from "./state.js";
import type { Vm, Worker } from "./types.js";

type Command<T extends OrchestratorCommand["type"]> = Extract<OrchestratorCommand, { type: T }>;
type Result = CommandResult<OrchestratorResult>;

/** `vm` without its migration (the field absent, as in a VM that never migrated). */
export function withoutMigration(vm: Vm): Vm {
  const { migration: _dropped, ...rest } = vm;
  return rest;
}

/** True when the VM has a disk of its own on its node (an image overlay or a data disk). */
export function hasOwnDisk(vm: Vm): boolean {
  return vm.spec.image !== "" || vm.spec.diskGb > 0;
}

/**
 * `vm` with its current disk on node `nodeId` (see `Vm.diskNodeId`); `vm` itself for a VM without
 * a disk or one already there. The key goes before `migration`, as the reader puts it, so the
 * encoding stays canonical.
 */
export function withDiskOn(vm: Vm, nodeId: NodeId): Vm {
  if (!hasOwnDisk(vm) || vm.diskNodeId === nodeId) return vm;
  const { migration, diskNodeId: _previous, ...rest } = vm;
  return { ...rest, diskNodeId: nodeId, ...(migration === undefined ? {} : { migration }) };
}

/**
 * `vm` back on its source after a failed migration: `running` (the source kept it running
 * throughout; its agent reports again if it sees otherwise), with `reason` as its last error.
 */
export function rolledBack(vm: Vm, reason: string, nowMs: number): Vm {
  const target = vm.migration?.targetNodeId;
  return {
    ...withoutMigration(vm),
    status: "running",
    lastError: `migration to node ${target} failed: ${reason}`,
    updatedAtMs: nowMs,
  };
}

/**
 * Starts a live migration (see the module comment). Refused: NOT_FOUND (no such VM, or the
 * named target is not registered), INVALID_ARGUMENT (a process VM; the target is its own node),
 * CONFLICT (the VM is not running, is already migrating, or no other worker can take it: the
 * reason says which constraint failed).
 */
export function migrateVm(
  state: OrchestratorState,
  command: Command<"migrateVm">,
  nowMs: number,
): Result {
  const vm = state.vmEntry(command.name)?.vm;
  if (vm === undefined) return errorResult("NOT_FOUND", `VM ${command.name} does not exist`);
  if (vm.spec.driver !== "qemu") {
    return errorResult(
      "INVALID_ARGUMENT",
      `VM ${vm.name} runs under the ${vm.spec.driver} driver; only qemu VMs can be live-migrated ` +
        "(stop it and start it again to move it)",
    );
  }
  if (vm.migration !== undefined) {
    return errorResult(
      "CONFLICT",
      `VM ${vm.name} is already migrating to node ${vm.migration.targetNodeId}; wait for it to ` +
        "end (vm get shows the outcome)",
    );
  }
  const source = vm.nodeId;
  if (source === null || vm.desired !== "running" || vm.status !== "running") {
    return errorResult(
      "CONFLICT",
      `VM ${vm.name} is ${vm.status}${source === null ? "" : ` on node ${source}`}; only a ` +
        "running VM can be migrated: wait until it is running",
    );
  }
  if (command.targetNodeId === source) {
    return errorResult(
      "INVALID_ARGUMENT",
      `VM ${vm.name} already runs on node ${source}; name another node or leave --to out`,
    );
  }
  const target = chooseTarget(state, vm, source, command.targetNodeId);
  if (!target.ok) return target.result;
  const migrating: Vm = {
    ...vm,
    status: "migrating",
    lastError: "",
    updatedAtMs: nowMs,
    migration: { targetNodeId: target.nodeId, incomingUri: "", startedAtMs: nowMs },
  };
  state.putVm(migrating);
  return okResult({ type: "vm", vm: migrating });
}

type TargetChoice =
  { readonly ok: true; readonly nodeId: NodeId } | { readonly ok: false; readonly result: Result };

/** The named target if it could take the VM now, else the scheduler's pick among the others. */
function chooseTarget(
  state: OrchestratorState,
  vm: Vm,
  source: NodeId,
  named: NodeId | undefined,
): TargetChoice {
  let workers: Worker[];
  if (named !== undefined) {
    const worker = state.worker(named);
    if (worker === undefined) {
      return {
        ok: false,
        result: errorResult("NOT_FOUND", `node ${named} is not a registered worker`),
      };
    }
    workers = [worker];
  } else {
    workers = [...state.workers()].filter((worker) => worker.nodeId !== source);
  }
  // The reference scan over the candidates: a migration is rare, and the index cannot leave the
  // source out.
  const decision = choosePlacement(vmRequest(vm), {
    workers,
    groupNodes: state.groupNodes,
    strategy: state.settings.placement,
  });
  if (decision.placed) return { ok: true, nodeId: decision.nodeId };
  const where =
    named === undefined ? "no other worker can take it" : `node ${named} cannot take it`;
  return {
    ok: false,
    result: errorResult(
      "CONFLICT",
      `VM ${vm.name} cannot be migrated: ${where} (${decision.reason}); free capacity there or ` +
        "pick another node",
    ),
  };
}

/**
 * A report about a `migrating` VM from its source or its target (the caller checked that it is
 * one of them). Returns the result, or undefined when the report is the source's and ends the
 * migration: the caller then applies it as a report about `withoutMigration` of the VM, `running`,
 * which the returned VM is (the target's hold is released here).
 */
export function migrationObserved(
  state: OrchestratorState,
  vm: Vm,
  command: Command<"vmObserved">,
  nowMs: number,
): { readonly result: Result } | { readonly abandoned: Vm } {
  const migration = vm.migration;
  invariant(migration !== undefined, () => `VM ${vm.name} is migrating`);
  const ok = (next: Vm): { result: Result } => ({ result: okResult({ type: "vm", vm: next }) });
  if (command.nodeId === migration.targetNodeId) {
    if (command.status === "running" || command.status === "unhealthy") {
      // The guest runs on the target: the VM is the target's alone now.
      // Its disk came along: the target's copy is the current one now.
      const moved: Vm = withDiskOn(
        {
          ...withoutMigration(vm),
          nodeId: migration.targetNodeId,
          status: command.status,
          restarts: command.restarts,
          lastError: command.error,
          updatedAtMs: nowMs,
        },
        migration.targetNodeId,
      );
      state.putVm(moved);
      placePending(state, nowMs);
      return ok(moved);
    }
    if (
      command.status === "failed" ||
      command.status === "stopped" ||
      command.status === "stopping"
    ) {
      const back = rolledBack(vm, command.error === "" ? command.status : command.error, nowMs);
      state.putVm(back);
      placePending(state, nowMs);
      return ok(back);
    }
    // starting, booting: the target prepares; only where it listens matters to the model.
    if (
      command.incomingUri === undefined ||
      (command.incomingUri === migration.incomingUri &&
        command.incomingDiskUri === migration.diskUri)
    ) {
      return ok(vm);
    }
    const { diskUri: _previous, ...rest } = migration;
    const listening: Vm = {
      ...vm,
      migration: {
        ...rest,
        incomingUri: command.incomingUri,
        ...(command.incomingDiskUri === undefined ? {} : { diskUri: command.incomingDiskUri }),
      },
      updatedAtMs: nowMs,
    };
    state.putVm(listening);
    return ok(listening);
  }
  // From the source: its copy still runs (a health change), or it ended and so did the migration.
  if (command.status === "running" || command.status === "unhealthy") {
    if (command.sendFailedTo !== undefined && command.sendFailedTo === migration.incomingUri) {
      // It could not send the VM where the target listens: no need to wait for the target.
      const back = rolledBack(
        vm,
        command.error === "" ? "the source could not send it" : command.error,
        nowMs,
      );
      state.putVm(back);
      placePending(state, nowMs);
      return ok(back);
    }
    if (vm.restarts === command.restarts && vm.lastError === command.error) return ok(vm);
    const noted: Vm = {
      ...vm,
      restarts: command.restarts,
      lastError: command.error,
      updatedAtMs: nowMs,
    };
    state.putVm(noted);
    return ok(noted);
  }
  const abandoned: Vm = { ...withoutMigration(vm), status: "running" };
  state.putVm(abandoned);
  return { abandoned };
}
