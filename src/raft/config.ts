import { InvalidArgumentError } from "../common/errors.js";
import { SILENT_LOGGER, type Logger } from "../common/logger.js";
import type { Random } from "../common/random.js";
import { ReadOnlyOption } from "./read-only.js";
import { RAFT_RULES, type SafetyRules } from "./rules.js";
import type { Storage } from "./storage.js";
import { NONE, type NodeId } from "./types.js";

/** Options of one raft node. Only `id`, `storage` and `random` are required. */
export interface RaftConfig {
  /** This node's id; positive. */
  readonly id: NodeId;
  /** The durable log the core reads (the application writes it from each `Ready`). */
  readonly storage: Storage;
  /** Seeded randomness for election timeouts. */
  readonly random: Random;
  /** Ticks without a leader's message before a follower campaigns; the actual timeout is random in [T, 2T). Default 10. */
  readonly electionTicks?: number;
  /** Ticks between a leader's heartbeats. Default 1; must be less than electionTicks. */
  readonly heartbeatTicks?: number;
  /** The last index the application has applied, when restarting. Default: the snapshot index. */
  readonly applied?: number;
  /** Upper bound of one append message's entries, in bytes. Default 1 MiB. */
  readonly maxSizePerMsgBytes?: number;
  /** Upper bound of committed entries handed out by one `Ready`, in bytes. Default 16 MiB. */
  readonly maxCommittedSizePerReadyBytes?: number;
  /** Upper bound of the leader's proposed-but-uncommitted entry payloads; past it proposals fail with OVERLOADED. Default 64 MiB. */
  readonly maxUncommittedEntriesSizeBytes?: number;
  /** Append messages in flight to one follower. Default 256. */
  readonly maxInflightMessages?: number;
  /** Bytes of append messages in flight to one follower; 0 disables the byte bound. Default 32 MiB. */
  readonly maxInflightBytes?: number;
  /** A leader steps down when a quorum has not been heard from for an election timeout; followers with a live leader ignore votes. Default true. */
  readonly checkQuorum?: boolean;
  /** Candidates first poll with a pre-vote that does not disrupt a live leader (thesis §9.6). Default true. */
  readonly preVote?: boolean;
  /** How reads confirm leadership. Lease-based requires checkQuorum. Default "safe". */
  readonly readOnlyOption?: ReadOnlyOption;
  /** When true, followers refuse proposals with NOT_LEADER instead of forwarding them. Default false. */
  readonly disableProposalForwarding?: boolean;
  /** A leader removed from (or demoted out of) the voters steps down once the change applies. Default true. */
  readonly stepDownOnRemoval?: boolean;
  /** Where to log. Default silent. */
  readonly logger?: Logger;
  /**
   * The safety rules. Default (and in production always) the paper's, {@link RAFT_RULES}; the
   * simulator's self-test passes `plantedRules(bugs)` to prove its checkers catch a broken one.
   */
  readonly rules?: SafetyRules;
}

/** A config with every default filled in. */
export type ResolvedRaftConfig = Required<RaftConfig> & { readonly applied: number };

/** Default bounds, named with their units. */
export const RAFT_DEFAULTS = Object.freeze({
  electionTicks: 10,
  heartbeatTicks: 1,
  maxSizePerMsgBytes: 1024 * 1024,
  maxCommittedSizePerReadyBytes: 16 * 1024 * 1024,
  maxUncommittedEntriesSizeBytes: 64 * 1024 * 1024,
  maxInflightMessages: 256,
  maxInflightBytes: 32 * 1024 * 1024,
});

function requirePositiveInteger(name: string, value: number): void {
  if (!Number.isSafeInteger(value) || value <= 0) {
    throw new InvalidArgumentError(`raft config: ${name} must be a positive integer, got ${value}`);
  }
}

/**
 * Fills in defaults and validates a config.
 * @throws InvalidArgumentError naming the offending option.
 */
export function resolveRaftConfig(config: RaftConfig): ResolvedRaftConfig {
  const resolved: ResolvedRaftConfig = {
    electionTicks: RAFT_DEFAULTS.electionTicks,
    heartbeatTicks: RAFT_DEFAULTS.heartbeatTicks,
    applied: 0,
    maxSizePerMsgBytes: RAFT_DEFAULTS.maxSizePerMsgBytes,
    maxCommittedSizePerReadyBytes: RAFT_DEFAULTS.maxCommittedSizePerReadyBytes,
    maxUncommittedEntriesSizeBytes: RAFT_DEFAULTS.maxUncommittedEntriesSizeBytes,
    maxInflightMessages: RAFT_DEFAULTS.maxInflightMessages,
    maxInflightBytes: RAFT_DEFAULTS.maxInflightBytes,
    checkQuorum: true,
    preVote: true,
    readOnlyOption: ReadOnlyOption.Safe,
    disableProposalForwarding: false,
    stepDownOnRemoval: true,
    logger: SILENT_LOGGER,
    rules: RAFT_RULES,
    ...config,
  };
  if (resolved.id === NONE) throw new InvalidArgumentError("raft config: id must not be 0");
  requirePositiveInteger("id", resolved.id);
  requirePositiveInteger("electionTicks", resolved.electionTicks);
  requirePositiveInteger("heartbeatTicks", resolved.heartbeatTicks);
  if (resolved.heartbeatTicks >= resolved.electionTicks) {
    throw new InvalidArgumentError(
      `raft config: heartbeatTicks (${resolved.heartbeatTicks}) must be less than electionTicks (${resolved.electionTicks})`,
    );
  }
  requirePositiveInteger("maxSizePerMsgBytes", resolved.maxSizePerMsgBytes);
  requirePositiveInteger("maxCommittedSizePerReadyBytes", resolved.maxCommittedSizePerReadyBytes);
  requirePositiveInteger("maxUncommittedEntriesSizeBytes", resolved.maxUncommittedEntriesSizeBytes);
  requirePositiveInteger("maxInflightMessages", resolved.maxInflightMessages);
  if (!Number.isSafeInteger(resolved.maxInflightBytes) || resolved.maxInflightBytes < 0) {
    throw new InvalidArgumentError(
      "raft config: maxInflightBytes must be 0 (no limit) or positive",
    );
  }
  if (resolved.maxInflightBytes > 0 && resolved.maxInflightBytes < resolved.maxSizePerMsgBytes) {
    throw new InvalidArgumentError(
      "raft config: maxInflightBytes must be at least maxSizePerMsgBytes, or one message could never be sent",
    );
  }
  if (!Number.isSafeInteger(resolved.applied) || resolved.applied < 0) {
    throw new InvalidArgumentError("raft config: applied must be a non-negative integer");
  }
  if (resolved.readOnlyOption === ReadOnlyOption.LeaseBased && !resolved.checkQuorum) {
    throw new InvalidArgumentError(
      "raft config: lease-based reads need checkQuorum, or a deposed leader could serve stale reads",
    );
  }
  if (
    resolved.readOnlyOption !== ReadOnlyOption.Safe &&
    resolved.readOnlyOption !== ReadOnlyOption.LeaseBased
  ) {
    throw new InvalidArgumentError(
      `raft config: unknown readOnlyOption ${String(resolved.readOnlyOption)}`,
    );
  }
  return resolved;
}
