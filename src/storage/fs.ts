/**
 * The small file-system port the write-ahead log and snapshot files are written against. The
 * real implementation ({@link NodeFileSystem} in `node-fs.ts`) uses `node:fs/promises`, so the
 * event loop never waits on the disk; the in-memory one (`memory-fs.ts`) injects crashes, torn
 * writes and flipped bits, so the simulator and the tests run the very same storage code.
 *
 * Errors use Node's vocabulary: a missing file rejects with an error whose `code` is `ENOENT`,
 * an existing one (exclusive create) with `EEXIST`. Paths are `/`-separated strings.
 */

/** How {@link FileSystem.open} opens a file. */
export type OpenMode =
  /** Read only; the file must exist (`ENOENT` otherwise). */
  | "read"
  /** Read and write; the file must exist (`ENOENT` otherwise). */
  | "readWrite"
  /** Read and write a new, empty file; `EEXIST` if it exists already. */
  | "createExclusive";

/** Options of {@link FileSystem.open}. */
export interface OpenOptions {
  /**
   * Each write resolves only once its data, and the size needed to read it back, are durable:
   * a write and its fdatasync in one trip to the disk (`O_DSYNC`), where a write followed by
   * `datasync()` takes two trips through the thread pool. Ignored for `read`.
   */
  readonly durableWrites?: boolean;
}

/** An open file. Every method rejects once the file (or the simulated machine) is gone. */
export interface FileHandle {
  /** True if each write is durable once it resolves (opened with `durableWrites`). */
  readonly durableWrites: boolean;
  /** Reads into `buffer` from `positionBytes`; resolves with the bytes read (0 at the end). */
  read(buffer: Uint8Array, positionBytes: number): Promise<number>;
  /** Writes all of `data` at `positionBytes`, growing the file if needed. */
  write(data: Uint8Array, positionBytes: number): Promise<void>;
  /** Cuts (or zero-extends) the file to `sizeBytes`. */
  truncate(sizeBytes: number): Promise<void>;
  /** Makes the file's data and metadata durable (fsync). */
  sync(): Promise<void>;
  /** Makes the file's data (and the metadata needed to read it, e.g. its size) durable (fdatasync). */
  datasync(): Promise<void>;
  /** The file's current size in bytes. */
  sizeBytes(): Promise<number>;
  /** Closes the handle. */
  close(): Promise<void>;
}

/** The file-system operations the storage layer needs, and nothing more. */
export interface FileSystem {
  /** Opens `path` as `mode` and `options` say. */
  open(path: string, mode: OpenMode, options?: OpenOptions): Promise<FileHandle>;
  /** The whole content of `path`, in a new buffer the caller owns (WAL entries are views into it). */
  readFile(path: string): Promise<Uint8Array>;
  /** Atomically replaces `to` with `from` (durable only after {@link syncDirectory}). */
  rename(from: string, to: string): Promise<void>;
  /** Deletes the file `path` (durable only after {@link syncDirectory}). */
  remove(path: string): Promise<void>;
  /** The names (not paths) of the entries of directory `dir`, in no particular order. */
  list(dir: string): Promise<string[]>;
  /** Creates directory `dir` and its parents; does nothing if it exists. */
  mkdir(dir: string): Promise<void>;
  /** Makes the creations, renames and removals of entries in `dir` durable (fsync of the directory). */
  syncDirectory(dir: string): Promise<void>;
  /** True if `path` exists. */
  exists(path: string): Promise<boolean>;
  /** The size of the file `path`. */
  stat(path: string): Promise<{ readonly sizeBytes: number }>;
  /** The id of this process, written into the data directory's lock file. */
  processId(): number;
  /** True if the process `pid` still runs (a lock held by a dead process is stale). */
  isProcessAlive(pid: number): boolean;
}

/** `dir` and `name` joined with one `/`. Never throws. */
export function joinPath(dir: string, name: string): string {
  return dir.endsWith("/") ? `${dir}${name}` : `${dir}/${name}`;
}

/** True if `error` is a file-system error with the Node error code `code` (e.g. `ENOENT`). */
export function hasErrorCode(error: unknown, code: string): boolean {
  return (
    typeof error === "object" &&
    error !== null &&
    "code" in error &&
    (error as { code: unknown }).code === code
  );
}

/**
 * True if `error` says the disk (or the user's quota) has no room left: `ENOSPC` or `EDQUOT`.
 * A write that failed so wrote nothing durable and may be retried once space is freed; an
 * fsync that failed so may not (see the WAL).
 */
export function isNoSpaceError(error: unknown): boolean {
  return hasErrorCode(error, "ENOSPC") || hasErrorCode(error, "EDQUOT");
}

/** An error with a Node-style `code`, as the in-memory file system raises them. */
export class FileSystemError extends Error {
  /** @param code a Node error code such as `ENOENT`, `EEXIST`, `EIO`. */
  constructor(
    readonly code: string,
    message: string,
  ) {
    super(`${code}: ${message}`);
    this.name = "FileSystemError";
  }
}
