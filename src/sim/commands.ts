/**
 * The commands simulated clients, agents and background writers propose, built in this one place
 * exactly as a real node's API builds them (`src/api/raft-service.ts`, the orchestrator service,
 * the agent's reporter): a command envelope around the namespace's own encoding, carrying the
 * proposer's clock in whole ms and, for exactly-once writes, the client's session. The cluster
 * state machine routes each one by its namespace's first byte, as on a real node.
 */
import type { KvCommand } from "../statemachine/kv/types.js";
import { encodeKvCommand } from "../statemachine/kv/command-codec.js";
import type { OrchestratorCommand } from "../statemachine/orchestrator/commands.js";
import { encodeOrchestratorCommand } from "../statemachine/orchestrator/command-codec.js";
import { encodeCommandEnvelope, type ClientSession } from "../statemachine/session/envelope.js";

/** An arbitrary fixed epoch: log time must look like wall time, and never depend on it. */
const EPOCH_MS = 1_700_000_000_000;

/** The time a command proposed at virtual time `nowMs` carries (`proposedAtMs`). Throws nothing. */
export function commandTimeMs(nowMs: number): number {
  return EPOCH_MS + Math.max(0, Math.floor(nowMs));
}

/** Where and how a command is proposed. */
export interface CommandContext {
  /** The proposer's virtual time. */
  readonly nowMs: number;
  /** The client session, for a write that must apply exactly once. */
  readonly session?: ClientSession;
}

/**
 * A kv command as the kv service proposes it. Throws `InvalidArgumentError` or `TooLargeError`
 * for a bad key or value (encoding validates, as the API's does).
 */
export function kvCommandEntry(command: KvCommand, context: CommandContext): Uint8Array {
  return encodeCommandEnvelope({
    proposedAtMs: commandTimeMs(context.nowMs),
    ...(context.session === undefined ? {} : { session: context.session }),
    payload: encodeKvCommand(command),
  });
}

/**
 * An orchestrator command as the orchestrator service or an agent proposes it. Throws
 * `InvalidArgumentError` or `TooLargeError` for a command the codec refuses.
 */
export function orchestratorCommandEntry(
  command: OrchestratorCommand,
  context: CommandContext,
): Uint8Array {
  return encodeCommandEnvelope({
    proposedAtMs: commandTimeMs(context.nowMs),
    ...(context.session === undefined ? {} : { session: context.session }),
    payload: encodeOrchestratorCommand(command),
  });
}
