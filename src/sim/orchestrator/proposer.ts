/**
 * How a simulated node's agent and liveness monitor propose: as the API does for a real node. A
 * command is proposed on the node itself; a follower's runtime forwards it to the leader over the
 * (simulated) peer network and answers it from its own apply, exactly as in a real node, so an
 * agent cut off from the leader cannot report, as its raft traffic cannot flow. With no leader
 * known the caller gets UNAVAILABLE (the agent's reporter retries). The liveness monitor's
 * proposals are the leader's own decisions: `forward: false` proposes them leader-only.
 */
import { NotLeaderError, UnavailableError } from "../../common/errors.js";
import type { Proposer } from "../../orchestrator/agent/ports.js";
import type { NodeId } from "../../raft/types.js";
import { commandErrorToException } from "../../statemachine/command-result.js";
import type {
  OrchestratorCommand,
  OrchestratorResult,
} from "../../statemachine/orchestrator/commands.js";
import type { SimCluster } from "../cluster.js";
import { orchestratorCommandEntry } from "../commands.js";
import type { Scheduler } from "../scheduler.js";
import type { SimResult } from "../state-machine.js";

/** What a proposer needs. */
export interface SimProposerOptions {
  readonly nodeId: NodeId;
  /** The incarnation this proposer belongs to: a later one, or a crash, silences it. */
  readonly incarnation: number;
  readonly scheduler: Scheduler;
  readonly cluster: SimCluster;
  /** With false, leader-only: NOT_LEADER is returned as is (the leader's liveness monitor). */
  readonly forward: boolean;
}

/** The result of an applied orchestrator command, or its typed error. */
function unwrap(result: SimResult): OrchestratorResult {
  if (!result.ok) throw commandErrorToException(result.error);
  return result.value as OrchestratorResult;
}

/** A {@link Proposer} for one incarnation of one simulated node. */
export class SimProposer implements Proposer {
  constructor(private readonly options: SimProposerOptions) {}

  /** @inheritdoc */
  async propose(command: OrchestratorCommand): Promise<OrchestratorResult> {
    const { cluster, nodeId, scheduler } = this.options;
    const data = orchestratorCommandEntry(command, { nowMs: scheduler.now() });
    const slot = cluster.slot(nodeId);
    const node = slot.node;
    if (slot.incarnation !== this.options.incarnation || node === undefined) {
      throw new UnavailableError(`node ${nodeId} is not running`);
    }
    try {
      return unwrap(await node.propose(data, { leaderOnly: !this.options.forward }));
    } catch (error) {
      if (!(error instanceof NotLeaderError) || !this.options.forward) throw error;
      throw new UnavailableError("no leader is known yet; retry shortly");
    }
  }
}
