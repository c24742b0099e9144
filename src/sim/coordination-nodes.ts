/**
 * The coordination layer of simulated nodes: on every running incarnation of a kv node, the
 * leader's {@link Lessor} sweeping on the node's (virtual, pausable) clock and the real
 * {@link CoordinationService} over the node's runtime, wired as `createCoordination` wires a real
 * node (leases, keep-alives, txns). A crash or shutdown stops the incarnation's lessor.
 *
 * Attach it through the cluster observer's `onNodeStarted` / `onNodeStopped`.
 */
import { CoordinationService } from "../api/coord-service.js";
import { Lessor } from "../node/lessor.js";
import { NONE, Role, type NodeId } from "../raft/types.js";
import { commandErrorToException } from "../statemachine/command-result.js";
import { encodeKvCommand } from "../statemachine/kv/command-codec.js";
import type { KvCommand, KvResult } from "../statemachine/kv/types.js";
import { encodeCommandEnvelope, type ClientSession } from "../statemachine/session/envelope.js";
import type { SimNodeSlot } from "./cluster.js";
import type { ObservedKvStateMachine } from "./state-machine.js";
import { EPOCH_MS } from "./workload.js";

/** Options of {@link CoordinationNodes}. */
export interface CoordinationNodesOptions {
  /**
   * PLANTED BUG: every lessor keeps lease deadlines across leadership changes, i.e. expires
   * leases on the clock of a leadership it lost (see `Lessor`).
   */
  readonly plantedKeepDeadlinesAcrossTerms?: boolean;
}

/** The coordination service and lessor of each running node. */
export class CoordinationNodes {
  private readonly services = new Map<NodeId, CoordinationService>();
  private readonly lessors = new Map<NodeId, Lessor>();

  constructor(private readonly options: CoordinationNodesOptions = {}) {}

  /** The service of running node `id` (its current incarnation), if any. */
  service(id: NodeId): CoordinationService | undefined {
    return this.services.get(id);
  }

  /** Wires a lessor and a service on a node's new incarnation. Throws nothing. */
  onNodeStarted(slot: SimNodeSlot): void {
    const node = slot.node;
    const clock = slot.clock;
    if (node === undefined || clock === undefined) return;
    const machine = (slot.stateMachine as ObservedKvStateMachine).kv;
    const leaderTerm = (): number | undefined => {
      const status = node.status();
      return status.role === Role.Leader && !status.stopped ? status.term : undefined;
    };
    const propose = async (command: KvCommand, session?: ClientSession): Promise<KvResult> => {
      const envelope = encodeCommandEnvelope({
        proposedAtMs: EPOCH_MS + clock.now(),
        ...(session === undefined ? {} : { session }),
        payload: encodeKvCommand(command),
      });
      const result = await node.propose(envelope);
      if (!result.ok) throw commandErrorToException(result.error);
      return result.value as KvResult;
    };
    const lessor = new Lessor({
      port: {
        leaderTerm,
        forEachLease: (visit) => machine.forEachLease(visit),
        leaseTtlMs: (id) => machine.lease(id)?.ttlMs,
        leaseCount: () => machine.leaseCount,
        proposeRevoke: (ids) => propose({ op: "leaseRevoke", ids }),
      },
      clock,
      ...(this.options.plantedKeepDeadlinesAcrossTerms === true
        ? { plantedKeepDeadlinesAcrossTerms: true }
        : {}),
    });
    lessor.start();
    this.lessors.set(slot.id, lessor);
    this.services.set(
      slot.id,
      new CoordinationService({
        node: {
          propose: (command, write) => propose(command, write.session),
          readBarrier: async () => {
            await node.read(() => undefined);
          },
          leaderTerm,
          leader: () => (node.leader === NONE ? undefined : node.leader),
          store: machine,
          // The blocking wait (waitChange) runs on real timers: simulated clients poll instead.
          onApplied: () => () => undefined,
          lessor,
          now: () => clock.now(),
        },
      }),
    );
  }

  /** Stops a node's lessor when its process is gone. Throws nothing. */
  onNodeStopped(id: NodeId): void {
    this.lessors.get(id)?.stop();
    this.lessors.delete(id);
    this.services.delete(id);
  }
}
