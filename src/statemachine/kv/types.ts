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

/** Any key-value command. */
export type KvCommand = KvGetCommand | KvPutCommand | KvDeleteCommand | KvCompareAndSetCommand;

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

/** Any key-value result. */
export type KvResult = KvGetResult | KvPutResult | KvDeleteResult | KvCompareAndSetResult;

/** Reasons of the key-value store's own error results. */
export const KvErrorReason = {
  /** The write would grow the store past its quota. */
  QuotaExceeded: "QUOTA_EXCEEDED",
} as const;
/** One of the key-value store's error reasons. */
export type KvErrorReason = (typeof KvErrorReason)[keyof typeof KvErrorReason];
