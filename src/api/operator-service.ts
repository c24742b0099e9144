/**
 * The port for operator routes: what a backup asks of a node. The composition implements it over
 * the runtime (a ReadIndex barrier, then the state machine's own snapshot encoder).
 */
import type { NodeId } from "../raft/types.js";
import type { CallOptions, MemberView } from "./service.js";

/** A consistent copy of the replicated state. */
export interface ClusterSnapshot {
  readonly clusterId: string;
  /** The log index the state is at: every entry up to it is in, none after. */
  readonly index: number;
  /** The term of the entry at {@link index}. */
  readonly term: number;
  readonly takenBy: NodeId;
  /** The configuration's members when the snapshot was taken. */
  readonly members: readonly MemberView[];
  /** The state machine's snapshot bytes (`ClusterStateMachine.snapshot`). */
  readonly data: Uint8Array;
}

/** What the operator routes ask of a node. */
export interface OperatorService {
  /**
   * Takes a snapshot of the whole replicated state after a linearizable read barrier: it holds
   * every write acknowledged before the call.
   * @throws NotLeaderError when no leader is known; TimeoutError past the deadline.
   */
  snapshot(options?: CallOptions): Promise<ClusterSnapshot>;
}
