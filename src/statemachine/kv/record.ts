/** How the store keeps a key (private to the kv folder: the store and the txn compare read it). */

/** A key's stored state. */
export interface KvRecord {
  readonly value: Uint8Array;
  readonly createRevision: number;
  readonly modRevision: number;
  readonly version: number;
  /** UTF-8 length of the key. */
  readonly keyBytes: number;
  /** The lease the key is attached to, 0 for none. */
  readonly lease: number;
}
