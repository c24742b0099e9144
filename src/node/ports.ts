/**
 * The ports the runtime depends on. The real platform (src/platform) and the simulator
 * (src/sim) each provide one implementation; the runtime never touches the clock, timers or
 * the network directly, so it runs unchanged, and reproducibly, inside the simulator.
 */
import type { Message, NodeId } from "../raft/types.js";

/** A timer that can be cancelled. */
export interface TimerHandle {
  cancel(): void;
}

/** Time and timers. */
export interface Clock {
  /** Milliseconds since an arbitrary, fixed origin; never decreases. */
  now(): number;
  /** Calls `callback` once after `delayMs`. */
  setTimer(delayMs: number, callback: () => void): TimerHandle;
}

/** Delivers raft messages between nodes. Delivery is best effort: Raft tolerates loss. */
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
