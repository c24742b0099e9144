/**
 * A continuous check of the agents (`orchestrator-zombie-process`): a process that its own node's
 * applied model no longer gives to that node (a task attempt that was moved away, cancelled or
 * ended; a VM moved away, stopped or deleted; a migration's incoming copy once the migration
 * failed) must be gone within {@link ZOMBIE_GRACE_MS} of
 * virtual time while the node runs. The agent is told of every apply (and reconciles at least
 * once a second anyway), a simulated kill takes a few ms and a VM's stop at most 800 ms, so a
 * process that outlives the grace is one its agent lost track of. Time only counts while the node runs: a paused node's agent
 * cannot act, and a crashed node's processes are gone.
 *
 * An agent-only worker is judged by its own view (the last assignments answer it took); while it
 * is cut off that view goes stale, and `cut-off-watch.ts` takes over.
 *
 * This complements the end-of-run comparison, which sees only what still runs once everything
 * settled: a task that an agent forgot to kill usually ends by itself before then.
 */
import type { NodeId } from "../../raft/types.js";
import type { OrchestratorQueries } from "../../statemachine/orchestrator/index.js";
import type { SimCluster } from "../cluster.js";
import type { Violation } from "../checkers/violation.js";
import type { OrchestratorHosts } from "./hosts.js";
import type { SimAgentFleet } from "./agent-fleet.js";
import type { SimProcess, SimProcessTable } from "./processes.js";

/** How long a process may outlive its assignment on a running node. */
export const ZOMBIE_GRACE_MS = 1500;

/** What the watch reads of a node's own model (a server's replica, or an agent's view). */
type OwnModel = Pick<OrchestratorQueries, "task" | "vm">;

/** True if `model` (a node's own) gives `p` to its node. */
function wanted(model: OwnModel, p: SimProcess): boolean {
  if (p.kind === "task") {
    const task = model.task(p.name);
    return (
      task !== undefined &&
      (task.status === "assigned" || task.status === "running") &&
      task.nodeId === p.nodeId &&
      task.attempts === p.attempt
    );
  }
  const vm = model.vm(p.name);
  if (vm === undefined || vm.desired !== "running") return false;
  // A migration's target runs its incoming copy beside the source's.
  return vm.nodeId === p.nodeId || vm.migration?.targetNodeId === p.nodeId;
}

/** Watches the processes of a run for ones their agents lost track of. */
export class ZombieWatch {
  readonly violations: Violation[] = [];
  /** Each unwanted process, and since when (virtual ms, counted while its node runs). */
  readonly #unwantedSince = new Map<SimProcess, number>();

  constructor(
    private readonly cluster: SimCluster,
    private readonly hosts: OrchestratorHosts,
    private readonly processes: SimProcessTable,
    /** The agent-only workers, judged by their own views (absent: none in the run). */
    private readonly fleet?: SimAgentFleet,
  ) {}

  /** Looks at every process now (call periodically). */
  observe(nowMs: number): void {
    const running = new Set(this.processes.running());
    for (const p of this.#unwantedSince.keys()) if (!running.has(p)) this.#unwantedSince.delete(p);
    for (const p of running) {
      const model = this.#modelOf(p.nodeId);
      if (model === undefined || wanted(model, p)) {
        this.#unwantedSince.delete(p);
        continue;
      }
      const since = this.#unwantedSince.get(p);
      if (since === undefined) {
        this.#unwantedSince.set(p, nowMs);
      } else if (nowMs - since > ZOMBIE_GRACE_MS && this.violations.length === 0) {
        const what = p.kind === "task" ? `task ${p.name} attempt ${p.attempt}` : `VM ${p.name}`;
        this.violations.push({
          property: "orchestrator-zombie-process",
          message:
            `${what} still runs on node ${p.nodeId} ${nowMs - since} ms after that node's own ` +
            "model stopped giving it to the node: its agent lost track of it",
          atMs: nowMs,
        });
      }
    }
  }

  /** The model of node `id` while it runs (not paused, crashed or starting), else undefined. */
  #modelOf(id: NodeId): OwnModel | undefined {
    const agent = this.fleet?.host(id);
    if (agent !== undefined) return agent.model;
    if (this.cluster.slots.get(id)?.state !== "running") return undefined;
    return this.hosts.host(id)?.model;
  }
}
