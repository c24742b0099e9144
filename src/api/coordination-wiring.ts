/**
 * The coordination layer of a node: the leader's {@link Lessor} sweeping on the node's clock and
 * the {@link CoordinationService} that the API's lease, txn and wait routes call. A real node
 * (`src/cli/node/compose.ts`) and every simulated node (`src/sim/cluster.ts`) are wired by this
 * one function, called by `composeNode`, so the simulator tests what ships.
 */
import { isBlixardError } from "../common/errors.js";
import { SILENT_LOGGER, type Logger } from "../common/logger.js";
import type { Clock } from "../common/clock.js";
import type { CommandPort } from "../node/command-port.js";
import { Lessor } from "../node/lessor.js";
import type { RaftNode } from "../node/raft-node.js";
import { Role } from "../raft/types.js";
import { LEASE_COMMANDS } from "../statemachine/cluster/command-namespaces.js";
import { CoordinationService, type CoordNodePort } from "./coord-service.js";

/** What the wiring needs of the node's runtime: the core's live view (is this node leading?). */
export type CoordinationRuntime = Pick<RaftNode, "inspect">;

/** The applied store: the service's reads plus the lessor's view of the leases. */
export type CoordinationStore = CoordNodePort["store"] & {
  forEachLease(visit: (id: number, ttlMs: number) => void): void;
  readonly leaseCount: number;
};

/** What {@link createCoordination} wires together. */
export interface CoordinationWiringOptions {
  readonly node: CoordinationRuntime;
  readonly machine: CoordinationStore;
  readonly clock: Clock;
  /** Subscribes to applies (blocking waits wake on them). Default: none (waits time out). */
  readonly onApplied?: (listener: () => void) => () => void;
  /** The node's command port: lease and txn commands, the lessor's expiries, read barriers. */
  readonly commands: CommandPort;
  readonly log?: Logger;
  /** PLANTED BUG (simulator only): see `LessorOptions.plantedKeepDeadlinesAcrossTerms`. */
  readonly plantedKeepDeadlinesAcrossTerms?: boolean;
}

/** The wired service, and the lessor's start and stop. */
export interface CoordinationWiring {
  readonly service: CoordinationService;
  readonly lessor: Lessor;
  /** Starts the lessor's sweeps (call once the node runs). */
  start(): void;
  /** Stops the sweeps and ends open waits. Throws nothing. */
  close(): void;
}

/** Wires the lessor and the service on a running node. Throws nothing. */
export function createCoordination(options: CoordinationWiringOptions): CoordinationWiring {
  const { node, machine, clock, commands } = options;
  const log = options.log ?? SILENT_LOGGER;
  // The live view, not status(): the lessor asks on every sweep, and status() copies every
  // peer's progress.
  const leaderTerm = (): number | undefined => {
    const core = node.inspect();
    return core !== undefined && core.role === Role.Leader ? core.term : undefined;
  };
  const lessor = new Lessor({
    port: {
      leaderTerm,
      forEachLease: (visit) => machine.forEachLease(visit),
      leaseTtlMs: (id) => machine.lease(id)?.ttlMs,
      leaseCount: () => machine.leaseCount,
      proposeRevoke: async (ids) => {
        // Expiry is this leader's decision: if it lost leadership, the next one decides afresh.
        const result = await commands.propose(
          LEASE_COMMANDS,
          { op: "leaseRevoke", ids },
          { leaderOnly: true },
        );
        log.info("leases expired", { ids: ids.length, result: result.op });
      },
    },
    clock,
    onRevokeFailed: (error) =>
      log.warn("proposing lease expiry failed; retrying", {
        code: isBlixardError(error) ? error.code : "INTERNAL",
        error: error instanceof Error ? error.message : String(error),
      }),
    ...(options.plantedKeepDeadlinesAcrossTerms === true
      ? { plantedKeepDeadlinesAcrossTerms: true }
      : {}),
  });
  const service = new CoordinationService({
    node: {
      leaderTerm,
      store: machine,
      onApplied: options.onApplied ?? (() => () => undefined),
      lessor,
      now: () => clock.now(),
    },
    commands,
  });
  return {
    service,
    lessor,
    start: () => lessor.start(),
    close: () => {
      lessor.stop();
      service.close();
    },
  };
}
