/**
 * Blixard's typed errors. Every layer throws these; the API maps each code to one HTTP status
 * and the CLI maps it to one exit code, both from {@link ERROR_CODES}, so a code means the same
 * thing wherever it surfaces.
 */

/** The stable code of each error, with the HTTP status and CLI exit code it maps to. */
export const ERROR_CODES = {
  NOT_LEADER: { httpStatus: 421, exitCode: 10 },
  TIMEOUT: { httpStatus: 504, exitCode: 11 },
  CANCELLED: { httpStatus: 499, exitCode: 12 },
  OVERLOADED: { httpStatus: 429, exitCode: 13 },
  TOO_LARGE: { httpStatus: 413, exitCode: 14 },
  INVALID_ARGUMENT: { httpStatus: 400, exitCode: 2 },
  NOT_FOUND: { httpStatus: 404, exitCode: 3 },
  CONFLICT: { httpStatus: 409, exitCode: 4 },
  UNAVAILABLE: { httpStatus: 503, exitCode: 15 },
  STORAGE_CORRUPT: { httpStatus: 500, exitCode: 16 },
  INTERNAL: { httpStatus: 500, exitCode: 70 },
  UNAUTHENTICATED: { httpStatus: 401, exitCode: 17 },
  PERMISSION_DENIED: { httpStatus: 403, exitCode: 18 },
  STORAGE_FULL: { httpStatus: 507, exitCode: 19 },
  GONE: { httpStatus: 410, exitCode: 21 },
} as const satisfies Record<string, { httpStatus: number; exitCode: number }>;

/** One of Blixard's stable error codes. */
export type ErrorCode = keyof typeof ERROR_CODES;

/**
 * The base of every error Blixard raises on purpose. `code` is stable across versions and is
 * what callers branch on; the message is for people and says what to do.
 */
export abstract class BlixardError extends Error {
  abstract readonly code: ErrorCode;

  constructor(message: string, options?: ErrorOptions) {
    super(message, options);
    this.name = new.target.name;
  }

  /** The JSON shape used on the wire: `{code, message}`. */
  toJSON(): { code: ErrorCode; message: string } {
    return { code: this.code, message: this.message };
  }
}

/** Where the leader can be reached, as far as this node knows. */
export interface LeaderHint {
  /** The leader's raft node id. */
  readonly id: number;
  /** The leader's client address (a URL string), when known. */
  readonly address?: string;
}

/** The request must go to the leader; `leaderHint` says where it is, when known. */
export class NotLeaderError extends BlixardError {
  readonly code = "NOT_LEADER";
  constructor(readonly leaderHint?: LeaderHint) {
    super(
      leaderHint === undefined
        ? "not the leader; no leader is known yet, retry shortly"
        : `not the leader; try node ${leaderHint.id}${leaderHint.address === undefined ? "" : ` at ${leaderHint.address}`}`,
    );
  }
}

/** The operation did not finish in time; its outcome is unknown and a retry must be idempotent. */
export class TimeoutError extends BlixardError {
  readonly code = "TIMEOUT";
}

/** The caller cancelled the operation (an `AbortSignal` fired); its outcome is unknown. */
export class CancelledError extends BlixardError {
  readonly code = "CANCELLED";
}

/** A bound was reached (queue, inflight bytes, pending proposals); back off and retry. */
export class OverloadedError extends BlixardError {
  readonly code = "OVERLOADED";
}

/** The input exceeds a size limit; it will never be accepted as it is. */
export class TooLargeError extends BlixardError {
  readonly code = "TOO_LARGE";
}

/** The input is malformed or out of range; fix the request. */
export class InvalidArgumentError extends BlixardError {
  readonly code = "INVALID_ARGUMENT";
}

/** The named thing does not exist. */
export class NotFoundError extends BlixardError {
  readonly code = "NOT_FOUND";
}

/** The request conflicts with the current state (a failed compare-and-set, a change in progress). */
export class ConflictError extends BlixardError {
  readonly code = "CONFLICT";
}

/** The service cannot serve this now (no quorum, shutting down, transfer in progress); retry later. */
export class UnavailableError extends BlixardError {
  readonly code = "UNAVAILABLE";
}

/** Durable data failed its checksum or is malformed; the node stops rather than serve bad data. */
export class StorageCorruptError extends BlixardError {
  readonly code = "STORAGE_CORRUPT";
  constructor(
    readonly file: string,
    readonly offset: number,
    reason: string,
  ) {
    super(
      `storage corrupt in ${file} at offset ${offset}: ${reason}; ` +
        "restore this node's data directory from a healthy replica",
    );
  }
}

/** A bug: an invariant that must always hold did not. Never caught to carry on. */
export class InternalError extends BlixardError {
  readonly code = "INTERNAL";
}

/** The request carried no credential, or one that is unknown, expired or revoked; log in again. */
export class UnauthenticatedError extends BlixardError {
  readonly code = "UNAUTHENTICATED";
}

/** The caller is known but its policies do not allow this; ask an operator for the permission. */
export class PermissionDeniedError extends BlixardError {
  readonly code = "PERMISSION_DENIED";
}

/** The disk is full: nothing was written; free space and the node resumes by itself. */
export class StorageFullError extends BlixardError {
  readonly code = "STORAGE_FULL";
}

/**
 * What a stream was asked to resume from is no longer kept (an event history is bounded, like
 * etcd's compaction): `oldest` is the first index or revision still available; re-read the
 * current state and resume from there.
 */
export class GoneError extends BlixardError {
  readonly code = "GONE";
  constructor(
    message: string,
    /** The oldest index (event stream) or revision (kv watch) still available. */
    readonly oldest: number,
  ) {
    super(message);
  }
}

/** True if `value` is a Blixard error (of any code). */
export function isBlixardError(value: unknown): value is BlixardError {
  return value instanceof BlixardError;
}

/**
 * The error of `code` with `message`, for errors that crossed a boundary as data (a command
 * result, an HTTP error body). `NOT_LEADER` gets `leaderHint`; `STORAGE_CORRUPT`, which names a
 * local file and offset, is the caller's to map. Throws nothing.
 */
export function errorForCode(
  code: Exclude<ErrorCode, "STORAGE_CORRUPT">,
  message: string,
  leaderHint?: LeaderHint,
): BlixardError {
  switch (code) {
    case "NOT_LEADER":
      return new NotLeaderError(leaderHint);
    case "TIMEOUT":
      return new TimeoutError(message);
    case "CANCELLED":
      return new CancelledError(message);
    case "OVERLOADED":
      return new OverloadedError(message);
    case "TOO_LARGE":
      return new TooLargeError(message);
    case "INVALID_ARGUMENT":
      return new InvalidArgumentError(message);
    case "NOT_FOUND":
      return new NotFoundError(message);
    case "CONFLICT":
      return new ConflictError(message);
    case "UNAVAILABLE":
      return new UnavailableError(message);
    case "INTERNAL":
      return new InternalError(message);
    case "UNAUTHENTICATED":
      return new UnauthenticatedError(message);
    case "PERMISSION_DENIED":
      return new PermissionDeniedError(message);
    case "STORAGE_FULL":
      return new StorageFullError(message);
    case "GONE":
      return new GoneError(message, Number(/resume from (\d+)/.exec(message)?.[1] ?? 0));
  }
}
