/**
 * How a simulated node's agent and liveness monitor propose: as the HTTP layer does for a real
 * node. A command is proposed on the node itself; on NOT_LEADER with a known leader it is
 * forwarded to that leader once (never further), and with no leader known the caller gets
 * UNAVAILABLE (the agent's reporter retries).
 *
 * **Forwarding goes over the simulated network, not directly.** The hop is a request and an
 * answer between the two machines, each leg a few ms, lost when the network cuts or clogs that
 * direction of the link (the caller then times out, as an HTTP client would), refused by a
 * crashed leader, held by a paused one, and never delivered to an incarnation that crashed
 * meanwhile. So an agent cut off from the leader cannot report, exactly as its raft traffic
 * cannot flow; a direct call would let partitioned agents report through walls. Whether a leg gets
 * through is the network's own answer (`SimNetwork.linkCut`).
 */
import { NotLeaderError, TimeoutError, UnavailableError } from "../../common/errors.js";
import type { Random } from "../../common/random.js";
import type { Proposer } from "../../orchestrator/agent/ports.js";
import type { NodeId } from "../../raft/types.js";
import { commandErrorToException } from "../../statemachine/command-result.js";
import { encodeOrchestratorCommand } from "../../statemachine/orchestrator/command-codec.js";
import type {
  OrchestratorCommand,
  OrchestratorResult,
} from "../../statemachine/orchestrator/commands.js";
import { encodeCommandEnvelope } from "../../statemachine/session/envelope.js";
import type { SimCluster } from "../cluster.js";
import type { SimNetwork } from "../network.js";
import { between } from "../rng.js";
import type { Scheduler } from "../scheduler.js";
import type { SimResult } from "../state-machine.js";
import { EPOCH_MS } from "../workload.js";

/** One-way time of a forwarded request or its answer, in ms. */
const HOP_MS = { min: 1, max: 10 } as const;

/** What a proposer needs. */
export interface SimProposerOptions {
  readonly nodeId: NodeId;
  /** The incarnation this proposer belongs to: a later one, or a crash, silences it. */
  readonly incarnation: number;
  readonly scheduler: Scheduler;
  readonly cluster: SimCluster;
  readonly network: SimNetwork;
  readonly random: Random;
  /** How long the caller waits for a forwarded proposal's answer. */
  readonly forwardTimeoutMs: number;
  /** With false, NOT_LEADER is returned as is (the leader's liveness monitor proposes locally). */
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
    const data = encodeCommandEnvelope({
      proposedAtMs: EPOCH_MS + scheduler.now(),
      payload: encodeOrchestratorCommand(command),
    });
    const slot = cluster.slot(nodeId);
    const node = slot.node;
    if (slot.incarnation !== this.options.incarnation || node === undefined) {
      throw new UnavailableError(`node ${nodeId} is not running`);
    }
    try {
      return unwrap(await node.propose(data));
    } catch (error) {
      if (!(error instanceof NotLeaderError) || !this.options.forward) throw error;
      const leader = error.leaderHint?.id;
      if (leader === undefined || leader === nodeId) {
        throw new UnavailableError("no leader is known yet; retry shortly");
      }
      return unwrap(await this.#forward(leader, data));
    }
  }

  /** Sends `data` to `leader` to propose there, and brings the answer back. */
  #forward(leader: NodeId, data: Uint8Array): Promise<SimResult> {
    const { cluster, network, scheduler, random, nodeId, incarnation } = this.options;
    const own = cluster.slot(nodeId);
    const ownClock = own.clock;
    return new Promise<SimResult>((resolve, reject) => {
      if (ownClock === undefined) return;
      let settled = false;
      const timer = ownClock.setTimer(this.options.forwardTimeoutMs, () =>
        settle(() =>
          reject(new TimeoutError(`node ${leader} did not answer a forwarded proposal in time`)),
        ),
      );
      function settle(fn: () => void): void {
        if (settled) return;
        settled = true;
        timer.cancel();
        fn();
      }
      /** The answer's way back; lost if the link cuts or this incarnation is gone. */
      const answer = (deliver: () => void): void => {
        if (network.linkCut(leader, nodeId)) return;
        scheduler.schedule(between(random, HOP_MS.min, HOP_MS.max), () => {
          if (network.linkCut(leader, nodeId) || own.incarnation !== incarnation) return;
          own.clock?.fire(() => settle(deliver));
        });
      };
      if (network.linkCut(nodeId, leader)) return;
      scheduler.schedule(between(random, HOP_MS.min, HOP_MS.max), () => {
        if (network.linkCut(nodeId, leader)) return;
        const target = cluster.slots.get(leader);
        const targetClock = target?.clock;
        if (target === undefined || target.node === undefined || targetClock === undefined) {
          answer(() => reject(new UnavailableError(`node ${leader} refused the connection`)));
          return;
        }
        const targetIncarnation = target.incarnation;
        targetClock.fire(() => {
          const node = target.node;
          if (node === undefined || target.incarnation !== targetIncarnation) return;
          const alive = (): boolean =>
            target.incarnation === targetIncarnation && target.clock?.isDead === false;
          node.propose(data).then(
            (result) => {
              if (alive()) answer(() => resolve(result));
            },
            (error: unknown) => {
              // The leader answers as the HTTP layer would: no second hop.
              if (alive()) answer(() => reject(error as Error));
            },
          );
        });
      });
    });
  }
}
