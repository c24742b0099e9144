import type { Message, NodeId } from "../raft/types.js";

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
  /** Registers the handler for messages addressed to this node, and for unreachable peers. */
  listen(handlers: {
    readonly onMessages: (messages: readonly Message[]) => void;
    readonly onUnreachable: (peer: NodeId) => void;
  }): void;
  /** Stops delivering to the handlers and releases resources. */
  close(): Promise<void>;
}
