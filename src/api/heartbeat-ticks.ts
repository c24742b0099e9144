/**
 * A real node's heartbeat interval, apart from the node's composition so that the CLI can show
 * and apply it without loading the whole node (see `cli/commands/node.ts`).
 */

/** The most ticks between a leader's heartbeats by default (100 ms at a 25 ms tick, etcd's). */
export const DEFAULT_HEARTBEAT_TICKS = 4;

/**
 * The heartbeat interval for an election timeout of `electionTicks`: the default, or fewer
 * ticks so that at least 2.5 heartbeats fit in the shortest election timeout. Throws nothing.
 */
export function defaultHeartbeatTicks(electionTicks: number): number {
  return Math.max(1, Math.min(DEFAULT_HEARTBEAT_TICKS, Math.floor(electionTicks / 2.5)));
}
