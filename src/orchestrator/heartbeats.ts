/**
 * The leader's table of agent heartbeats: when each agent-only worker last said it is alive.
 *
 * An agent is not a Raft member, so Raft's own traffic says nothing about it: it sends
 * `POST /v1/agent/heartbeat` every few seconds, any server forwards it to the leader, and the
 * leader writes the time here, in memory. No heartbeat ever becomes a Raft entry: only a change
 * of a worker's status does (the liveness monitor's `markWorkerOffline`, the agent's
 * `registerWorker`). A new leader starts with an empty table and gives every worker full grace
 * (see `liveness.ts`), so losing the table with a leader loses nothing.
 *
 * Bounded: at most {@link MAX_HEARTBEAT_ENTRIES} node ids; past it the entries silent longest
 * are dropped (a dropped id that is still a worker is judged by the monitor's own memory of it,
 * which is no later than the dropped time, so dropping never makes a worker look more alive).
 */
import type { NodeId } from "../raft/types.js";
import type { LivenessView } from "./liveness.js";

/** Most node ids the table keeps (ten times the agents a leader is meant to serve). */
export const MAX_HEARTBEAT_ENTRIES = 100_000;

/** See the module comment. Throws nothing. */
export class HeartbeatTable {
  readonly #lastHeardMs = new Map<NodeId, number>();
  readonly #maxEntries: number;

  /** @param maxEntries the bound (default {@link MAX_HEARTBEAT_ENTRIES}). */
  constructor(maxEntries = MAX_HEARTBEAT_ENTRIES) {
    this.#maxEntries = maxEntries;
  }

  /** Records a heartbeat of `nodeId` at `nowMs` (the leader's clock). O(1) but for a rare prune. */
  record(nodeId: NodeId, nowMs: number): void {
    // Delete then set: the Map's order becomes the order of last heartbeats, oldest first.
    this.#lastHeardMs.delete(nodeId);
    this.#lastHeardMs.set(nodeId, nowMs);
    if (this.#lastHeardMs.size > this.#maxEntries) {
      // Drop a tenth, oldest first, so a full table prunes rarely.
      let drop = Math.max(1, Math.floor(this.#maxEntries / 10));
      for (const id of this.#lastHeardMs.keys()) {
        if (drop-- === 0) break;
        this.#lastHeardMs.delete(id);
      }
    }
  }

  /** When `nodeId` last sent a heartbeat here, or undefined. */
  lastHeardMs(nodeId: NodeId): number | undefined {
    return this.#lastHeardMs.get(nodeId);
  }

  /** How many node ids are kept. */
  get size(): number {
    return this.#lastHeardMs.size;
  }

  /** Forgets everything (this node stopped leading: its times mean nothing to the next leader). */
  clear(): void {
    this.#lastHeardMs.clear();
  }
}

/**
 * The liveness monitor's view of a server: a worker was last heard at the later of Raft's last
 * message from it (a server that is also a worker) and its last heartbeat (an agent, or a
 * server-worker that also heartbeats), so both kinds of workers are judged by one rule.
 */
export function livenessWithHeartbeats(
  raft: LivenessView,
  heartbeats: Pick<HeartbeatTable, "lastHeardMs">,
): LivenessView {
  return {
    nodeId: raft.nodeId,
    isLeader: () => raft.isLeader(),
    lastHeardMs: (peer) => {
      const fromRaft = raft.lastHeardMs(peer);
      const fromHeartbeat = heartbeats.lastHeardMs(peer);
      if (fromRaft === undefined) return fromHeartbeat;
      if (fromHeartbeat === undefined) return fromRaft;
      return Math.max(fromRaft, fromHeartbeat);
    },
  };
}
