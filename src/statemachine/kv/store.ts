/**
 * The key-value store: keys with etcd-like revisions, executed under client sessions as the kv
 * namespace of the cluster state machine (`cluster/cluster-state-machine.ts`). Everything here is
 * deterministic.
 */
import { InvalidArgumentError, invariant } from "../../common/index.js";
import { errorResult, okResult, type CommandResult } from "../command-result.js";
import { ByteReader, ByteWriter } from "../codec/binary.js";
import { utf8ByteLength } from "../codec/utf8.js";
import type { ExecuteContext, SessionedApplication } from "../session/sessioned-state-machine.js";
import { bytesPart, concatParts, type SnapshotPart } from "../snapshot-encoding.js";
import { decodeKvCommand, validateKey } from "./command-codec.js";
import {
  DEFAULT_LIST_LIMIT,
  DEFAULT_MAX_STORE_BYTES,
  ENTRY_OVERHEAD_BYTES,
  MAX_KEYS_PER_LEASE,
  MAX_LEASE_TTL_MS,
  MAX_LEASES,
  MAX_LIST_LIMIT,
  MAX_LIST_RESULT_BYTES,
  MIN_LEASE_TTL_MS,
} from "./limits.js";
import { decodeKvResult, encodeKvResult, readEntry } from "./result-codec.js";
import { SortedKeys, compareKeys } from "./sorted-keys.js";
import { KvSnapshotView, writeSnapshotEntry } from "./snapshot-view.js";
import type { ChangeObserver } from "../changes.js";
import type { KvRecord } from "./record.js";
import { compareHolds } from "./txn-compare.js";
import {
  KvErrorReason,
  type KvCommand,
  type KvCompareAndSetCommand,
  type KvEntry,
  type KvExpectation,
  type KvLease,
  type KvLeaseRevokeCommand,
  type KvResult,
  type KvTxnCommand,
  type KvTxnOpResult,
} from "./types.js";

/** Options of a store. `maxStoreBytes` shapes `apply`, so every replica must use the same value. */
export interface KvStoreOptions {
  /** The store quota in bytes. Default {@link DEFAULT_MAX_STORE_BYTES}. */
  readonly maxStoreBytes?: number;
}

/** Which keys a list returns: those with `prefix` (default: all) in `[start, end)` (default: unbounded). */
export interface KvListOptions {
  /** Only keys that start with this string. */
  readonly prefix?: string;
  /** Only keys ≥ this (inclusive); pass a previous result's `nextStart` to continue. */
  readonly start?: string;
  /** Only keys < this (exclusive). */
  readonly end?: string;
  /** The most entries to return, 1..{@link MAX_LIST_LIMIT}. Default {@link DEFAULT_LIST_LIMIT}. */
  readonly limit?: number;
}

/** One page of a list, in key order (Unicode code point order). */
export interface KvListResult {
  readonly entries: readonly KvEntry[];
  /** The store revision the list saw. */
  readonly revision: number;
  /** True if more keys match beyond this page. */
  readonly more: boolean;
  /** When `more`, the `start` of the next page. */
  readonly nextStart?: string;
}

/** A lease: its TTL and the keys attached. When it expires is the leader's business, not the store's. */
interface LeaseRecord {
  readonly ttlMs: number;
  readonly keys: Set<string>;
}

/** Magic of a kv snapshot: "BXKV". */
const SNAPSHOT_MAGIC = new Uint8Array([0x42, 0x58, 0x4b, 0x56]);
/** Bytes a key's record takes in a snapshot beyond its key and value: two lengths, four u53s. */
const SNAPSHOT_ENTRY_BYTES = 4 + 4 + 4 * 8;
/** Bytes of a kv snapshot before its entries: magic, version, revision, key count. */
const SNAPSHOT_HEADER_BYTES = 4 + 2 + 8 + 4;
/** Bytes of the lease table before its leases: next lease id, lease count. */
const LEASE_TABLE_HEADER_BYTES = 8 + 4;
/** Bytes of one lease in a snapshot: id, TTL. */
const LEASE_BYTES = 8 + 8;
/** The kv snapshot format this code writes. Version 2 added leases; version 1 is still read. */
export const KV_SNAPSHOT_FORMAT_VERSION = 2;
const OLDEST_READABLE_SNAPSHOT_VERSION = 1;

function recordCostBytes(record: KvRecord): number {
  return record.keyBytes + record.value.length + ENTRY_OVERHEAD_BYTES;
}

function bytesEqual(a: Uint8Array, b: Uint8Array): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/**
 * The key-value data: a map of records plus a sorted key index, the store revision and the bytes
 * used against the quota. Implements the application side of the session layer.
 */
export class KvStore implements SessionedApplication<KvCommand, KvResult> {
  readonly #maxStoreBytes: number;
  #records = new Map<string, KvRecord>();
  #keys = new SortedKeys();
  #revision = 0;
  #storeBytes = 0;
  #observer: ChangeObserver | undefined;
  #leases = new Map<number, LeaseRecord>();
  #nextLeaseId = 1;
  /** Snapshots being encoded from a capture of this store (see {@link captureSnapshot}). */
  #views: KvSnapshotView[] = [];

  /** An empty store. Throws `InvalidArgumentError` if `maxStoreBytes` is not a positive safe integer. */
  constructor(options: KvStoreOptions = {}) {
    const maxStoreBytes = options.maxStoreBytes ?? DEFAULT_MAX_STORE_BYTES;
    if (!Number.isSafeInteger(maxStoreBytes) || maxStoreBytes < 1) {
      throw new InvalidArgumentError(
        `maxStoreBytes must be a safe integer ≥ 1, got ${maxStoreBytes}`,
      );
    }
    this.#maxStoreBytes = maxStoreBytes;
  }

  /**
   * Reports every write and delete that takes effect to `observer` (undefined: stop), in
   * revision order; see `../changes.ts`. Throws nothing.
   */
  observe(observer: ChangeObserver | undefined): void {
    this.#observer = observer;
  }

  /** The store revision: how many writes changed the store. */
  get revision(): number {
    return this.#revision;
  }

  /** How many keys there are. */
  get keyCount(): number {
    return this.#records.size;
  }

  /** The bytes used against the quota (keys, values and per-key overhead). */
  get storeBytes(): number {
    return this.#storeBytes;
  }

  /**
   * Decodes a kv command from bytes that never change (a log entry's); its values are views into
   * them where that keeps little else alive, always with `stableData` (see `KvValueMode`). Throws
   * `InvalidArgumentError` or `TooLargeError` (see `decodeKvCommand`).
   */
  decodeCommand(payload: Uint8Array, stableData = false): KvCommand {
    return decodeKvCommand(payload, { values: stableData ? "view" : "lean" });
  }

  /** How many leases there are. */
  get leaseCount(): number {
    return this.#leases.size;
  }

  /** The lease `id`, or undefined if it does not exist (never granted, revoked or expired). Throws nothing. */
  lease(id: number): KvLease | undefined {
    const lease = this.#leases.get(id);
    return lease === undefined ? undefined : { id, ttlMs: lease.ttlMs, keyCount: lease.keys.size };
  }

  /** The keys attached to lease `id`, in key order (empty if it does not exist). Throws nothing. */
  leaseKeys(id: number): string[] {
    const keys = [...(this.#leases.get(id)?.keys ?? [])];
    return keys.sort(compareKeys);
  }

  /** Calls `visit` with every lease's id and TTL, in id order, allocating nothing per lease. */
  forEachLease(visit: (id: number, ttlMs: number) => void): void {
    for (const [id, lease] of this.#leases) visit(id, lease.ttlMs);
  }

  /** Only `get` is read-only. */
  isReadOnly(command: KvCommand): boolean {
    return command.op === "get";
  }

  /** Encodes a result (see `encodeKvResult`). */
  encodeResult(result: KvResult): Uint8Array {
    return encodeKvResult(result);
  }

  /** Decodes a result; throws `InvalidArgumentError` if malformed. */
  decodeResult(bytes: Uint8Array): KvResult {
    return decodeKvResult(bytes);
  }

  /**
   * Executes a validated command. Never throws for one; the only error result is `OVERLOADED`
   * (reason `QUOTA_EXCEEDED`), which changes nothing. Keeps the command's value array.
   */
  execute(command: KvCommand, _context?: ExecuteContext): CommandResult<KvResult> {
    switch (command.op) {
      case "txn":
        return this.#txn(command);
      case "leaseGrant":
        return this.#grant(command.ttlMs);
      case "leaseRevoke":
        return this.#revoke(command);
      default:
        break;
    }
    const previous = this.#records.get(command.key);
    switch (command.op) {
      case "get":
        return okResult({
          op: "get",
          revision: this.#revision,
          entry: previous === undefined ? null : this.#entry(command.key, previous),
        });
      case "put": {
        const lease = command.lease ?? 0;
        const refused =
          this.#leaseRefusal(command.key, lease, previous, 1) ??
          this.#write(command.key, command.value, previous, lease);
        if (refused !== undefined) return refused;
        return okResult(
          command.returnPrevious === true && previous !== undefined
            ? { op: "put", revision: this.#revision, previous: this.#entry(command.key, previous) }
            : { op: "put", revision: this.#revision },
        );
      }
      case "delete": {
        if (previous === undefined) {
          return okResult({ op: "delete", deleted: false, revision: this.#revision });
        }
        this.#remove(command.key, previous);
        return okResult(
          command.returnPrevious === true
            ? {
                op: "delete",
                deleted: true,
                revision: this.#revision,
                previous: this.#entry(command.key, previous),
              }
            : { op: "delete", deleted: true, revision: this.#revision },
        );
      }
      case "cas":
        return this.#compareAndSet(command, previous);
    }
  }

  #compareAndSet(
    command: KvCompareAndSetCommand,
    previous: KvRecord | undefined,
  ): CommandResult<KvResult> {
    if (!matches(command.expected, previous)) {
      return okResult({
        op: "cas",
        succeeded: false,
        revision: this.#revision,
        current: previous === undefined ? null : this.#entry(command.key, previous),
      });
    }
    // A compare-and-set writes as a put without a lease: it detaches the key from any lease.
    const refused = this.#write(command.key, command.value, previous, 0);
    if (refused !== undefined) return refused;
    return okResult({ op: "cas", succeeded: true, revision: this.#revision });
  }

  /**
   * A txn: the compares pick a branch; the branch's writes are checked as a whole against the
   * quota and the leases first, so the txn applies completely or (with an error) not at all.
   */
  #txn(command: KvTxnCommand): CommandResult<KvResult> {
    let succeeded = true;
    for (const compare of command.compare) {
      if (!compareHolds(compare, this.#records.get(compare.key))) {
        succeeded = false;
        break;
      }
    }
    const ops = succeeded ? command.success : command.failure;
    // Write keys are distinct within a branch (the codec checks), so this sum is exact.
    let newStoreBytes = this.#storeBytes;
    const attached = new Map<number, number>();
    for (const op of ops) {
      if (op.op === "get") continue;
      const previous = this.#records.get(op.key);
      if (previous !== undefined) newStoreBytes -= recordCostBytes(previous);
      if (op.op === "delete") continue;
      newStoreBytes +=
        (previous?.keyBytes ?? (utf8ByteLength(op.key) as number)) +
        op.value.length +
        ENTRY_OVERHEAD_BYTES;
      const lease = op.lease ?? 0;
      if (lease !== 0 && previous?.lease !== lease) {
        const count = (attached.get(lease) ?? 0) + 1;
        attached.set(lease, count);
        const refused = this.#leaseRefusal(op.key, lease, previous, count);
        if (refused !== undefined) return refused;
      }
    }
    if (newStoreBytes > this.#maxStoreBytes && newStoreBytes > this.#storeBytes) {
      return errorResult(
        "OVERLOADED",
        `this txn would grow the store to ${newStoreBytes} bytes, past its quota of ` +
          `${this.#maxStoreBytes} bytes; delete keys to free space`,
        KvErrorReason.QuotaExceeded,
      );
    }
    const results: KvTxnOpResult[] = [];
    for (const op of ops) {
      const previous = this.#records.get(op.key);
      switch (op.op) {
        case "get":
          results.push({
            op: "get",
            entry: previous === undefined ? null : this.#entry(op.key, previous),
          });
          break;
        case "put": {
          const refused = this.#write(op.key, op.value, previous, op.lease ?? 0);
          invariant(refused === undefined, "a txn write passed its checks but was refused");
          results.push({ op: "put", revision: this.#revision });
          break;
        }
        case "delete":
          if (previous !== undefined) this.#remove(op.key, previous);
          results.push({ op: "delete", deleted: previous !== undefined });
          break;
      }
    }
    return okResult({ op: "txn", succeeded, revision: this.#revision, results });
  }

  /**
   * Why attaching `key` to `lease` (the `count`-th new key for it in this command) is refused, or
   * undefined if it may (also for no lease, or the key already on it).
   */
  #leaseRefusal(
    key: string,
    lease: number,
    previous: KvRecord | undefined,
    count: number,
  ): CommandResult<KvResult> | undefined {
    if (lease === 0 || previous?.lease === lease) return undefined;
    const record = this.#leases.get(lease);
    if (record === undefined) {
      return errorResult(
        "NOT_FOUND",
        `lease ${lease} does not exist (revoked or expired?); grant a new lease and write ${key} again`,
        KvErrorReason.LeaseNotFound,
      );
    }
    if (record.keys.size + count > MAX_KEYS_PER_LEASE) {
      return errorResult(
        "OVERLOADED",
        `lease ${lease} already holds ${record.keys.size} keys, the limit is ${MAX_KEYS_PER_LEASE}; use another lease`,
        KvErrorReason.LeaseKeysFull,
      );
    }
    return undefined;
  }

  #grant(ttlMs: number): CommandResult<KvResult> {
    invariant(ttlMs >= MIN_LEASE_TTL_MS && ttlMs <= MAX_LEASE_TTL_MS, "unchecked lease ttl");
    if (this.#leases.size >= MAX_LEASES) {
      return errorResult(
        "OVERLOADED",
        `${MAX_LEASES} leases exist, the limit; revoke leases that are no longer used`,
        KvErrorReason.LeasesFull,
      );
    }
    invariant(this.#nextLeaseId < Number.MAX_SAFE_INTEGER, "lease id overflow");
    const id = this.#nextLeaseId++;
    this.#leases.set(id, { ttlMs, keys: new Set() });
    return okResult({ op: "leaseGrant", id, ttlMs });
  }

  /** Revokes each named lease: its keys are deleted in key order (the same order on every replica). */
  #revoke(command: KvLeaseRevokeCommand): CommandResult<KvResult> {
    let revoked = 0;
    let deletedKeys = 0;
    for (const id of command.ids) {
      const lease = this.#leases.get(id);
      if (lease === undefined) continue;
      const keys = [...lease.keys].sort(compareKeys);
      for (const key of keys) {
        this.#remove(key, this.#records.get(key) as KvRecord);
        deletedKeys++;
      }
      this.#leases.delete(id);
      revoked++;
    }
    return okResult({ op: "leaseRevoke", revoked, deletedKeys, revision: this.#revision });
  }

  #bumpRevision(): void {
    invariant(this.#revision < Number.MAX_SAFE_INTEGER, "store revision overflow");
    this.#revision += 1;
  }

  /**
   * Writes `key` under `lease` (0: none), bumping the revision; returns an error result (changing
   * nothing) past the quota. The lease must have been checked ({@link #leaseRefusal}).
   *
   * Every change of a key goes through here or {@link #remove} — puts, compare-and-sets, txn
   * ops, and the deletes of a revoked or expired lease — so an observer of changes hooks in here.
   */
  #write(
    key: string,
    value: Uint8Array,
    previous: KvRecord | undefined,
    lease: number,
  ): CommandResult<KvResult> | undefined {
    const keyBytes = previous?.keyBytes ?? (utf8ByteLength(key) as number);
    const costBytes = keyBytes + value.length + ENTRY_OVERHEAD_BYTES;
    const newStoreBytes =
      this.#storeBytes - (previous === undefined ? 0 : recordCostBytes(previous)) + costBytes;
    if (newStoreBytes > this.#maxStoreBytes && newStoreBytes > this.#storeBytes) {
      return errorResult(
        "OVERLOADED",
        `writing ${key} would grow the store to ${newStoreBytes} bytes, past its quota of ` +
          `${this.#maxStoreBytes} bytes; delete keys to free space`,
        KvErrorReason.QuotaExceeded,
      );
    }
    this.#bumpRevision();
    if (this.#views.length > 0) this.#preserveForViews(key, previous);
    this.#records.set(key, {
      value,
      createRevision: previous?.createRevision ?? this.#revision,
      modRevision: this.#revision,
      version: (previous?.version ?? 0) + 1,
      keyBytes,
      lease,
    });
    if (previous === undefined) this.#keys.insert(key);
    if (previous !== undefined && previous.lease !== lease && previous.lease !== 0) {
      this.#leases.get(previous.lease)?.keys.delete(key);
    }
    if (lease !== 0) {
      const record = this.#leases.get(lease);
      invariant(record !== undefined, () => `write under unknown lease ${lease}`);
      record.keys.add(key);
    }
    this.#storeBytes = newStoreBytes;
    this.#observer?.({
      kind: "kv.put",
      key,
      value,
      createRevision: previous?.createRevision ?? this.#revision,
      modRevision: this.#revision,
      version: (previous?.version ?? 0) + 1,
    });
    return undefined;
  }

  /** Deletes `key` (which exists), bumping the revision and detaching it from its lease. See {@link #write}. */
  #remove(key: string, previous: KvRecord): void {
    this.#bumpRevision();
    if (this.#views.length > 0) this.#preserveForViews(key, previous);
    this.#records.delete(key);
    this.#keys.remove(key);
    this.#storeBytes -= recordCostBytes(previous);
    if (previous.lease !== 0) this.#leases.get(previous.lease)?.keys.delete(key);
    this.#observer?.({ kind: "kv.delete", key, revision: this.#revision });
  }

  #preserveForViews(key: string, previous: KvRecord | undefined): void {
    for (const view of this.#views) view.preserve(key, previous);
  }

  /** The entry of a stored record, with a copy of its value (callers may not mutate the store). */
  #entry(key: string, record: KvRecord): KvEntry {
    return {
      key,
      value: record.value.slice(),
      createRevision: record.createRevision,
      modRevision: record.modRevision,
      version: record.version,
    };
  }

  /**
   * The entry of `key` (its value a copy), or null. A read outside the log: linearizable only if
   * the runtime first waits for a ReadIndex. Throws `InvalidArgumentError` or `TooLargeError` for
   * an invalid key.
   */
  read(key: string): KvEntry | null {
    validateKey(key);
    const record = this.#records.get(key);
    return record === undefined ? null : this.#entry(key, record);
  }

  /**
   * One page of the keys matching `options`, in code point order, values copied. Stops at
   * `limit` entries or before {@link MAX_LIST_RESULT_BYTES} of keys and values (but returns at
   * least one matching entry). Throws `InvalidArgumentError` for a limit outside
   * 1..{@link MAX_LIST_LIMIT} or an ill-formed bound.
   */
  list(options: KvListOptions = {}): KvListResult {
    const limit = options.limit ?? DEFAULT_LIST_LIMIT;
    if (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT) {
      throw new InvalidArgumentError(
        `list limit must be an integer in 1..${MAX_LIST_LIMIT}, got ${limit}`,
      );
    }
    const prefix = options.prefix ?? "";
    for (const [name, bound] of [
      ["prefix", options.prefix],
      ["start", options.start],
      ["end", options.end],
    ] as const) {
      if (bound !== undefined && utf8ByteLength(bound) === undefined) {
        throw new InvalidArgumentError(`list ${name} is not well-formed Unicode`);
      }
    }
    const start =
      options.start === undefined || compareKeys(options.start, prefix) < 0
        ? prefix
        : options.start;
    const inRange = (key: string): boolean =>
      key.startsWith(prefix) && (options.end === undefined || compareKeys(key, options.end) < 0);

    const entries: KvEntry[] = [];
    let resultBytes = 0;
    let position = this.#keys.lowerBound(start);
    for (; ; position++) {
      const key = this.#keys.at(position);
      if (key === undefined || !inRange(key)) break;
      const record = this.#records.get(key) as KvRecord;
      const entryBytes = record.keyBytes + record.value.length;
      if (
        entries.length === limit ||
        (entries.length > 0 && resultBytes + entryBytes > MAX_LIST_RESULT_BYTES)
      ) {
        return { entries, revision: this.#revision, more: true, nextStart: key };
      }
      entries.push(this.#entry(key, record));
      resultBytes += entryBytes;
    }
    return { entries, revision: this.#revision, more: false };
  }

  /**
   * Serializes the store: magic "BXKV", u16 format version, u53 revision, u32 key count, then each
   * entry in key order (as in results: key, value, createRevision, modRevision, version; then its
   * lease u53), then u53 next lease id, u32 lease count and each lease (id u53, ttlMs u53) in id
   * order. Version 1 had neither the entries' leases nor the lease table. Throws nothing.
   */
  snapshot(): Uint8Array {
    // The exact size, so that the writer never grows and `finish` hands its buffer over without
    // a copy (the whole state is encoded while the event loop waits).
    const writer = new ByteWriter(this.#snapshotSizeBytes());
    this.#writeSnapshotHeader(writer);
    for (const key of this.#keys)
      writeSnapshotEntry(writer, key, this.#records.get(key) as KvRecord);
    this.#writeLeaseTable(writer);
    return writer.finish();
  }

  /**
   * Captures the store now and returns its snapshot (the bytes of {@link snapshot} at this call)
   * as a part to write a slice at a time, while commands keep executing: the key list is copied
   * (one pointer per key), the lease table encoded; every record replaced or deleted before the
   * view writes it is kept for the view until then. Release the part (`SlicedSnapshot` does once
   * complete or closed), or the store keeps records for it. A {@link restore} leaves the view on
   * the old records. Throws nothing.
   */
  captureSnapshot(): SnapshotPart {
    const header = new ByteWriter(SNAPSHOT_HEADER_BYTES);
    this.#writeSnapshotHeader(header);
    const leases = new ByteWriter(LEASE_TABLE_HEADER_BYTES + this.#leases.size * LEASE_BYTES);
    this.#writeLeaseTable(leases);
    const view = new KvSnapshotView(
      this.#records,
      this.#keys.toArray(),
      this.#snapshotSizeBytes() - SNAPSHOT_HEADER_BYTES - leases.lengthBytes,
      (released) => {
        this.#views = this.#views.filter((open) => open !== released);
      },
    );
    this.#views.push(view);
    return concatParts([bytesPart(header.finish()), view, bytesPart(leases.finish())]);
  }

  #snapshotSizeBytes(): number {
    return (
      SNAPSHOT_HEADER_BYTES +
      this.#storeBytes -
      this.#records.size * (ENTRY_OVERHEAD_BYTES - SNAPSHOT_ENTRY_BYTES) +
      LEASE_TABLE_HEADER_BYTES +
      this.#leases.size * LEASE_BYTES
    );
  }

  #writeSnapshotHeader(writer: ByteWriter): void {
    writer
      .raw(SNAPSHOT_MAGIC)
      .u16(KV_SNAPSHOT_FORMAT_VERSION)
      .u53(this.#revision)
      .u32(this.#records.size);
  }

  #writeLeaseTable(writer: ByteWriter): void {
    writer.u53(this.#nextLeaseId).u32(this.#leases.size);
    for (const [id, lease] of this.#leases) writer.u53(id).u53(lease.ttlMs);
  }

  /**
   * Replaces the store with a snapshot's. Throws `InvalidArgumentError` (bad magic, version,
   * order, revisions or structure) without changing anything.
   *
   * The restored values are views into `data`, which must never change afterwards: a copy per
   * value made a restart of 100,000 values spend most of its second allocating and first-touching
   * new memory. The price is that `data` stays in memory until the last restored value is
   * overwritten or deleted — at most one snapshot's size on top of the state.
   */
  restore(data: Uint8Array): void {
    const reader = new ByteReader(data, "kv snapshot");
    const magic = reader.rawView(SNAPSHOT_MAGIC.length);
    if (!bytesEqual(magic, SNAPSHOT_MAGIC)) throw reader.malformed("not a kv snapshot (bad magic)");
    const version = reader.u16();
    if (version < OLDEST_READABLE_SNAPSHOT_VERSION || version > KV_SNAPSHOT_FORMAT_VERSION) {
      throw reader.malformed(
        `unknown format version ${version}; this node reads versions ${OLDEST_READABLE_SNAPSHOT_VERSION} to ${KV_SNAPSHOT_FORMAT_VERSION}`,
      );
    }
    const revision = reader.u53();
    const count = reader.u32();
    const records = new Map<string, KvRecord>();
    const keys: string[] = [];
    let storeBytes = 0;
    for (let i = 0; i < count; i++) {
      const entry = readEntry(reader, "view");
      const previousKey = keys[keys.length - 1];
      if (previousKey !== undefined && compareKeys(previousKey, entry.key) >= 0) {
        throw reader.malformed(`key ${entry.key} is out of order`);
      }
      if (
        entry.modRevision > revision ||
        entry.version > entry.modRevision - entry.createRevision + 1
      ) {
        throw reader.malformed(`entry ${entry.key} has impossible revisions`);
      }
      const record: KvRecord = {
        value: entry.value,
        createRevision: entry.createRevision,
        modRevision: entry.modRevision,
        version: entry.version,
        keyBytes: utf8ByteLength(entry.key) as number,
        lease: version >= 2 ? reader.u53() : 0,
      };
      records.set(entry.key, record);
      keys.push(entry.key);
      storeBytes += recordCostBytes(record);
    }
    const leases = new Map<number, LeaseRecord>();
    let nextLeaseId = 1;
    if (version >= 2) {
      nextLeaseId = reader.u53();
      const leaseCount = reader.u32();
      let previousId = 0;
      for (let i = 0; i < leaseCount; i++) {
        const id = reader.u53();
        const ttlMs = reader.u53();
        if (id <= previousId || id >= nextLeaseId)
          throw reader.malformed(`lease ${id} is out of order`);
        if (ttlMs < MIN_LEASE_TTL_MS || ttlMs > MAX_LEASE_TTL_MS) {
          throw reader.malformed(`lease ${id} has ttl ${ttlMs} ms`);
        }
        leases.set(id, { ttlMs, keys: new Set() });
        previousId = id;
      }
      for (const key of keys) {
        const lease = (records.get(key) as KvRecord).lease;
        if (lease === 0) continue;
        const record = leases.get(lease);
        if (record === undefined) throw reader.malformed(`key ${key} names unknown lease ${lease}`);
        record.keys.add(key);
      }
    }
    reader.expectEnd();
    // Open views keep reading the old map, which nothing changes from now on.
    this.#views = [];
    this.#records = records;
    this.#keys = new SortedKeys();
    this.#keys.replaceWithSorted(keys);
    this.#revision = revision;
    this.#storeBytes = storeBytes;
    this.#leases = leases;
    this.#nextLeaseId = nextLeaseId;
  }
}

function matches(expected: KvExpectation, current: KvRecord | undefined): boolean {
  switch (expected.kind) {
    case "absent":
      return current === undefined;
    case "modRevision":
      return current !== undefined && current.modRevision === expected.modRevision;
    case "value":
      return current !== undefined && bytesEqual(current.value, expected.value);
  }
}
