/**
 * The bounds of the client session table. They shape what `apply` does, so every replica of a
 * cluster must run with the same values: change them only as a cluster-wide upgrade.
 */
import { InvalidArgumentError } from "../../common/index.js";

/** A session idle for this long in log time expires: one hour, as in the Raft thesis' LogCabin. */
export const DEFAULT_SESSION_TIMEOUT_MS = 60 * 60 * 1000;

/**
 * The most sessions kept. Opening one more evicts the session idle longest if it has been idle
 * for {@link DEFAULT_MIN_IDLE_BEFORE_EVICTION_MS}; otherwise the open is refused (`OVERLOADED`).
 */
export const DEFAULT_MAX_SESSIONS = 4096;

/**
 * How long a session must have been idle (in log time) before it may be evicted to make room:
 * five minutes. Clients stop retrying a command well within this (the SDK's deadline is shorter),
 * so an evicted session can no longer receive a retry of its first command, which would
 * otherwise open a new session and apply twice.
 */
export const DEFAULT_MIN_IDLE_BEFORE_EVICTION_MS = 5 * 60 * 1000;

/** The most results one session keeps (its unacknowledged writes in flight). */
export const DEFAULT_MAX_RESULTS_PER_SESSION = 64;

/**
 * The result bytes one session keeps before it must acknowledge some. One result may overshoot
 * it, so a session holds at most this plus one result.
 */
export const DEFAULT_MAX_RESULT_BYTES_PER_SESSION = 1024 * 1024;

/** Options of the client session table; each defaults to the constant of the same name. */
export interface SessionOptions {
  /** Idle log time after which a session expires. Default {@link DEFAULT_SESSION_TIMEOUT_MS}. */
  readonly sessionTimeoutMs?: number;
  /** Sessions kept at most. Default {@link DEFAULT_MAX_SESSIONS}. */
  readonly maxSessions?: number;
  /** Idle log time before a session may be evicted to make room. Default {@link DEFAULT_MIN_IDLE_BEFORE_EVICTION_MS}. */
  readonly minIdleBeforeEvictionMs?: number;
  /** Results kept per session at most. Default {@link DEFAULT_MAX_RESULTS_PER_SESSION}. */
  readonly maxResultsPerSession?: number;
  /** Result bytes per session before new commands are refused. Default {@link DEFAULT_MAX_RESULT_BYTES_PER_SESSION}. */
  readonly maxResultBytesPerSession?: number;
}

/** {@link SessionOptions} with every default filled in. */
export type SessionLimits = Required<SessionOptions>;

/**
 * Fills in defaults and checks each option is a safe integer ≥ 1 (≥ 0 for
 * `minIdleBeforeEvictionMs`, where 0 evicts the idle-longest session at once); throws
 * `InvalidArgumentError` otherwise.
 */
export function resolveSessionOptions(options: SessionOptions = {}): SessionLimits {
  const limits: SessionLimits = {
    sessionTimeoutMs: options.sessionTimeoutMs ?? DEFAULT_SESSION_TIMEOUT_MS,
    maxSessions: options.maxSessions ?? DEFAULT_MAX_SESSIONS,
    minIdleBeforeEvictionMs: options.minIdleBeforeEvictionMs ?? DEFAULT_MIN_IDLE_BEFORE_EVICTION_MS,
    maxResultsPerSession: options.maxResultsPerSession ?? DEFAULT_MAX_RESULTS_PER_SESSION,
    maxResultBytesPerSession:
      options.maxResultBytesPerSession ?? DEFAULT_MAX_RESULT_BYTES_PER_SESSION,
  };
  for (const [name, value] of Object.entries(limits)) {
    const least = name === "minIdleBeforeEvictionMs" ? 0 : 1;
    if (!Number.isSafeInteger(value) || value < least) {
      throw new InvalidArgumentError(
        `session option ${name} must be a safe integer ≥ ${least}, got ${value}`,
      );
    }
  }
  return limits;
}
