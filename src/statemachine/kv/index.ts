/** The key-value state machine's public face. */
export {
  DEFAULT_LIST_LIMIT,
  DEFAULT_MAX_STORE_BYTES,
  ENTRY_OVERHEAD_BYTES,
  MAX_KEY_BYTES,
  MAX_LIST_LIMIT,
  MAX_LIST_RESULT_BYTES,
  MAX_VALUE_BYTES,
} from "./limits.js";
export * from "./types.js";
export {
  KV_COMMAND_FORMAT_VERSION,
  decodeKvCommand,
  encodeKvCommand,
  validateKey,
  validateKvCommand,
} from "./command-codec.js";
export { decodeKvResult, encodeKvResult } from "./result-codec.js";
export { compareKeys } from "./sorted-keys.js";
export {
  KV_SNAPSHOT_FORMAT_VERSION,
  KvStore,
  type KvListOptions,
  type KvListResult,
  type KvStoreOptions,
} from "./store.js";
