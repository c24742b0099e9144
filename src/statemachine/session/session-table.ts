/**
 * The table of client sessions (Raft thesis §6.3): for each client, the results of its applied
 * writes that it may still ask for again. Private to the session folder; the rules it implements
 * are written out in `sessioned-state-machine.ts`.
 *
 * Sessions are kept in a `Map` ordered from least to most recently active. Log time never goes
 * back, so that order is also the order of `lastActiveMs`: expiry pops from the front, and the
 * session evicted at the bound is the front one (idle longest; among equal times, the one whose
 * last command came earliest in the log). The order is part of the state and of the snapshot.
 */
import { invariant } from "../../common/index.js";
import type { ByteReader, ByteWriter } from "../codec/binary.js";
import { MAX_CLIENT_ID_BYTES } from "./envelope.js";
import type { SessionLimits } from "./session-options.js";
import { utf8ByteLength } from "../codec/utf8.js";

/** One client session. */
export interface SessionRecord {
  readonly clientId: string;
  /** Log time of the session's last command. */
  lastActiveMs: number;
  /** Every sequence below this is settled: the client has its reply, a retry is refused. */
  ackedBelow: number;
  /** Encoded results of applied writes with sequence ≥ `ackedBelow`, by sequence. */
  readonly results: Map<number, Uint8Array>;
  /** Sum of the lengths of `results`' values. */
  cachedResultBytes: number;
}

/** Decides whether cached result bytes are valid; throws `InvalidArgumentError` if not. */
export type ResultValidator = (resultBytes: Uint8Array) => void;

/** The sessions of one state machine. Mutated only by apply and restore. */
export class SessionTable {
  readonly #limits: SessionLimits;
  readonly #sessions = new Map<string, SessionRecord>();

  /** An empty table bounded by `limits`. */
  constructor(limits: SessionLimits) {
    this.#limits = limits;
  }

  /** How many sessions are open. */
  get size(): number {
    return this.#sessions.size;
  }

  /** The open session of `clientId`, if any. */
  get(clientId: string): SessionRecord | undefined {
    return this.#sessions.get(clientId);
  }

  /** The open sessions, least recently active first (for tests and diagnostics). */
  records(): IterableIterator<SessionRecord> {
    return this.#sessions.values();
  }

  /** Drops every session idle for at least `sessionTimeoutMs` at log time `logTimeMs`. */
  expireIdle(logTimeMs: number): void {
    for (const record of this.#sessions.values()) {
      if (logTimeMs - record.lastActiveMs < this.#limits.sessionTimeoutMs) return;
      this.#sessions.delete(record.clientId);
    }
  }

  /**
   * True if a session can be opened at log time `logTimeMs`: the table is below `maxSessions`,
   * or its idle-longest session has been idle for at least `minIdleBeforeEvictionMs`.
   */
  canOpen(logTimeMs: number): boolean {
    if (this.#sessions.size < this.#limits.maxSessions) return true;
    const oldest = this.#sessions.values().next();
    return (
      oldest.done !== true &&
      logTimeMs - oldest.value.lastActiveMs >= this.#limits.minIdleBeforeEvictionMs
    );
  }

  /**
   * Opens a session for `clientId` (which must not be open), evicting the idle-longest session
   * at the bound. Call only when {@link canOpen} says so.
   */
  open(clientId: string, logTimeMs: number): SessionRecord {
    invariant(!this.#sessions.has(clientId), () => `session ${clientId} is already open`);
    invariant(this.canOpen(logTimeMs), "a session is opened only when there is room");
    if (this.#sessions.size >= this.#limits.maxSessions) {
      const oldest = this.#sessions.keys().next();
      invariant(oldest.done !== true, "a full session table has a first session");
      this.#sessions.delete(oldest.value);
    }
    const record: SessionRecord = {
      clientId,
      lastActiveMs: logTimeMs,
      ackedBelow: 1,
      results: new Map(),
      cachedResultBytes: 0,
    };
    this.#sessions.set(clientId, record);
    return record;
  }

  /** Marks `record` active at `logTimeMs`, moving it to the most-recent end. */
  touch(record: SessionRecord, logTimeMs: number): void {
    invariant(logTimeMs >= record.lastActiveMs, "log time never goes back");
    record.lastActiveMs = logTimeMs;
    this.#sessions.delete(record.clientId);
    this.#sessions.set(record.clientId, record);
  }

  /** Raises `record.ackedBelow` to `ackedBelow` (never lowers it) and discards the results below it. */
  acknowledge(record: SessionRecord, ackedBelow: number): void {
    if (ackedBelow <= record.ackedBelow) return;
    record.ackedBelow = ackedBelow;
    for (const [sequence, resultBytes] of record.results) {
      if (sequence < ackedBelow) {
        record.results.delete(sequence);
        record.cachedResultBytes -= resultBytes.length;
      }
    }
  }

  /** True if `record` is at its bound of kept results (by count or bytes) and may not apply another write. */
  isFull(record: SessionRecord): boolean {
    return (
      record.results.size >= this.#limits.maxResultsPerSession ||
      record.cachedResultBytes >= this.#limits.maxResultBytesPerSession
    );
  }

  /** Keeps the encoded result of `sequence`, which must not be settled or kept already. */
  record(record: SessionRecord, sequence: number, resultBytes: Uint8Array): void {
    invariant(sequence >= record.ackedBelow, "a settled sequence is never applied");
    invariant(!record.results.has(sequence), "a sequence is applied at most once");
    record.results.set(sequence, resultBytes);
    record.cachedResultBytes += resultBytes.length;
  }

  /**
   * Writes the table: a u32 count, then each session (least recently active first) as client id,
   * lastActiveMs, ackedBelow, a u32 result count and its results in ascending sequence order
   * (sequence, then bytes).
   */
  writeTo(writer: ByteWriter): void {
    writer.u32(this.#sessions.size);
    for (const record of this.#sessions.values()) {
      writer.string(record.clientId).u53(record.lastActiveMs).u53(record.ackedBelow);
      const sequences = [...record.results.keys()].sort((a, b) => a - b);
      writer.u32(sequences.length);
      for (const sequence of sequences) {
        writer.u53(sequence).bytes(record.results.get(sequence) as Uint8Array);
      }
    }
  }

  /**
   * Reads a table written by {@link writeTo} into a new table, checking its structure against log
   * time `logTimeMs` and each result with `validateResult`. Throws `InvalidArgumentError` if
   * anything is malformed.
   */
  static readFrom(
    reader: ByteReader,
    limits: SessionLimits,
    logTimeMs: number,
    validateResult: ResultValidator,
  ): SessionTable {
    const table = new SessionTable(limits);
    const count = reader.u32();
    let previousActiveMs = 0;
    for (let i = 0; i < count; i++) {
      const clientId = reader.string();
      const clientIdBytes = utf8ByteLength(clientId) ?? 0;
      if (clientIdBytes === 0 || clientIdBytes > MAX_CLIENT_ID_BYTES) {
        throw reader.malformed(`client id of ${clientIdBytes} bytes`);
      }
      if (table.#sessions.has(clientId)) throw reader.malformed(`duplicate session ${clientId}`);
      const lastActiveMs = reader.u53();
      if (lastActiveMs < previousActiveMs || lastActiveMs > logTimeMs) {
        throw reader.malformed(`session ${clientId} active at ${lastActiveMs} is out of order`);
      }
      previousActiveMs = lastActiveMs;
      const ackedBelow = reader.u53();
      if (ackedBelow < 1) throw reader.malformed(`session ${clientId} has ackedBelow 0`);
      const record: SessionRecord = {
        clientId,
        lastActiveMs,
        ackedBelow,
        results: new Map(),
        cachedResultBytes: 0,
      };
      const resultCount = reader.u32();
      let previousSequence = ackedBelow - 1;
      for (let j = 0; j < resultCount; j++) {
        const sequence = reader.u53();
        if (sequence <= previousSequence) {
          throw reader.malformed(`session ${clientId} result ${sequence} is out of order`);
        }
        previousSequence = sequence;
        const resultBytes = reader.bytes();
        validateResult(resultBytes);
        record.results.set(sequence, resultBytes);
        record.cachedResultBytes += resultBytes.length;
      }
      table.#sessions.set(clientId, record);
    }
    return table;
  }
}
