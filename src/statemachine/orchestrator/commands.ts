/**
 * The orchestrator's commands: everything that changes the replicated model goes through one of
 * these, proposed through Raft and applied on every replica.
 *
 * Who proposes what:
 * - an agent (on its own node): `registerWorker` at start, `taskStarted` / `taskFinished` and
 *   `vmObserved` as it runs what is assigned to it;
 * - the API (for a user): `submitTask`, `cancelTask`, `createVm`, `setVmDesired`, `deleteVm`,
 *   `migrateVm`, `setWorkerDrain`, `setSettings`;
 * - the leader's liveness monitor: `markWorkerOffline`;
 * - the leader's drain deadline monitor: `drainDeadlineReached`;
 * - in one log entry for many: `submitTasks` (the API, a batch of submits) and `agentReports`
 *   (an agent, a batch of its reports).
 *
 * Reports carry the node and the attempt they are about, so a late report from an attempt that
 * was since declared lost, or from a node the work was moved away from, is refused (CONFLICT)
 * instead of overwriting newer state.
 */
import type { NodeId } from "../../raft/types.js";
import type {
  OrchestratorSettings,
  Resources,
  TaskResult,
  TaskSpec,
  TaskStatus,
  Task,
  Vm,
  VmDesiredState,
  VmSpec,
  VmStatus,
  Worker,
} from "./types.js";

/** A command of the orchestrator state machine. */
export type OrchestratorCommand =
  | {
      readonly type: "registerWorker";
      readonly nodeId: NodeId;
      readonly capacity: Resources;
      readonly features: readonly string[];
    }
  | {
      readonly type: "setWorkerDrain";
      readonly nodeId: NodeId;
      readonly draining: boolean;
      /**
       * Draining only: how long tasks already running may stay to finish, from the command's log
       * time; absent or 0 moves them at once. Absent in commands of older nodes.
       */
      readonly deadlineMs?: number;
    }
  | { readonly type: "markWorkerOffline"; readonly nodeId: NodeId }
  | { readonly type: "drainDeadlineReached"; readonly nodeId: NodeId }
  | { readonly type: "submitTask"; readonly id: string; readonly spec: TaskSpec }
  | { readonly type: "cancelTask"; readonly id: string }
  | {
      readonly type: "taskStarted";
      readonly id: string;
      readonly nodeId: NodeId;
      readonly attempt: number;
    }
  | {
      readonly type: "taskFinished";
      readonly id: string;
      readonly nodeId: NodeId;
      readonly attempt: number;
      readonly outcome: "succeeded" | "failed" | "timed_out" | "cancelled";
      readonly result: TaskResult;
    }
  | {
      readonly type: "createVm";
      readonly name: string;
      readonly spec: VmSpec;
      readonly desired: VmDesiredState;
    }
  | { readonly type: "setVmDesired"; readonly name: string; readonly desired: VmDesiredState }
  | { readonly type: "deleteVm"; readonly name: string }
  | {
      readonly type: "migrateVm";
      readonly name: string;
      /** The node to move it to; absent: the scheduler picks one other than its own. */
      readonly targetNodeId?: NodeId;
    }
  | {
      readonly type: "vmObserved";
      readonly name: string;
      readonly nodeId: NodeId;
      readonly status: VmStatus;
      readonly restarts: number;
      readonly error: string;
      /**
       * True when a `stopped` report ends a stop the cluster asked for (not the VM exiting by
       * itself): the model then knows a retried copy that arrives after the VM was started
       * again is stale. Absent in reports of older agents.
       */
      readonly requestedStop?: boolean;
      /**
       * From the target of a migration: where its QEMU waits for the stream (`tcp:HOST:PORT`).
       * Absent in every other report.
       */
      readonly incomingUri?: string;
      /**
       * From the target of a migration of a VM with a disk, with `incomingUri`: where its disk
       * takes the source's copy (`nbd:HOST:PORT`). Absent in every other report.
       */
      readonly incomingDiskUri?: string;
      /**
       * From the source of a migration: sending to this `incomingUri` failed (`error` says why),
       * so the migration rolls back now instead of when the target gives up waiting.
       */
      readonly sendFailedTo?: string;
    }
  | { readonly type: "setSettings"; readonly settings: OrchestratorSettings }
  | {
      readonly type: "submitTasks";
      /** Submitted in this order, each as `submitTask` would (ids unique within the batch). */
      readonly tasks: readonly { readonly id: string; readonly spec: TaskSpec }[];
    }
  | {
      readonly type: "agentReports";
      /** The reporting node: every report must name it. */
      readonly nodeId: NodeId;
      /** Applied in this order, each on its own: one refused does not undo the others. */
      readonly reports: readonly AgentReport[];
    };

/** A report an agent may batch in `agentReports`. */
export type AgentReport = Extract<
  OrchestratorCommand,
  { readonly type: "taskStarted" | "taskFinished" | "vmObserved" }
>;

/** The codes an item of a batch may be refused with. */
export const BATCH_ITEM_ERROR_CODES = ["NOT_FOUND", "CONFLICT", "OVERLOADED"] as const;

/**
 * The outcome of one item of a batch command (`submitTasks`, `agentReports`): the task or VM it
 * is about (`id`: task id or VM name) and its status after the item, or why the item was
 * refused (the item changed nothing; the other items are applied regardless).
 */
export type BatchItemOutcome =
  | {
      readonly ok: true;
      readonly id: string;
      readonly status: TaskStatus | VmStatus;
      readonly nodeId: NodeId | null;
      /** Why it is pending; absent when it is not. */
      readonly pendingReason?: string;
    }
  | {
      readonly ok: false;
      readonly id: string;
      readonly code: (typeof BATCH_ITEM_ERROR_CODES)[number];
      readonly message: string;
    };

/** What a drain (or its deadline) moved off its worker (0 and 0 if nothing was moved). */
export interface DrainMoved {
  readonly tasks: number;
  readonly vms: number;
}

/** What a successful orchestrator command returns. */
export type OrchestratorResult =
  | {
      readonly type: "worker";
      readonly worker: Worker;
      /**
       * Set by a drain (`setWorkerDrain` draining) and by `drainDeadlineReached`: how many tasks
       * and VMs it moved off.
       */
      readonly moved?: DrainMoved;
    }
  | { readonly type: "task"; readonly task: Task }
  | { readonly type: "vm"; readonly vm: Vm }
  | { readonly type: "deleted" }
  | { readonly type: "settings"; readonly settings: OrchestratorSettings }
  /** Of a batch command: one outcome per item, in the command's order. */
  | { readonly type: "batch"; readonly items: readonly BatchItemOutcome[] };
