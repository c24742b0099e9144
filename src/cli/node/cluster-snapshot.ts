/**
 * Backup on a running node: the {@link OperatorService} over the runtime. A snapshot is taken
 * inside a linearizable read (ReadIndex), so it holds every write acknowledged before the
 * request, at the applied index the state machine is at when the read runs. The bytes are the
 * state machine's own snapshot encoding (the one raft snapshots use), so a restore feeds them to
 * `ClusterStateMachine.restore` unchanged.
 */
import type { ClusterSnapshot, OperatorService } from "../../api/operator-service.js";
import type { CallOptions, MemberView } from "../../api/service.js";
import type { OperationOptions } from "../../node/operation.js";
import type { StateMachine } from "../../statemachine/state-machine.js";
import type { LogStore } from "../../storage/log-store.js";

/** What a snapshot needs of the runtime (a `RaftNode`). */
export interface SnapshotNode {
  readonly id: number;
  status(): { readonly applied: number; readonly term: number };
  read<T>(query: () => T, options?: OperationOptions): Promise<T>;
}

/** What {@link clusterSnapshotService} reads. */
export interface ClusterSnapshotSource {
  readonly clusterId: string;
  readonly node: SnapshotNode;
  readonly machine: StateMachine<unknown>;
  readonly logStore: LogStore;
  /** The configuration's members with their addresses. */
  readonly members: () => MemberView[];
}

/** The operator service of a running node. Throws nothing. */
export function clusterSnapshotService(source: ClusterSnapshotSource): OperatorService {
  return {
    snapshot: async (options: CallOptions = {}): Promise<ClusterSnapshot> => {
      const taken = await source.node.read(() => {
        // Inside the read: nothing is applied between reading the index and encoding the state.
        const index = source.node.status().applied;
        return { index, term: termAt(source, index), data: source.machine.snapshot() };
      }, options);
      return {
        clusterId: source.clusterId,
        ...taken,
        takenBy: source.node.id,
        members: source.members(),
      };
    },
  };
}

/** The term of the applied entry at `index` (in memory: it is at or after the newest snapshot). */
function termAt(source: ClusterSnapshotSource, index: number): number {
  try {
    return source.logStore.term(index);
  } catch {
    // Compacted away meanwhile (it cannot be, but a backup must not fail for it): the current
    // term is an upper bound, and a restored cluster only needs a term no entry exceeds.
    return source.node.status().term;
  }
}
