/**
 * An in-memory {@link FileSystem} that can crash. It keeps, for every file, what is in the
 * "page cache" (what a running process reads) apart from what is durable, and, for every
 * directory, which entries are durable. {@link MemoryFileSystem.crash} throws away whatever was
 * not made durable (or keeps a torn prefix of it), the way a power cut does; {@link
 * MemoryFileSystem.flipBit} simulates a disk that returns bad data. The simulator runs the real
 * WAL on it, and the storage tests use it to prove that every fault ends as a truncated tail or
 * a loud `StorageCorruptError`.
 *
 * Deterministic: randomness only comes from the `Random` passed to `crash`.
 */
import type { Random } from "../common/random.js";
import {
  FileSystemError,
  type FileHandle,
  type FileSystem,
  type OpenMode,
  type OpenOptions,
} from "./fs.js";

/** A growable byte buffer: the content of a file (current or durable). */
class Bytes {
  private buffer = new Uint8Array(0);
  sizeBytes = 0;

  view(): Uint8Array {
    return this.buffer.subarray(0, this.sizeBytes);
  }

  copy(): Bytes {
    const copy = new Bytes();
    copy.buffer = this.buffer.slice(0, this.sizeBytes);
    copy.sizeBytes = this.sizeBytes;
    return copy;
  }

  write(data: Uint8Array, positionBytes: number): void {
    const end = positionBytes + data.byteLength;
    this.ensureCapacity(end);
    if (positionBytes > this.sizeBytes) this.buffer.fill(0, this.sizeBytes, positionBytes);
    this.buffer.set(data, positionBytes);
    this.sizeBytes = Math.max(this.sizeBytes, end);
  }

  truncate(sizeBytes: number): void {
    this.ensureCapacity(sizeBytes);
    if (sizeBytes > this.sizeBytes) this.buffer.fill(0, this.sizeBytes, sizeBytes);
    this.sizeBytes = sizeBytes;
  }

  private ensureCapacity(sizeBytes: number): void {
    if (sizeBytes <= this.buffer.byteLength) return;
    const grown = new Uint8Array(Math.max(sizeBytes, this.buffer.byteLength * 2, 4096));
    grown.set(this.buffer.subarray(0, this.sizeBytes));
    this.buffer = grown;
  }
}

/** A change to a file's content that is not durable yet. */
type PendingChange =
  | { readonly kind: "write"; readonly data: Uint8Array; readonly positionBytes: number }
  | { readonly kind: "truncate"; readonly sizeBytes: number };

/** One file: its content as a process sees it, what is durable, and the changes in between. */
class MemoryFile {
  current = new Bytes();
  durable = new Bytes();
  pending: PendingChange[] = [];

  apply(change: PendingChange): PendingChange {
    this.pending.push(change);
    if (change.kind === "write") this.current.write(change.data, change.positionBytes);
    else this.current.truncate(change.sizeBytes);
    return change;
  }

  sync(): void {
    for (const change of this.pending) applyChange(this.durable, change);
    this.pending = [];
  }

  /**
   * Makes one pending change durable and no other, as an `O_DSYNC` write flushes only its own
   * range: earlier unsynced writes elsewhere in the file stay exposed to a crash.
   */
  syncOne(change: PendingChange): void {
    const at = this.pending.indexOf(change);
    if (at < 0) return;
    applyChange(this.durable, change);
    this.pending.splice(at, 1);
  }
}

function applyChange(bytes: Bytes, change: PendingChange): void {
  if (change.kind === "write") bytes.write(change.data, change.positionBytes);
  else bytes.truncate(change.sizeBytes);
}

/** The file-system operations a fault can be injected into. */
export type MemoryFsOperation =
  | "open"
  | "read"
  | "write"
  | "truncate"
  | "sync"
  | "datasync"
  | "rename"
  | "remove"
  | "syncDirectory";

/** What a crash does with the changes that were not made durable. */
export interface CrashOptions {
  /**
   * `lose` (default): every change not yet fsynced is lost. `keep`: they all survive (a process
   * crash, not a power cut: the page cache outlives the process). `tornPrefix`: per file, a
   * random prefix of them survives and the next write is torn (a random prefix of its bytes).
   */
  readonly unsyncedWrites?: "lose" | "keep" | "tornPrefix";
  /** The randomness for `tornPrefix`. Required with it. */
  readonly random?: Random;
}

/** Counters of the operations that reached the file system, for tests and benchmarks. */
export interface MemoryFsCounters {
  writes: number;
  bytesWritten: number;
  /** `sync` and `datasync` calls on files. */
  fileSyncs: number;
  directorySyncs: number;
}

/** Options of a {@link MemoryFileSystem}. */
export interface MemoryFileSystemOptions {
  /**
   * Awaited before every operation completes: the simulator passes its scheduler's latency
   * here. Default: resolve at once (on a later microtask).
   */
  readonly delay?: (operation: MemoryFsOperation) => Promise<void>;
}

function parentOf(path: string): string {
  const slash = path.lastIndexOf("/");
  return slash <= 0 ? "/" : path.slice(0, slash);
}

function normalize(path: string): string {
  return path.length > 1 && path.endsWith("/") ? path.slice(0, -1) : path;
}

/** An in-memory file system with crashes and fault injection. See the module comment. */
export class MemoryFileSystem implements FileSystem {
  /** Entries as a running process sees them. */
  private files = new Map<string, MemoryFile>();
  /** Entries whose directory entry is durable (survive a crash). */
  private durableFiles = new Map<string, MemoryFile>();
  private readonly directories = new Set<string>(["/"]);
  /** Bumped by every crash: handles opened before it fail (their process died). */
  private generation = 0;
  private pid = 1000;
  private readonly delay: ((operation: MemoryFsOperation) => Promise<void>) | undefined;
  /** Returns true to make an operation fail with EIO (and change nothing). */
  failWhen: (operation: MemoryFsOperation, path: string) => boolean = () => false;
  /**
   * The disk's size: a write that would make the files (as a process sees them) larger fails
   * with ENOSPC after writing the part that fits, as a real file system does. Undefined (the
   * default) is unlimited; set it below {@link usedBytes} to fill the disk, raise it to free it.
   */
  capacityBytes: number | undefined = undefined;
  /** Operation counters since creation (reset them by assigning zeros). */
  readonly counters: MemoryFsCounters = {
    writes: 0,
    bytesWritten: 0,
    fileSyncs: 0,
    directorySyncs: 0,
  };

  /** @param options see {@link MemoryFileSystemOptions}. */
  constructor(options: MemoryFileSystemOptions = {}) {
    this.delay = options.delay;
  }

  private async step(operation: MemoryFsOperation, path: string): Promise<void> {
    if (this.delay === undefined) await Promise.resolve();
    else await this.delay(operation);
    if (this.failWhen(operation, path)) {
      throw new FileSystemError("EIO", `injected fault on ${operation} of ${path}`);
    }
  }

  private file(path: string): MemoryFile {
    const file = this.files.get(normalize(path));
    if (file === undefined) throw new FileSystemError("ENOENT", `no such file ${path}`);
    return file;
  }

  private checkParent(path: string): void {
    if (!this.directories.has(parentOf(normalize(path)))) {
      throw new FileSystemError("ENOENT", `no such directory ${parentOf(path)}`);
    }
  }

  /** @inheritdoc */
  async open(path: string, mode: OpenMode, options: OpenOptions = {}): Promise<FileHandle> {
    await this.step("open", path);
    const key = normalize(path);
    let file = this.files.get(key);
    if (mode === "createExclusive") {
      this.checkParent(key);
      if (file !== undefined || this.directories.has(key)) {
        throw new FileSystemError("EEXIST", `${path} exists`);
      }
      file = new MemoryFile();
      this.files.set(key, file);
    } else if (file === undefined) {
      throw new FileSystemError("ENOENT", `no such file ${path}`);
    }
    return this.handle(
      key,
      file,
      mode !== "read",
      options.durableWrites === true && mode !== "read",
    );
  }

  private handle(
    path: string,
    file: MemoryFile,
    writable: boolean,
    durableWrites: boolean,
  ): FileHandle {
    const generation = this.generation;
    let closed = false;
    const check = (): void => {
      if (closed) throw new FileSystemError("EBADF", `${path} is closed`);
      if (generation !== this.generation) {
        throw new FileSystemError("EBADF", `${path} was opened before a crash`);
      }
    };
    const checkWritable = (): void => {
      check();
      if (!writable) throw new FileSystemError("EBADF", `${path} is open read-only`);
    };
    return {
      durableWrites,
      read: async (buffer, positionBytes) => {
        await this.step("read", path);
        check();
        const content = file.current.view();
        const available = Math.max(
          0,
          Math.min(buffer.byteLength, content.byteLength - positionBytes),
        );
        buffer.set(content.subarray(positionBytes, positionBytes + available));
        return available;
      },
      write: async (data, positionBytes) => {
        await this.step("write", path);
        checkWritable();
        const growthBytes = Math.max(0, positionBytes + data.byteLength - file.current.sizeBytes);
        const freeBytes =
          this.capacityBytes === undefined ? Infinity : this.capacityBytes - this.usedBytes();
        // Copy: the caller may reuse its buffer, the "disk" must not change with it.
        const fitting =
          growthBytes <= freeBytes
            ? data.slice()
            : data.slice(0, Math.max(0, file.current.sizeBytes + freeBytes - positionBytes));
        const change =
          fitting.byteLength > 0
            ? file.apply({ kind: "write", data: fitting, positionBytes })
            : undefined;
        this.counters.writes++;
        this.counters.bytesWritten += fitting.byteLength;
        if (fitting.byteLength < data.byteLength) {
          throw new FileSystemError("ENOSPC", `no space left on device writing ${path}`);
        }
        if (durableWrites && change !== undefined) {
          // O_DSYNC: the write and its flush, one call. A crash before the flush loses or tears
          // the write like any unsynced one, and a fault injected into "datasync" fails it.
          await this.step("datasync", path);
          check();
          file.syncOne(change);
          this.counters.fileSyncs++;
        }
      },
      truncate: async (sizeBytes) => {
        await this.step("truncate", path);
        checkWritable();
        file.apply({ kind: "truncate", sizeBytes });
      },
      sync: async () => {
        await this.step("sync", path);
        check();
        file.sync();
        this.counters.fileSyncs++;
      },
      datasync: async () => {
        await this.step("datasync", path);
        check();
        file.sync();
        this.counters.fileSyncs++;
      },
      sizeBytes: () => {
        check();
        return Promise.resolve(file.current.sizeBytes);
      },
      close: () => {
        closed = true;
        return Promise.resolve();
      },
    };
  }

  /** Bytes the files take as a process sees them (the measure of {@link capacityBytes}). */
  usedBytes(): number {
    let total = 0;
    for (const file of new Set(this.files.values())) total += file.current.sizeBytes;
    return total;
  }

  /** @inheritdoc */
  async readFile(path: string): Promise<Uint8Array> {
    await this.step("read", path);
    return this.file(path).current.view().slice();
  }

  /** @inheritdoc */
  async rename(from: string, to: string): Promise<void> {
    await this.step("rename", from);
    const file = this.file(from);
    this.checkParent(to);
    this.files.delete(normalize(from));
    this.files.set(normalize(to), file);
  }

  /** @inheritdoc */
  async remove(path: string): Promise<void> {
    await this.step("remove", path);
    this.file(path);
    this.files.delete(normalize(path));
  }

  /** @inheritdoc */
  async list(dir: string): Promise<string[]> {
    await Promise.resolve();
    const key = normalize(dir);
    if (!this.directories.has(key)) throw new FileSystemError("ENOENT", `no such directory ${dir}`);
    const names: string[] = [];
    for (const path of [...this.files.keys(), ...this.directories]) {
      if (path !== key && parentOf(path) === key) names.push(path.slice(path.lastIndexOf("/") + 1));
    }
    return names;
  }

  /** @inheritdoc Directories are durable at once (the storage creates them only at startup). */
  async mkdir(dir: string): Promise<void> {
    await Promise.resolve();
    let path = normalize(dir);
    while (path !== "/" && path !== "" && !this.directories.has(path)) {
      if (this.files.has(path)) throw new FileSystemError("EEXIST", `${path} is a file`);
      this.directories.add(path);
      path = parentOf(path);
    }
  }

  /** @inheritdoc */
  async syncDirectory(dir: string): Promise<void> {
    await this.step("syncDirectory", dir);
    const key = normalize(dir);
    if (!this.directories.has(key)) throw new FileSystemError("ENOENT", `no such directory ${dir}`);
    for (const path of [...this.durableFiles.keys()]) {
      if (parentOf(path) === key && this.files.get(path) === undefined) {
        this.durableFiles.delete(path);
      }
    }
    for (const [path, file] of this.files) {
      if (parentOf(path) === key) this.durableFiles.set(path, file);
    }
    this.counters.directorySyncs++;
  }

  /** @inheritdoc */
  async exists(path: string): Promise<boolean> {
    await Promise.resolve();
    const key = normalize(path);
    return this.files.has(key) || this.directories.has(key);
  }

  /** @inheritdoc */
  async stat(path: string): Promise<{ readonly sizeBytes: number }> {
    await Promise.resolve();
    return { sizeBytes: this.file(path).current.sizeBytes };
  }

  /** @inheritdoc The simulated process; a new one after every {@link crash}. */
  processId(): number {
    return this.pid;
  }

  /** @inheritdoc Only the current simulated process is alive. */
  isProcessAlive(pid: number): boolean {
    return pid === this.pid;
  }

  /**
   * Simulates a power cut (or, with `unsyncedWrites: "keep"`, a process kill): only durable
   * directory entries survive, each file keeps its durable content plus whatever
   * `options.unsyncedWrites` says, every open handle dies and a new process id begins.
   */
  crash(options: CrashOptions = {}): void {
    const mode = options.unsyncedWrites ?? "lose";
    let survivors: Map<string, MemoryFile>;
    if (mode === "keep") {
      // A killed process loses nothing the kernel already has, directory entries included.
      for (const file of this.files.values()) file.sync();
      survivors = new Map(this.files);
    } else {
      survivors = new Map(this.durableFiles);
      for (const file of new Set(survivors.values())) this.settle(file, mode, options.random);
    }
    for (const file of survivors.values()) file.current = file.durable.copy();
    this.files = survivors;
    this.durableFiles = new Map(survivors);
    this.generation++;
    this.pid++;
  }

  private settle(file: MemoryFile, mode: "lose" | "tornPrefix", random?: Random): void {
    if (mode === "tornPrefix" && file.pending.length > 0) {
      if (random === undefined) throw new Error("crash with tornPrefix needs a random source");
      const kept = random.int(file.pending.length + 1);
      for (const change of file.pending.slice(0, kept)) applyChange(file.durable, change);
      const torn = file.pending[kept];
      if (torn?.kind === "write") {
        const length = random.int(torn.data.byteLength);
        applyChange(file.durable, {
          kind: "write",
          data: torn.data.subarray(0, length),
          positionBytes: torn.positionBytes,
        });
      }
    }
    file.pending = [];
  }

  /**
   * Flips bit `bit` (0–7) of the byte at `offsetBytes` of `path`, in the durable and the
   * current content alike: a disk that returns other bytes than were written.
   * @throws FileSystemError ENOENT, or EINVAL if the offset is past the end of the file.
   */
  flipBit(path: string, offsetBytes: number, bit = 0): void {
    const file = this.file(path);
    for (const bytes of [file.current, file.durable]) {
      if (offsetBytes >= bytes.sizeBytes) {
        throw new FileSystemError("EINVAL", `offset ${offsetBytes} is past the end of ${path}`);
      }
      const view = bytes.view();
      view[offsetBytes] = (view[offsetBytes] ?? 0) ^ (1 << bit);
    }
  }

  /** The current content of `path` (a copy), for tests. @throws FileSystemError ENOENT. */
  contentOf(path: string): Uint8Array {
    return this.file(path).current.view().slice();
  }

  /** Replaces the content of `path` (durably), for tests that forge files. */
  setContent(path: string, content: Uint8Array): void {
    const key = normalize(path);
    this.checkParent(key);
    const file = new MemoryFile();
    file.current.write(content, 0);
    file.durable.write(content, 0);
    this.files.set(key, file);
    this.durableFiles.set(key, file);
  }
}
