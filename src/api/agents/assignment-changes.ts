/**
 * Which nodes' assignments an applied entry touched, and at which index each node's last changed:
 * what lets a server answer an agent's long poll at once when its assignments changed after the
 * index it last saw, and wake only the agents a batch of applies concerns.
 *
 * A node's assignments are its worker record, the tasks assigned or running there and the VMs
 * placed there. An applied entry names the tasks, VMs and workers it changed (the change feed's
 * events, as they stand after the entry); a task that moved from node A to node B touches both,
 * so the node each active task and placed VM was on is kept here (one map entry per active task
 * and placed VM) to name A. A migrating VM is also in its target's assignments: its target is
 * kept the same way. Work per entry is O(its events), never O(agents).
 */
import type { NodeId } from "../../raft/types.js";
import type { OrchestratorQueries } from "../../statemachine/orchestrator/queries.js";
import type { FeedEvent } from "../events/feed-event.js";

/** One applied entry's events (a change-feed record). */
export interface AppliedEvents {
  readonly index: number;
  readonly events: readonly FeedEvent[];
}

/** See the module comment. Throws nothing. */
export class AssignmentChanges {
  /** Index of the last change of each node's assignments seen since {@link reset}. */
  readonly #changedAt = new Map<NodeId, number>();
  /** The node each assigned or running task is on. */
  readonly #taskNode = new Map<string, NodeId>();
  /** The node each placed VM is on. */
  readonly #vmNode = new Map<string, NodeId>();
  /** The target of each migrating VM (its assignments list the VM too). */
  readonly #vmTarget = new Map<string, NodeId>();
  /** Everything at or below this index is unknown: treated as changed at it. */
  #baseIndex = 0;
  /** Reused per entry. */
  readonly #touched = new Set<NodeId>();

  /**
   * Starts over from the model as it stands at `index` (at start, and after a snapshot replaced
   * the state or the feed dropped records this did not read): every node counts as changed at
   * `index`. O(workers + active work); rare.
   */
  reset(index: number, queries: OrchestratorQueries): void {
    this.#changedAt.clear();
    this.#taskNode.clear();
    this.#vmNode.clear();
    this.#vmTarget.clear();
    this.#baseIndex = index;
    for (const worker of queries.workers()) {
      const { tasks, vms } = queries.assignments(worker.nodeId);
      for (const task of tasks) this.#taskNode.set(task.id, worker.nodeId);
      for (const vm of vms) {
        if (vm.migration?.targetNodeId === worker.nodeId)
          this.#vmTarget.set(vm.name, worker.nodeId);
        else this.#vmNode.set(vm.name, worker.nodeId);
      }
    }
  }

  /**
   * Takes one applied entry's events; returns the nodes whose assignments it touched (a set
   * reused by the next call: read it before calling again).
   */
  ingest(record: AppliedEvents): ReadonlySet<NodeId> {
    const touched = this.#touched;
    touched.clear();
    for (const event of record.events) {
      const source = event.source;
      switch (source.kind) {
        case "task": {
          const before = this.#taskNode.get(source.id);
          const task = source.task;
          const after =
            task !== undefined &&
            task.nodeId !== null &&
            (task.status === "assigned" || task.status === "running")
              ? task.nodeId
              : undefined;
          if (before !== undefined) touched.add(before);
          if (after === undefined) this.#taskNode.delete(source.id);
          else {
            touched.add(after);
            this.#taskNode.set(source.id, after);
          }
          break;
        }
        case "vm": {
          this.#move(this.#vmNode, source.name, source.vm?.nodeId ?? undefined);
          this.#move(this.#vmTarget, source.name, source.vm?.migration?.targetNodeId);
          break;
        }
        case "worker":
          touched.add(source.worker.nodeId);
          break;
        default:
          break;
      }
    }
    for (const nodeId of touched) this.#changedAt.set(nodeId, record.index);
    return touched;
  }

  /** Notes that `name` is now on `after` (or nowhere) in `index`; both ends are touched. */
  #move(index: Map<string, NodeId>, name: string, after: NodeId | undefined): void {
    const before = index.get(name);
    if (before !== undefined) this.#touched.add(before);
    if (after === undefined) index.delete(name);
    else {
      this.#touched.add(after);
      index.set(name, after);
    }
  }

  /** True if node `nodeId`'s assignments changed after index `after` (as far as this knows). */
  changedAfter(nodeId: NodeId, after: number): boolean {
    return (this.#changedAt.get(nodeId) ?? this.#baseIndex) > after;
  }
}
