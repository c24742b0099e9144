/**
 * Client sessions for any state machine (Raft thesis §6.3): a wrapper that makes retried writes
 * apply exactly once and expires sessions deterministically, by log time.
 *
 * ## Retry rules for client writers
 *
 * Every entry is a command envelope (`envelope.ts`): `proposedAtMs`, an optional session
 * `{clientId, sequence, ackedBelow}` and the wrapped machine's payload.
 *
 * 1. **Open.** Pick a fresh client id (a random UUID) and never reuse it. The first command has
 *    sequence 1; applying it opens the session. Wait for its reply before sending sequence 2:
 *    the state machine refuses a sequence above 1 for a session it does not know.
 * 2. **Number.** Each new command takes the next sequence. A retry resends the same sequence and
 *    the same payload; it may carry a newer `proposedAtMs` and a higher `ackedBelow`. Never send a
 *    different command under a sequence already used, even one that was refused: a delayed copy
 *    of the first could still apply under it.
 * 3. **Acknowledge.** Each command carries `ackedBelow`, the lowest sequence the client has not
 *    seen a reply for (default: its own sequence, i.e. nothing else in flight). The session
 *    discards the results below it; `ackedBelow` never goes down.
 * 4. **Outcomes.** A command with sequence `s` is decided in this order:
 *    - malformed envelope or payload: `INVALID_ARGUMENT` (or `TOO_LARGE`); nothing changes, not
 *      even log time;
 *    - read-only command (`isReadOnly`): executed every time, nothing recorded, the session is
 *      not consulted;
 *    - unknown session (never opened, expired or evicted) and `s > 1`: `CONFLICT` with reason
 *      `SESSION_EXPIRED`. Not applied now; if this was a retry, whether an earlier copy applied
 *      is unknown. Open a new session with a new id;
 *    - unknown session, `s = 1`, and `maxSessions` open of which none may be evicted yet:
 *      `OVERLOADED` with reason `SESSIONS_FULL`, not applied. Retry the same command later;
 *    - `s < ackedBelow` (settled): `INVALID_ARGUMENT` with reason `SEQUENCE_SETTLED`; nothing is
 *      applied (this is also what a late duplicate in the log gets after its client moved on);
 *    - `s`'s result is kept: that result again (equal to the first), nothing applied;
 *    - the session keeps `maxResultsPerSession` results or `maxResultBytesPerSession` bytes:
 *      `OVERLOADED` with reason `SESSION_RESULTS_FULL`, not applied. Acknowledge replies and
 *      retry the same command;
 *    - otherwise the command is applied, once. A successful result is kept under `s`; an error
 *      result is not, because an error means nothing was applied and `s` may be retried.
 *    Sequences at or above `ackedBelow` that were never applied are applied when they arrive,
 *    even after higher ones (a pipelining client across a leader change): the session knows
 *    exactly which of them were applied, so nothing applied is refused and nothing applies twice.
 * 5. **Expiry and eviction.** Log time is the largest `proposedAtMs` of any well-formed command
 *    applied so far. Before each command, every session idle for at least `sessionTimeoutMs` of
 *    log time expires. Any write naming an open session counts as activity, even a refused
 *    one (reads do not consult sessions at all). Opening a session when `maxSessions` are open evicts the one idle longest, but only if
 *    it has been idle for at least `minIdleBeforeEvictionMs`; otherwise the open is refused.
 * 6. **The limit of the scheme.** A forgotten session cannot be told from a new one, so a retry
 *    of sequence 1 that arrives after its session expired or was evicted would open a new session
 *    and apply again. Hence: clients stop retrying a command within `minIdleBeforeEvictionMs`
 *    (5 minutes; `sessionTimeoutMs` is an hour) of first sending it, and eviction waits that
 *    long. A proposer whose clock runs far ahead advances log time and shortens that window.
 *
 * Commands without a session are applied every time they appear in the log: use them only for
 * idempotent commands or the runtime's own proposals.
 */
import { InvalidArgumentError, invariant } from "../../common/index.js";
import {
  errorResult,
  okResult,
  validationErrorResult,
  type CommandResult,
} from "../command-result.js";
import { ByteReader, ByteWriter } from "../codec/binary.js";
import { crc32 } from "../../common/crc32.js";
import {
  SlicedSnapshot,
  bytesPart,
  checksummedParts,
  lengthPrefixedPart,
  type SnapshotPart,
} from "../snapshot-encoding.js";
import type { AppliedEntry, SnapshotEncoding, StateMachine } from "../state-machine.js";
import { decodeCommandEnvelope, type DecodedCommandEnvelope } from "./envelope.js";
import {
  resolveSessionOptions,
  type SessionLimits,
  type SessionOptions,
} from "./session-options.js";
import { SessionTable } from "./session-table.js";

/** The reasons of the session layer's error results. */
export const SessionErrorReason = {
  /** The session is unknown (expired, evicted or never opened); the command's outcome is unknown. */
  SessionExpired: "SESSION_EXPIRED",
  /** The sequence is below the session's `ackedBelow`: the client already has its reply. */
  SequenceSettled: "SEQUENCE_SETTLED",
  /** The session keeps as many results as it may; acknowledge replies and retry. */
  SessionResultsFull: "SESSION_RESULTS_FULL",
  /** The session table is full of recently active sessions; retry opening later. */
  SessionsFull: "SESSIONS_FULL",
} as const;
/** One of the session layer's error reasons. */
export type SessionErrorReason = (typeof SessionErrorReason)[keyof typeof SessionErrorReason];

/** What a wrapped machine learns about the entry it executes. */
export interface ExecuteContext {
  /** The entry's log index. */
  readonly index: number;
  /** The entry's term. */
  readonly term: number;
  /** Log time after this entry: the largest `proposedAtMs` applied so far. */
  readonly logTimeMs: number;
}

/**
 * A deterministic application the session layer wraps. It sees decoded commands, never
 * envelopes, and keeps its own state; the session layer keeps sessions and log time.
 */
export interface SessionedApplication<Command, Result> {
  /**
   * Decodes and validates a payload. Throws `InvalidArgumentError` or `TooLargeError` if it is
   * not a valid command. `payload` never changes (see `AppliedEntry.data`): the command's byte
   * arrays may be views into it where that keeps little else alive, and always with `stableData`
   * (see `AppliedEntry.stableData`).
   */
  decodeCommand(payload: Uint8Array, stableData?: boolean): Command;
  /** True if `command` changes nothing, so its result need not be kept (it may run again on retry). */
  isReadOnly(command: Command): boolean;
  /**
   * Executes a decoded command. Must be deterministic and must not throw for any command that
   * `decodeCommand` returned; an error result must leave the state unchanged. May keep the
   * command's byte arrays (freshly decoded copies, or views into data that never changes).
   */
  execute(command: Command, context: ExecuteContext): CommandResult<Result>;
  /** Encodes a successful result deterministically, to be kept in a session and in snapshots. */
  encodeResult(result: Result): Uint8Array;
  /** Decodes {@link encodeResult}'s bytes into an equal result; throws `InvalidArgumentError` if malformed. */
  decodeResult(bytes: Uint8Array): Result;
  /** Serializes the application's state deterministically. */
  snapshot(): Uint8Array;
  /**
   * Optional: captures the state now as a part to encode a slice at a time, equal to
   * `snapshot()` at the call (see `../snapshot-encoding.ts`). Without it, `snapshot()` is the
   * part.
   */
  captureSnapshot?(): SnapshotPart;
  /** Replaces the state with a snapshot's; throws `InvalidArgumentError` without changing anything if malformed. */
  restore(data: Uint8Array): void;
}

/** A read-only view of one open session, for diagnostics and tests. */
export interface SessionInfo {
  readonly clientId: string;
  readonly lastActiveMs: number;
  readonly ackedBelow: number;
  /** Sequences whose results are kept, ascending. */
  readonly keptSequences: readonly number[];
  readonly keptResultBytes: number;
}

/** Magic of a sessioned snapshot: "BXSM". */
const SNAPSHOT_MAGIC = new Uint8Array([0x42, 0x58, 0x53, 0x4d]);
/** The snapshot format this code writes and reads. */
export const SESSION_SNAPSHOT_FORMAT_VERSION = 1;
const CHECKSUM_BYTES = 4;

/**
 * A state machine with client sessions around a {@link SessionedApplication}; see "Retry rules
 * for client writers" above.
 *
 * Snapshot layout: magic "BXSM", u16 format version, u53 log time, the session table (see
 * `SessionTable.writeTo`), the application's snapshot as u32 length + bytes, then a u32 CRC-32
 * of everything before it.
 */
export class SessionedStateMachine<Command, Result> implements StateMachine<CommandResult<Result>> {
  readonly #app: SessionedApplication<Command, Result>;
  readonly #limits: SessionLimits;
  #sessions: SessionTable;
  #logTimeMs = 0;
  /** The last index applied in this process (not in snapshots): catches a runtime applying twice. */
  #lastAppliedIndex = 0;

  /** Wraps `app`. Throws `InvalidArgumentError` if an option is not a positive safe integer. */
  constructor(app: SessionedApplication<Command, Result>, options: SessionOptions = {}) {
    this.#app = app;
    this.#limits = resolveSessionOptions(options);
    this.#sessions = new SessionTable(this.#limits);
  }

  /** Log time: the largest `proposedAtMs` applied so far (0 before any). */
  get logTimeMs(): number {
    return this.#logTimeMs;
  }

  /** How many sessions are open. */
  get sessionCount(): number {
    return this.#sessions.size;
  }

  /** The bounds this machine runs with. */
  get limits(): SessionLimits {
    return this.#limits;
  }

  /** The open session of `clientId`, or `undefined`. Throws nothing. */
  session(clientId: string): SessionInfo | undefined {
    const record = this.#sessions.get(clientId);
    if (record === undefined) return undefined;
    return {
      clientId: record.clientId,
      lastActiveMs: record.lastActiveMs,
      ackedBelow: record.ackedBelow,
      keptSequences: [...record.results.keys()].sort((a, b) => a - b),
      keptResultBytes: record.cachedResultBytes,
    };
  }

  /**
   * Applies one entry under the retry rules. Never throws for a bad command (the result says
   * what was wrong); throws `InternalError` if `entry.index` is not above the last index applied
   * since construction or restore (a runtime bug: an entry applied twice or out of order).
   */
  apply(entry: AppliedEntry): CommandResult<Result> {
    invariant(
      entry.index > this.#lastAppliedIndex,
      () => `entry ${entry.index} applied after entry ${this.#lastAppliedIndex}`,
    );
    this.#lastAppliedIndex = entry.index;

    let envelope: DecodedCommandEnvelope;
    let command: Command;
    try {
      envelope = decodeCommandEnvelope(entry.data);
      command = this.#app.decodeCommand(envelope.payload, entry.stableData === true);
    } catch (error) {
      return validationErrorResult(error);
    }

    this.#logTimeMs = Math.max(this.#logTimeMs, envelope.proposedAtMs);
    this.#sessions.expireIdle(this.#logTimeMs);
    const context: ExecuteContext = {
      index: entry.index,
      term: entry.term,
      logTimeMs: this.#logTimeMs,
    };

    const session = envelope.session;
    if (session === undefined || this.#app.isReadOnly(command)) {
      return this.#app.execute(command, context);
    }

    const { clientId, sequence, ackedBelow } = session;
    let record = this.#sessions.get(clientId);
    if (record === undefined) {
      if (sequence !== 1) {
        return errorResult(
          "CONFLICT",
          `session ${clientId} is unknown or expired, so the outcome of its sequence ${sequence} ` +
            "is unknown; open a new session with a new client id",
          SessionErrorReason.SessionExpired,
        );
      }
      if (!this.#sessions.canOpen(this.#logTimeMs)) {
        return errorResult(
          "OVERLOADED",
          `cannot open session ${clientId}: ${this.#sessions.size} sessions are open and none has ` +
            `been idle for ${this.#limits.minIdleBeforeEvictionMs} ms; retry later`,
          SessionErrorReason.SessionsFull,
        );
      }
      record = this.#sessions.open(clientId, this.#logTimeMs);
    } else {
      this.#sessions.touch(record, this.#logTimeMs);
    }
    this.#sessions.acknowledge(record, ackedBelow);

    if (sequence < record.ackedBelow) {
      return errorResult(
        "INVALID_ARGUMENT",
        `sequence ${sequence} of session ${clientId} is settled (the client acknowledged replies ` +
          `below ${record.ackedBelow}); it is not applied again`,
        SessionErrorReason.SequenceSettled,
      );
    }
    const kept = record.results.get(sequence);
    if (kept !== undefined) return okResult(this.#app.decodeResult(kept));
    if (this.#sessions.isFull(record)) {
      return errorResult(
        "OVERLOADED",
        `session ${clientId} keeps ${record.results.size} unacknowledged results ` +
          `(${record.cachedResultBytes} bytes); acknowledge replies with ackedBelow and retry`,
        SessionErrorReason.SessionResultsFull,
      );
    }
    const result = this.#app.execute(command, context);
    if (result.ok) this.#sessions.record(record, sequence, this.#app.encodeResult(result.value));
    return result;
  }

  /** Serializes log time, sessions and the application's state deterministically (layout above). Throws nothing. */
  snapshot(): Uint8Array {
    const appSnapshot = this.#app.snapshot();
    const writer = new ByteWriter(appSnapshot.length + 1024 + CHECKSUM_BYTES)
      .raw(SNAPSHOT_MAGIC)
      .u16(SESSION_SNAPSHOT_FORMAT_VERSION)
      .u53(this.#logTimeMs);
    this.#sessions.writeTo(writer);
    writer.bytes(appSnapshot);
    return writer.u32(crc32(writer.written())).finish();
  }

  /**
   * Captures log time, sessions (encoded now: they are bounded) and the application's state (by
   * its own capture, if it has one) and returns the snapshot to encode a slice at a time: the
   * bytes of {@link snapshot} at this call. Throws nothing.
   */
  captureSnapshot(): SnapshotEncoding {
    const app = this.#app.captureSnapshot?.() ?? bytesPart(this.#app.snapshot());
    const header = new ByteWriter(1024)
      .raw(SNAPSHOT_MAGIC)
      .u16(SESSION_SNAPSHOT_FORMAT_VERSION)
      .u53(this.#logTimeMs);
    this.#sessions.writeTo(header);
    return new SlicedSnapshot(
      checksummedParts([bytesPart(header.finish()), lengthPrefixedPart(app)]),
    );
  }

  /**
   * Replaces log time, sessions and the application's state with a snapshot's. Throws
   * `InvalidArgumentError` (checksum, magic, version or structure) without changing anything.
   */
  restore(data: Uint8Array): void {
    if (data.length < SNAPSHOT_MAGIC.length + CHECKSUM_BYTES) {
      throw new InvalidArgumentError(`malformed snapshot: only ${data.length} bytes`);
    }
    const body = data.subarray(0, data.length - CHECKSUM_BYTES);
    const checksum = new ByteReader(data.subarray(body.length), "snapshot checksum").u32();
    if (crc32(body) !== checksum) {
      throw new InvalidArgumentError("malformed snapshot: CRC-32 checksum mismatch");
    }
    const reader = new ByteReader(body, "snapshot");
    const magic = reader.rawView(SNAPSHOT_MAGIC.length);
    if (!magic.every((byte, i) => byte === SNAPSHOT_MAGIC[i])) {
      throw reader.malformed("not a sessioned state machine snapshot (bad magic)");
    }
    const version = reader.u16();
    if (version !== SESSION_SNAPSHOT_FORMAT_VERSION) {
      throw reader.malformed(
        `unknown format version ${version}; this node reads version ${SESSION_SNAPSHOT_FORMAT_VERSION}`,
      );
    }
    const logTimeMs = reader.u53();
    const sessions = SessionTable.readFrom(reader, this.#limits, logTimeMs, (bytes) => {
      this.#app.decodeResult(bytes);
    });
    const appSnapshot = reader.rawView(reader.u32());
    reader.expectEnd();
    this.#app.restore(appSnapshot);
    this.#sessions = sessions;
    this.#logTimeMs = logTimeMs;
    this.#lastAppliedIndex = 0;
  }
}
