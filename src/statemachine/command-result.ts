/**
 * What `apply` hands back to the proposer: a value, or a typed error that every replica produced
 * identically. Errors are values here, not exceptions, because a replicated command must fail the
 * same way everywhere and must never crash the apply loop.
 */
import {
  InternalError,
  errorForCode,
  isBlixardError,
  type BlixardError,
  type ErrorCode,
} from "../common/index.js";

/**
 * A command's typed failure. `code` is one of Blixard's stable codes (it picks the HTTP status
 * and CLI exit code); `reason`, when present, names the precise case a client branches on (e.g.
 * `SESSION_EXPIRED`).
 */
export interface CommandError {
  readonly code: ErrorCode;
  readonly message: string;
  readonly reason?: string;
}

/**
 * The outcome of one applied command. An error result always means the command was not applied:
 * the state machine's state is unchanged apart from log time (see the session rules).
 */
export type CommandResult<T> =
  { readonly ok: true; readonly value: T } | { readonly ok: false; readonly error: CommandError };

/** A successful result carrying `value`. Throws nothing. */
export function okResult<T>(value: T): CommandResult<T> {
  return { ok: true, value };
}

/** A failed result with `code`, `message` and an optional `reason`. Throws nothing. */
export function errorResult<T>(
  code: ErrorCode,
  message: string,
  reason?: string,
): CommandResult<T> {
  return {
    ok: false,
    error: reason === undefined ? { code, message } : { code, message, reason },
  };
}

/**
 * Turns a thrown validation error (`INVALID_ARGUMENT` or `TOO_LARGE`, as decoders throw) into an
 * error result. Rethrows anything else unchanged: any other exception during apply is a bug and
 * must stay loud.
 */
export function validationErrorResult<T>(error: unknown): CommandResult<T> {
  if (isBlixardError(error) && (error.code === "INVALID_ARGUMENT" || error.code === "TOO_LARGE")) {
    return errorResult(error.code, error.message);
  }
  throw error;
}

/**
 * The exception a runtime raises for a failed command (to reject a proposal's promise): the
 * {@link BlixardError} subclass of the error's code, with its message (and reason, when present,
 * in the message). Codes a state machine never produces (`STORAGE_CORRUPT`) become
 * `InternalError`. Throws nothing.
 */
export function commandErrorToException(error: CommandError): BlixardError {
  const message = error.reason === undefined ? error.message : `${error.reason}: ${error.message}`;
  return error.code === "STORAGE_CORRUPT"
    ? new InternalError(message)
    : errorForCode(error.code, message);
}
