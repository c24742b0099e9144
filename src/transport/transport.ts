import type { Message, NodeId } from "../raft/types.js";

/** How sending one snapshot to a peer ended (etcd's `SnapshotStatus`). */
export type SnapshotDelivery = "finish" | "failure";

/** What a transport calls back into: the runtime's side of {@link Transport.listen}. */
export interface TransportHandlers {
  /** Messages addressed to this node, in the order they arrived on one link. */
  readonly onMessages: (messages: readonly Message[]) => void;
  /** A peer could not be reached (a message to it was dropped). */
  readonly onUnreachable: (peer: NodeId) => void;
  /**
   * How a snapshot sent to `peer` ended: `finish` once all of it was handed to the link in
   * order (anything sent later reaches the peer after it), `failure` if it was dropped or the
   * link broke before then. Called exactly once for every `Snap` message passed to
   * {@link Transport.send}, never synchronously inside `send`. Until it is called, the leader
   * keeps the follower's progress paused (etcd's `ReportSnapshot`), so this is what stops one
   * follower from being sent the same snapshot twice.
   */
  readonly onSnapshotStatus: (peer: NodeId, outcome: SnapshotDelivery) => void;
}

/**
 * Delivers raft messages between nodes: the port the runtime sends through. Delivery is best
 * effort (Raft tolerates loss, duplication and reordering); the real implementation and the
 * simulator's both implement it.
 */
export interface Transport {
  /**
   * Queues messages for their destinations (`m.to`). Never throws for an unreachable peer:
   * it calls the unreachable handler instead, so the leader can go back to probing.
   */
  send(messages: readonly Message[]): void;
  /** Registers the handlers for messages addressed to this node, unreachable peers and snapshot outcomes. */
  listen(handlers: TransportHandlers): void;
  /** Stops delivering to the handlers and releases resources. */
  close(): Promise<void>;
}
