/**
 * The commands simulated clients, agents and background writers propose, built by the command
 * port's {@link encodeCommand} (`node/command-port.ts`), the one builder a real node's services
 * and agent use too: a command envelope around the namespace's own encoding, carrying the
 * proposer's clock in whole ms and, for exactly-once writes, the client's session. The cluster
 * state machine routes each one by its namespace's first byte, as on a real node. The simulated
 * clients propose these bytes themselves (not through `CommandPort.propose`) because they play
 * the HTTP client too: a retry resends the same bytes, and every raw outcome is recorded for the
 * checkers.
 */
import { encodeCommand } from "../node/command-port.js";
import { KV_COMMANDS, ORCHESTRATOR_COMMANDS } from "../statemachine/cluster/command-namespaces.js";
import type { KvCommand } from "../statemachine/kv/types.js";
import type { OrchestratorCommand } from "../statemachine/orchestrator/commands.js";
import type { ClientSession } from "../statemachine/session/envelope.js";

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
  return encodeCommand(KV_COMMANDS, command, commandTimeMs(context.nowMs), context.session);
}

/**
 * An orchestrator command as the orchestrator service or an agent proposes it. Throws
 * `InvalidArgumentError` or `TooLargeError` for a command the codec refuses.
 */
export function orchestratorCommandEntry(
  command: OrchestratorCommand,
  context: CommandContext,
): Uint8Array {
  return encodeCommand(
    ORCHESTRATOR_COMMANDS,
    command,
    commandTimeMs(context.nowMs),
    context.session,
  );
}
