/**
 * The key-value store's commands and results (etcd-like revisions).
 *
 * Revisions: the store revision starts at 0 and goes up by exactly 1 with each write that
 * changes the store (a put, a successful compare-and-set, a delete of an existing key). A key
 * records the revision that created it (`createRevision`), the revision of its last change
 * (`modRevision`) and how many times it was written since it was created (`version`, 1 at
 * creation). Deleting a key forgets it; writing it again starts a new life at version 1.
 */

/** A key's revisions. */
export interface KvRevisions {
  /** The store revision that created the key (since it was last deleted). */
  readonly createRevision: number;
  /** The store revision of the key's last write. */
  readonly modRevision: number;
  /** Writes since creation: 1 after the creating write. */
  readonly version: number;
}

/** A key with its value and revisions. */
export interface KvEntry extends KvRevisions {
  readonly key: string;
  readonly value: Uint8Array;
}

/** What a compare-and-set expects of the key's current state. */
export type KvExpectation =
  /** The key does not exist. */
  | { readonly kind: "absent" }
  /** The key exists and was last written at this store revision. */
  | { readonly kind: "modRevision"; readonly modRevision: number }
  /** The key exists and holds exactly these bytes. */
  | { readonly kind: "value"; readonly value: Uint8Array };

/** Reads a key through the log (a linearizable read without ReadIndex). Read-only. */
export interface KvGetCommand {
  readonly op: "get";
  readonly key: string;
}

/** Writes a value. */
export interface KvPutCommand {
  readonly op: "put";
  readonly key: string;
  readonly value: Uint8Array;
  /** Return the entry this put replaced, if any. Default false. */
  readonly returnPrevious?: boolean;
  /**
   * Attach the key to this lease: it is deleted when the lease is revoked or expires. Without
   * it a put detaches the key from any lease it had (as etcd's). The lease must exist.
   */
  readonly lease?: number;
}

/** Deletes a key. */
export interface KvDeleteCommand {
  readonly op: "delete";
  readonly key: string;
  /** Return the entry this delete removed, if any. Default false. */
  readonly returnPrevious?: boolean;
}

/** Writes `value` only if the key is as `expected`. */
export interface KvCompareAndSetCommand {
  readonly op: "cas";
  readonly key: string;
  readonly expected: KvExpectation;
  readonly value: Uint8Array;
}

/** Any key-value command on one key. */
export type KvKeyCommand = KvGetCommand | KvPutCommand | KvDeleteCommand | KvCompareAndSetCommand;

/** What a txn compare looks at: the key's value or one of its revisions, or its lease (0: none). */
export type KvCompareTarget = "value" | "version" | "createRevision" | "modRevision" | "lease";

/** How a txn compare relates the key's target to the operand. */
export type KvCompareOperator = "equal" | "notEqual" | "less" | "greater";

/**
 * One txn condition on a key. An absent key has version, createRevision, modRevision and lease
 * 0; its value compares unequal to every value (so `value notEqual x` holds for it).
 */
export type KvCompare =
  | {
      readonly key: string;
      readonly target: "value";
      readonly operator: KvCompareOperator;
      readonly value: Uint8Array;
    }
  | {
      readonly key: string;
      readonly target: Exclude<KvCompareTarget, "value">;
      readonly operator: KvCompareOperator;
      readonly number: number;
    };

/** One op of a txn branch: a get, a put (optionally under a lease) or a delete. */
export type KvTxnOp =
  | { readonly op: "get"; readonly key: string }
  | {
      readonly op: "put";
      readonly key: string;
      readonly value: Uint8Array;
      readonly lease?: number;
    }
  | { readonly op: "delete"; readonly key: string };

/**
 * A multi-key transaction, atomic in one log entry: if every compare holds, the `success` ops
 * run in order, else the `failure` ops. A branch writes each key at most once; each write takes
 * its own store revision, in op order. Bounded by `MAX_TXN_OPS` and `MAX_TXN_COMPARES`.
 */
export interface KvTxnCommand {
  readonly op: "txn";
  readonly compare: readonly KvCompare[];
  readonly success: readonly KvTxnOp[];
  readonly failure: readonly KvTxnOp[];
}

/** Creates a lease of `ttlMs`; the store picks its id (the next of a counter, from 1). */
export interface KvLeaseGrantCommand {
  readonly op: "leaseGrant";
  readonly ttlMs: number;
}

/**
 * Revokes leases: each is forgotten and its keys deleted (in key order). The leader proposes it
 * for expired leases (many ids, no session); clients for one. Unknown ids are skipped.
 */
export interface KvLeaseRevokeCommand {
  readonly op: "leaseRevoke";
  readonly ids: readonly number[];
}

/** Any key-value command. */
export type KvCommand = KvKeyCommand | KvTxnCommand | KvLeaseGrantCommand | KvLeaseRevokeCommand;

/** The result of a get: the entry, or null if the key does not exist. */
export interface KvGetResult {
  readonly op: "get";
  /** The store revision the read saw. */
  readonly revision: number;
  readonly entry: KvEntry | null;
}

/** The result of a put. */
export interface KvPutResult {
  readonly op: "put";
  /** The store revision of this write (the key's new `modRevision`). */
  readonly revision: number;
  /** The replaced entry, when `returnPrevious` was set and the key existed. */
  readonly previous?: KvEntry;
}

/** The result of a delete. */
export interface KvDeleteResult {
  readonly op: "delete";
  /** True if the key existed and is now gone. */
  readonly deleted: boolean;
  /** The store revision after the command (unchanged when nothing was deleted). */
  readonly revision: number;
  /** The removed entry, when `returnPrevious` was set and the key existed. */
  readonly previous?: KvEntry;
}

/** The result of a compare-and-set. A failed comparison is a result, not an error. */
export type KvCompareAndSetResult =
  /** The key matched and now holds the new value, written at `revision`. */
  | { readonly op: "cas"; readonly succeeded: true; readonly revision: number }
  /** The key did not match and is unchanged; `current` is its entry (null if absent). */
  | {
      readonly op: "cas";
      readonly succeeded: false;
      /** The store revision the comparison saw. */
      readonly revision: number;
      readonly current: KvEntry | null;
    };

/** What one txn op returned. */
export type KvTxnOpResult =
  | { readonly op: "get"; readonly entry: KvEntry | null }
  | { readonly op: "put"; readonly revision: number }
  | { readonly op: "delete"; readonly deleted: boolean };

/** The result of a txn: which branch ran and each of its ops' results. */
export interface KvTxnResult {
  readonly op: "txn";
  /** True if every compare held (the success branch ran). */
  readonly succeeded: boolean;
  /** The store revision after the txn. */
  readonly revision: number;
  readonly results: readonly KvTxnOpResult[];
}

/** The result of a lease grant. */
export interface KvLeaseGrantResult {
  readonly op: "leaseGrant";
  readonly id: number;
  readonly ttlMs: number;
}

/** The result of a lease revoke. */
export interface KvLeaseRevokeResult {
  readonly op: "leaseRevoke";
  /** How many of the ids named a lease (now revoked). */
  readonly revoked: number;
  /** How many keys the revoked leases deleted. */
  readonly deletedKeys: number;
  /** The store revision after the command. */
  readonly revision: number;
}

/** A lease as the store knows it (its expiry is the leader's, not replicated). */
export interface KvLease {
  readonly id: number;
  readonly ttlMs: number;
  /** How many keys are attached. */
  readonly keyCount: number;
}

/** Any key-value result. */
export type KvResult =
  | KvGetResult
  | KvPutResult
  | KvDeleteResult
  | KvCompareAndSetResult
  | KvTxnResult
  | KvLeaseGrantResult
  | KvLeaseRevokeResult;

/** Reasons of the key-value store's own error results. */
export const KvErrorReason = {
  /** The write would grow the store past its quota. */
  QuotaExceeded: "QUOTA_EXCEEDED",
  /** A put named a lease that does not exist (never granted, revoked or expired). */
  LeaseNotFound: "LEASE_NOT_FOUND",
  /** The lease table holds `MAX_LEASES` leases. */
  LeasesFull: "LEASES_FULL",
  /** The lease already holds `MAX_KEYS_PER_LEASE` keys. */
  LeaseKeysFull: "LEASE_KEYS_FULL",
} as const;
/** One of the key-value store's error reasons. */
export type KvErrorReason = (typeof KvErrorReason)[keyof typeof KvErrorReason];
