/**
 * What the agent needs from the node it runs on. The real node wires these to the runtime, the
 * API and the drivers; the simulator wires them to simulated ones.
 */
import type { DiskVerdict } from "./disk-verdict.js";
import type { Clock } from "../../common/clock.js";
import type { Logger } from "../../common/logger.js";
import type { NodeId } from "../../raft/types.js";
import type { OrchestratorCommand } from "../../statemachine/orchestrator/commands.js";
import type { OrchestratorQueries } from "../../statemachine/orchestrator/queries.js";
import type { Resources, TaskSpec, VmDriver } from "../../statemachine/orchestrator/types.js";
import type { TaskRun } from "../drivers/task-runner.js";
import type { VmDriverPort } from "../drivers/vm-driver.js";

/** Proposes an orchestrator command to the cluster (through the leader, wherever it is). */
export interface Proposer {
  /**
   * Resolves once the command is applied (agents and the liveness monitor need no result: they
   * act on the applied model); rejects with the model's typed error (e.g. CONFLICT), or with a
   * transient one (UNAVAILABLE, NOT_LEADER, TIMEOUT, OVERLOADED). For an `agentReports` batch
   * (the agent's `Reporter` sends them) it resolves with an object whose `items` holds one
   * outcome per report, in order (the model's `batch` result, or the report route's answer),
   * and rejects INVALID_ARGUMENT when the cluster does not take batches (yet).
   */
  propose(command: OrchestratorCommand): Promise<unknown>;
}

/** Runs one attempt of a task; never rejects (see `drivers/task-runner.ts`). */
export type TaskRunnerPort = (
  spec: TaskSpec,
  options: {
    readonly signal: AbortSignal;
    readonly onStarted: () => void;
    /** The task and attempt (to name the attempt's directory and cgroup). */
    readonly taskId: string;
    readonly attempt: number;
  },
) => Promise<TaskRun>;

/**
 * What the agent reads of the model: its node's worker record and assignments, and whether a VM
 * still exists (to discard the disk of a deleted one). A server's agent reads its node's applied
 * model; an agent-only worker reads the last answer of its assignment poll (`remote/`), which
 * holds only the VMs placed on its node: `partialVmView` says so (a VM it does not see may be
 * stopped or placed elsewhere rather than deleted).
 */
export type AgentQueries = Pick<OrchestratorQueries, "worker" | "assignments" | "vm"> & {
  readonly partialVmView?: boolean;
  /**
   * With a partial view: what a server's model says of this node's stored disks of the VMs
   * `names` (at most `MAX_DISK_LOOKUP_NAMES`), one verdict per name it answered for. Rejects when
   * no server answers (the disks are then kept).
   */
  readonly diskVerdicts?: (names: readonly string[]) => Promise<ReadonlyMap<string, DiskVerdict>>;
};

/** Everything an {@link Agent} is built from. */
export interface AgentOptions {
  readonly nodeId: NodeId;
  readonly clock: Clock;
  /** This node's applied orchestrator state (what it has applied so far). */
  readonly queries: AgentQueries;
  readonly proposer: Proposer;
  readonly runTask: TaskRunnerPort;
  readonly vmDrivers: ReadonlyMap<VmDriver, VmDriverPort>;
  /** What this node offers. */
  readonly capacity: Resources;
  readonly features: readonly string[];
  readonly log: Logger;
  /** Reconcile at least this often even without a change (default 1000 ms). */
  readonly resyncMs?: number;
}
