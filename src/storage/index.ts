/**
 * The storage layer's public face: the `LogStore` port, its in-memory twin, the write-ahead-log
 * store (Blixard's embedded default) and the file-system port with its real and simulated
 * implementations. `NodeFileSystem` (`node-fs.ts`) is left out on purpose: only composition roots
 * import the real disk, so the simulator never pulls `node:fs` in.
 */
export type { LogStore, LogUpdate } from "./log-store.js";
export { MemoryLogStore } from "./memory-log-store.js";
export {
  WalLogStore,
  WAL_LOG_STORE_DEFAULTS,
  type WalLogStoreOptions,
  type WalRecoveryReport,
} from "./wal-log-store.js";
export { Wal, WAL_DEFAULTS, type SyncObserver, type WalOptions, type WalStats } from "./wal.js";
export {
  FileSystemError,
  hasErrorCode,
  joinPath,
  type FileHandle,
  type FileSystem,
  type OpenMode,
} from "./fs.js";
export {
  MemoryFileSystem,
  type CrashOptions,
  type MemoryFsCounters,
  type MemoryFsOperation,
} from "./memory-fs.js";
