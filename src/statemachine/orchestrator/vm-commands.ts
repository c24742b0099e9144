/**
 * The VM commands: create, set the desired state, delete, and the agent's observations. Private
 * to the orchestrator folder; `model.ts` dispatches to these after validating the command.
 */
import { errorResult, okResult, type CommandResult } from "../command-result.js";
import type { OrchestratorCommand, OrchestratorResult } from "./commands.js";
import { MAX_VMS } from "./limits.js";
import { placePending, placeVm } from "./placement.js";
import type { OrchestratorState } from "./state.js";
import type { Vm } from "./types.js";
import { migrationObserved, withDiskOn, withoutMigration } from "./vm-migration.js";

type Command<T extends OrchestratorCommand["type"]> = Extract<OrchestratorCommand, { type: T }>;
type Result = CommandResult<OrchestratorResult>;

/** The placeholder reason of work about to go through the scheduler. */
const WAITING = "waiting to be placed";

function vmResult(vm: Vm): Result {
  return okResult({ type: "vm", vm });
}

function noSuchVm(name: string): Result {
  return errorResult("NOT_FOUND", `VM ${name} does not exist`);
}

/** Creates a VM; one desired running is placed at once when a worker fits it, else pending. */
export function createVm(
  state: OrchestratorState,
  command: Command<"createVm">,
  nowMs: number,
): Result {
  if (state.vmEntry(command.name) !== undefined) {
    return errorResult(
      "CONFLICT",
      `VM ${command.name} already exists; pick another name or delete it first`,
    );
  }
  if (state.vmCount >= MAX_VMS) {
    return errorResult(
      "OVERLOADED",
      `${state.vmCount} VMs exist, the most allowed; delete some first`,
    );
  }
  const running = command.desired === "running";
  const created: Vm = {
    name: command.name,
    spec: command.spec,
    desired: command.desired,
    status: running ? "pending" : "stopped",
    nodeId: null,
    restarts: 0,
    lastError: "",
    pendingReason: running ? WAITING : "",
    createdAtMs: nowMs,
    updatedAtMs: nowMs,
  };
  const vm = running ? placeVm(state, created, nowMs) : created;
  state.putVm(vm, state.takeSeq());
  return vmResult(vm);
}

/** Sets the desired state of a VM that holds no node: stopped at once, or placed now. */
function changeUnplaced(state: OrchestratorState, vm: Vm, nowMs: number): Vm {
  if (vm.desired === "stopped") {
    return { ...vm, status: "stopped", pendingReason: "", updatedAtMs: nowMs };
  }
  return placeVm(
    state,
    { ...vm, status: "pending", pendingReason: WAITING, updatedAtMs: nowMs },
    nowMs,
  );
}

/**
 * Starts or stops a VM.
 * - Start: a VM on no node is placed (or queued); a failed VM (its agent gave up restarting it)
 *   is released and placed afresh with its restart count reset; a VM still on its node stays
 *   there and its agent starts it again.
 * - Stop: a VM on no node, or one observed stopped or failed, is released at once; otherwise its
 *   agent stops it and the resources are released when it reports `stopped`.
 * Asking for the state already desired changes nothing.
 */
export function setVmDesired(
  state: OrchestratorState,
  command: Command<"setVmDesired">,
  nowMs: number,
): Result {
  const vm = state.vmEntry(command.name)?.vm;
  if (vm === undefined) return noSuchVm(command.name);
  const desired = command.desired;
  // A VM that failed for good, or exited cleanly, is "done" on its node: starting it again
  // places it afresh, even if its desired state never changed.
  const done = vm.nodeId !== null && (vm.status === "failed" || vm.status === "stopped");
  if (vm.desired === desired && !(desired === "running" && done)) {
    return vmResult(vm);
  }
  if (vm.migration !== undefined && desired === "stopped") {
    // Stopping ends the migration: the target lets its copy go, the source stops the VM.
    state.putVm({ ...withoutMigration(vm), status: "running", desired, updatedAtMs: nowMs });
    placePending(state, nowMs);
    return vmResult(state.vmEntry(vm.name)?.vm as Vm);
  }
  const wanted: Vm = { ...vm, desired, updatedAtMs: nowMs };
  if (vm.nodeId === null) {
    const next = changeUnplaced(state, wanted, nowMs);
    state.putVm(next);
    return vmResult(next);
  }
  if (desired === "running" && done) {
    // Queue it with its creation seq and pass, so older pending work may use what it frees first.
    state.putVm({
      ...wanted,
      status: "pending",
      nodeId: null,
      restarts: 0,
      pendingReason: WAITING,
    });
    placePending(state, nowMs);
  } else if (desired === "stopped" && done) {
    state.putVm({ ...wanted, status: "stopped", nodeId: null });
    placePending(state, nowMs);
  } else {
    state.putVm(wanted);
  }
  return vmResult(state.vmEntry(vm.name)?.vm as Vm);
}

/** Deletes a VM that holds no node; one still placed must be stopped first (CONFLICT). */
export function deleteVm(
  state: OrchestratorState,
  command: Command<"deleteVm">,
  _nowMs: number,
): Result {
  const vm = state.vmEntry(command.name)?.vm;
  if (vm === undefined) return noSuchVm(command.name);
  if (vm.nodeId !== null) {
    return errorResult(
      "CONFLICT",
      `VM ${vm.name} is on node ${vm.nodeId} (status ${vm.status}); stop it first and delete it ` +
        "once it has stopped",
    );
  }
  state.removeVm(vm.name);
  return okResult({ type: "deleted" });
}

/**
 * The agent of the VM's node reports what it sees. A VM desired stopped that is observed stopped
 * or failed is released. A requested stop (`stopping`) that ends after the VM was asked to run
 * again leaves it `scheduled`, to be started again. A report from any other node is stale
 * (CONFLICT). A repeat of the current observation changes nothing. While the VM is `migrating`,
 * its source and its target report as `vm-migration.ts` says.
 */
export function vmObserved(
  state: OrchestratorState,
  command: Command<"vmObserved">,
  nowMs: number,
): Result {
  const vm = state.vmEntry(command.name)?.vm;
  if (vm === undefined) return noSuchVm(command.name);
  const migration = vm.migration;
  if (
    migration === undefined ||
    (command.nodeId !== vm.nodeId && command.nodeId !== migration.targetNodeId)
  ) {
    return observedOnNode(state, vm, command, nowMs);
  }
  const outcome = migrationObserved(state, vm, command, nowMs);
  if ("result" in outcome) return outcome.result;
  // The source's copy ended: the migration is over, and the target's hold is released.
  const result = observedOnNode(state, outcome.abandoned, command, nowMs);
  placePending(state, nowMs);
  return result.ok ? vmResult(state.vmEntry(vm.name)?.vm as Vm) : result;
}

function observedOnNode(
  state: OrchestratorState,
  vm: Vm,
  command: Command<"vmObserved">,
  nowMs: number,
): Result {
  if (vm.nodeId !== command.nodeId) {
    const where = vm.nodeId === null ? "on no node" : `on node ${vm.nodeId}`;
    return errorResult(
      "CONFLICT",
      `VM ${vm.name} is ${where}, not node ${command.nodeId}; that node's report is stale and ` +
        "its copy of the VM should be stopped",
    );
  }
  if (
    vm.status === command.status &&
    vm.restarts === command.restarts &&
    vm.lastError === command.error
  ) {
    return vmResult(vm);
  }
  // The agent reports `stopping` only for a stop the cluster asked for. If that stop ends after the
  // user asked for the VM running again, the VM did not end by itself, so it must not be left
  // `stopped` (which its agent reads as "exited, do not restart"): it goes back to `scheduled`,
  // for its agent to start again.
  const stopOvertaken =
    vm.desired === "running" && vm.status === "stopping" && command.status === "stopped";
  // The end of a requested stop while the VM is wanted running and no longer `stopping` is a
  // retried copy of a report that already applied (the agent did not learn its outcome, e.g.
  // across a leader change): the VM went back to `scheduled` and its agent starts it again.
  // Applying the copy would leave it `stopped`, which reads "exited by itself, do not restart".
  if (
    command.requestedStop === true &&
    command.status === "stopped" &&
    vm.desired === "running" &&
    vm.status !== "stopping"
  ) {
    return vmResult(vm);
  }
  const changed: Vm = {
    ...vm,
    status: stopOvertaken ? "scheduled" : command.status,
    restarts: command.restarts,
    lastError: command.error,
    updatedAtMs: nowMs,
  };
  // A QEMU launched there (booting or running) runs on that node's disk: the current one now.
  const launched = ["booting", "running", "unhealthy"].includes(command.status);
  const observed = launched ? withDiskOn(changed, command.nodeId) : changed;
  const release =
    vm.desired === "stopped" && (command.status === "stopped" || command.status === "failed");
  if (!release) {
    state.putVm(observed);
    return vmResult(observed);
  }
  const released: Vm = { ...observed, status: "stopped", nodeId: null };
  state.putVm(released);
  placePending(state, nowMs);
  return vmResult(released);
}
