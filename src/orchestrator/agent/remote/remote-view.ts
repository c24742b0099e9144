/**
 * An agent-only worker's view of the model: the last assignment answer it accepted, read by the
 * same reconcile loop a server's agent runs over its applied model (the {@link AgentQueries}).
 *
 * Never backwards: every answer carries the applied index it stands at, and an answer older than
 * the one the view holds is refused. An agent may switch to a server that is behind the last
 * one; acting on its older state would restart work the agent already saw moved or finished.
 */
import type { NodeId } from "../../../raft/types.js";
import type { NodeAssignments } from "../../../statemachine/orchestrator/queries.js";
import type { Vm, Worker } from "../../../statemachine/orchestrator/types.js";
import type { DiskVerdict } from "../disk-verdict.js";
import type { AgentQueries } from "../ports.js";
import type { AssignmentsAnswer } from "./http-link.js";

const EMPTY: NodeAssignments = Object.freeze({ tasks: [], vms: [] });

/** See the module comment. Throws nothing. */
export class RemoteAssignmentsView implements AgentQueries {
  readonly #nodeId: NodeId;
  #index = 0;
  #worker: Worker | undefined;
  #assignments: NodeAssignments = EMPTY;
  #vms = new Map<string, Vm>();
  #answered = false;

  /**
   * @param nodeId the node whose assignments the view holds (other ids read as empty).
   * @param lookupDisks asks a server about this node's stored disks of VMs the view does not
   *   hold (see `AgentQueries.diskVerdicts`); absent, such disks are always kept.
   */
  constructor(
    nodeId: NodeId,
    lookupDisks?: (names: readonly string[]) => Promise<ReadonlyMap<string, DiskVerdict>>,
  ) {
    this.#nodeId = nodeId;
    if (lookupDisks !== undefined) this.diskVerdicts = lookupDisks;
  }

  /** See `AgentQueries`. */
  readonly diskVerdicts?: (names: readonly string[]) => Promise<ReadonlyMap<string, DiskVerdict>>;

  /** The index of the answer held (0 before the first). */
  get index(): number {
    return this.#index;
  }

  /** True once an answer was accepted. */
  get answered(): boolean {
    return this.#answered;
  }

  /**
   * Takes `answer` unless it stands at an older index than the one held. Returns whether it was
   * taken (an answer at the same index is taken: it is the same state).
   */
  accept(answer: AssignmentsAnswer): boolean {
    if (answer.index < this.#index) return false;
    this.#index = answer.index;
    this.#worker = answer.worker ?? undefined;
    this.#assignments = { tasks: answer.tasks, vms: answer.vms };
    this.#vms = new Map(answer.vms.map((vm) => [vm.name, vm]));
    this.#answered = true;
    return true;
  }

  worker(nodeId: NodeId): Worker | undefined {
    return nodeId === this.#nodeId ? this.#worker : undefined;
  }

  assignments(nodeId: NodeId): NodeAssignments {
    return nodeId === this.#nodeId ? this.#assignments : EMPTY;
  }

  /** See `AgentQueries`: the view knows only the VMs placed on this node. */
  readonly partialVmView = true;

  /**
   * A VM placed on this node. Unlike a server's model, the view knows no VM placed elsewhere or
   * stopped: such a VM reads as gone, and the agent asks a server before it discards its disk
   * (see `Agent`).
   */
  vm(name: string): Vm | undefined {
    return this.#vms.get(name);
  }
}
