/**
 * Read-only views of the orchestrator model, served outside the log (after a ReadIndex when the
 * caller wants them linearizable). Implemented by the orchestrator state machine.
 */
import type { NodeId } from "../../raft/types.js";
import type { OrchestratorSettings, Task, TaskStatus, Vm, Worker } from "./types.js";

/** Filters of {@link OrchestratorQueries.listTasks}. */
export interface TaskListOptions {
  readonly status?: TaskStatus;
  readonly nodeId?: NodeId;
  /** Return tasks whose id sorts after this one (paging). */
  readonly after?: string;
  /** At most this many (default 100, at most 1000). */
  readonly limit?: number;
}

/** What is assigned to one node: what its agent must make run (or stop). */
export interface NodeAssignments {
  /** Tasks with status assigned or running on this node. */
  readonly tasks: readonly Task[];
  /** VMs placed on this node (any desired state). */
  readonly vms: readonly Vm[];
}

/** Read-only queries over the orchestrator model. Every method throws nothing for valid input. */
export interface OrchestratorQueries {
  /** Every registered worker, by node id. */
  workers(): readonly Worker[];
  worker(nodeId: NodeId): Worker | undefined;
  task(id: string): Task | undefined;
  /** Tasks by id order, filtered. */
  tasks(options?: TaskListOptions): readonly Task[];
  vm(name: string): Vm | undefined;
  /** Every VM, by name. */
  vms(): readonly Vm[];
  /** What `nodeId`'s agent must run. */
  assignments(nodeId: NodeId): NodeAssignments;
  settings(): OrchestratorSettings;
}
