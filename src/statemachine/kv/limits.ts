/**
 * The key-value store's limits. Those that shape `apply` (key, value and store sizes) must be the
 * same on every replica; they change only as a cluster-wide upgrade.
 */

/** The longest key, in UTF-8 bytes. Keys are non-empty. */
export const MAX_KEY_BYTES = 1024;

/** The largest value, in bytes. */
export const MAX_VALUE_BYTES = 1024 * 1024;

/** What each key costs against the store quota on top of its key and value bytes. */
export const ENTRY_OVERHEAD_BYTES = 64;

/**
 * The default store quota: the sum over keys of key bytes, value bytes and
 * {@link ENTRY_OVERHEAD_BYTES}. A write that would grow the store past it fails with
 * `OVERLOADED` (reason `QUOTA_EXCEEDED`); writes that shrink the store always pass.
 */
export const DEFAULT_MAX_STORE_BYTES = 1024 * 1024 * 1024;

/** How many entries a list returns when the caller gives no limit. */
export const DEFAULT_LIST_LIMIT = 100;

/** The most entries one list returns. */
export const MAX_LIST_LIMIT = 1000;

/**
 * The most key and value bytes one list returns; it stops early (with `more`) rather than pass
 * it, but always returns at least one entry when one matches.
 */
export const MAX_LIST_RESULT_BYTES = 4 * 1024 * 1024;

/** The shortest lease, in ms: shorter ones would expire between two keep-alives. */
export const MIN_LEASE_TTL_MS = 1000;

/** The longest lease, in ms (a day). */
export const MAX_LEASE_TTL_MS = 24 * 60 * 60 * 1000;

/** The most leases the store holds; a grant past it fails with `OVERLOADED` (`LEASES_FULL`). */
export const MAX_LEASES = 100_000;

/** The most keys one lease holds, so that revoking it stays one bounded apply. */
export const MAX_KEYS_PER_LEASE = 10_000;

/** The most lease ids one revoke names (the leader's expiry batches stay this small). */
export const MAX_LEASE_IDS_PER_REVOKE = 1000;

/** The most compares of one txn. */
export const MAX_TXN_COMPARES = 64;

/** The most ops of one txn branch. */
export const MAX_TXN_OPS = 128;
