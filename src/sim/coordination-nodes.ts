/**
 * The coordination layer of simulated nodes: on every running incarnation of a kv node, the
 * leader's lessor sweeping on the node's (virtual, pausable) clock and the real
 * {@link CoordinationService} over the node's runtime, wired by the same `createCoordination`
 * as a real node (leases, keep-alives, txns). A crash or shutdown stops the incarnation's lessor.
 *
 * Attach it through the cluster observer's `onNodeStarted` / `onNodeStopped`.
 */
import type { CoordinationService } from "../api/coord-service.js";
import { createCoordination, type CoordinationWiring } from "../api/coordination-wiring.js";
import type { NodeId } from "../raft/types.js";
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
  private readonly wirings = new Map<NodeId, CoordinationWiring>();

  constructor(private readonly options: CoordinationNodesOptions = {}) {}

  /** The service of running node `id` (its current incarnation), if any. */
  service(id: NodeId): CoordinationService | undefined {
    return this.wirings.get(id)?.service;
  }

  /** Wires a lessor and a service on a node's new incarnation, as a real node does. */
  onNodeStarted(slot: SimNodeSlot): void {
    const node = slot.node;
    const clock = slot.clock;
    if (node === undefined || clock === undefined) return;
    const wiring = createCoordination({
      node,
      machine: (slot.stateMachine as ObservedKvStateMachine).kv,
      clock,
      // Commands carry wall-clock-like times; the virtual clock starts at 0.
      commandTime: () => EPOCH_MS + clock.now(),
      // No onApplied: the blocking wait (waitChange) runs on real timers, so simulated clients
      // poll instead.
      ...(this.options.plantedKeepDeadlinesAcrossTerms === true
        ? { plantedKeepDeadlinesAcrossTerms: true }
        : {}),
    });
    wiring.start();
    this.wirings.set(slot.id, wiring);
  }

  /** Stops a node's lessor when its process is gone. Throws nothing. */
  onNodeStopped(id: NodeId): void {
    this.wirings.get(id)?.close();
    this.wirings.delete(id);
  }
}
