/**
 * The coordination service of a real node: the leader's {@link Lessor} sweeping on the system
 * clock, and the {@link CoordinationService} that the API's lease, txn and wait routes call.
 */
import { CoordinationService } from "../../api/coord-service.js";
import type { MemberDirectory } from "../../api/member-directory.js";
import { operationOptions } from "../../api/raft-service.js";
import type { Clock } from "../../common/clock.js";
import { isBlixardError } from "../../common/errors.js";
import { Lessor } from "../../node/lessor.js";
import type { RaftNode } from "../../node/raft-node.js";
import { NONE, Role } from "../../raft/types.js";
import type { ClusterStateMachine } from "../../statemachine/cluster/cluster-state-machine.js";
import { commandErrorToException, type CommandResult } from "../../statemachine/command-result.js";
import { encodeKvCommand } from "../../statemachine/kv/command-codec.js";
import type { KvResult } from "../../statemachine/kv/types.js";
import { encodeCommandEnvelope } from "../../statemachine/session/envelope.js";
import type { JsonLogger } from "../log.js";
import type { ApplyNotifier } from "./apply-notifier.js";

/** What {@link createCoordination} wires together. */
export interface CoordinationWiringOptions {
  readonly node: RaftNode<CommandResult<unknown>>;
  readonly machine: ClusterStateMachine;
  readonly applied: ApplyNotifier<CommandResult<unknown>>;
  readonly clock: Clock;
  readonly directory: MemberDirectory;
  readonly log: JsonLogger;
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
  const { node, machine, clock } = options;
  const log = options.log.child({ component: "lessor" });
  const propose = async (
    command: Parameters<typeof encodeKvCommand>[0],
    write: {
      session?: Parameters<typeof encodeCommandEnvelope>[0]["session"];
      signal?: AbortSignal;
      timeoutMs?: number;
    },
  ): Promise<KvResult> => {
    const envelope = encodeCommandEnvelope({
      proposedAtMs: Math.max(0, Math.floor(clock.now())),
      ...(write.session === undefined ? {} : { session: write.session }),
      payload: encodeKvCommand(command),
    });
    const result = await node.propose(envelope, operationOptions(write));
    if (!result.ok) throw commandErrorToException(result.error);
    return result.value as KvResult;
  };
  const leaderTerm = (): number | undefined => {
    const status = node.status();
    return status.role === Role.Leader && !status.stopped ? status.term : undefined;
  };
  const lessor = new Lessor({
    port: {
      leaderTerm,
      forEachLease: (visit) => machine.forEachLease(visit),
      leaseTtlMs: (id) => machine.lease(id)?.ttlMs,
      leaseCount: () => machine.leaseCount,
      proposeRevoke: async (ids) => {
        const result = await propose({ op: "leaseRevoke", ids }, {});
        log.info("leases expired", { ids: ids.length, result: result.op });
      },
    },
    clock,
    onRevokeFailed: (error) =>
      log.warn("proposing lease expiry failed; retrying", {
        code: isBlixardError(error) ? error.code : "INTERNAL",
        error: error instanceof Error ? error.message : String(error),
      }),
  });
  const service = new CoordinationService({
    node: {
      propose: (command, write) => propose(command, write),
      readBarrier: async (call) => {
        await node.read(() => undefined, operationOptions(call));
      },
      leaderTerm,
      leader: () => (node.leader === NONE ? undefined : node.leader),
      store: machine,
      onApplied: (listener) => options.applied.subscribe(listener),
      lessor,
      now: () => clock.now(),
    },
    directory: options.directory,
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
