/**
 * The real {@link FileSystem}: `node:fs/promises`, so every disk operation runs on libuv's
 * thread pool and the event loop never blocks on it. Wired in by the composition roots only.
 */
import { constants } from "node:fs";
import { open, readdir, readFile, rename, rm, mkdir, stat, access } from "node:fs/promises";
import type { FileHandle as NodeFileHandle } from "node:fs/promises";
import type { FileHandle, FileSystem, OpenMode, OpenOptions } from "./fs.js";

const OPEN_FLAGS: Record<OpenMode, number> = {
  read: constants.O_RDONLY,
  readWrite: constants.O_RDWR,
  createExclusive: constants.O_RDWR | constants.O_CREAT | constants.O_EXCL,
};

class NodeFile implements FileHandle {
  constructor(
    private readonly handle: NodeFileHandle,
    readonly durableWrites: boolean,
  ) {}

  async read(buffer: Uint8Array, positionBytes: number): Promise<number> {
    const { bytesRead } = await this.handle.read(buffer, 0, buffer.byteLength, positionBytes);
    return bytesRead;
  }

  async write(data: Uint8Array, positionBytes: number): Promise<void> {
    let written = 0;
    // A positional write may be short (e.g. near a quota); loop until everything is written.
    while (written < data.byteLength) {
      const { bytesWritten } = await this.handle.write(
        data,
        written,
        data.byteLength - written,
        positionBytes + written,
      );
      written += bytesWritten;
    }
  }

  truncate(sizeBytes: number): Promise<void> {
    return this.handle.truncate(sizeBytes);
  }

  sync(): Promise<void> {
    return this.handle.sync();
  }

  datasync(): Promise<void> {
    return this.handle.datasync();
  }

  async sizeBytes(): Promise<number> {
    return (await this.handle.stat()).size;
  }

  close(): Promise<void> {
    return this.handle.close();
  }
}

/** The file system of this machine, through `node:fs/promises`. */
export class NodeFileSystem implements FileSystem {
  /** @inheritdoc */
  async open(path: string, mode: OpenMode, options: OpenOptions = {}): Promise<FileHandle> {
    const durableWrites = options.durableWrites === true && mode !== "read";
    const flags = OPEN_FLAGS[mode] | (durableWrites ? constants.O_DSYNC : 0);
    // 0600: the log and snapshots hold the cluster's data, secrets included (README, Security).
    return new NodeFile(await open(path, flags, 0o600), durableWrites);
  }

  /** @inheritdoc */
  async readFile(path: string): Promise<Uint8Array> {
    const buffer = await readFile(path);
    return new Uint8Array(buffer.buffer, buffer.byteOffset, buffer.byteLength);
  }

  /** @inheritdoc */
  rename(from: string, to: string): Promise<void> {
    return rename(from, to);
  }

  /** @inheritdoc */
  remove(path: string): Promise<void> {
    return rm(path);
  }

  /** @inheritdoc */
  list(dir: string): Promise<string[]> {
    return readdir(dir);
  }

  /** @inheritdoc */
  async mkdir(dir: string): Promise<void> {
    await mkdir(dir, { recursive: true, mode: 0o700 });
  }

  /** @inheritdoc */
  async syncDirectory(dir: string): Promise<void> {
    // Opening a directory read-only and fsyncing it makes its entries durable on Linux.
    const handle = await open(dir, constants.O_RDONLY);
    try {
      await handle.sync();
    } finally {
      await handle.close();
    }
  }

  /** @inheritdoc */
  async exists(path: string): Promise<boolean> {
    try {
      await access(path);
      return true;
    } catch {
      return false;
    }
  }

  /** @inheritdoc */
  async stat(path: string): Promise<{ readonly sizeBytes: number }> {
    return { sizeBytes: (await stat(path)).size };
  }

  /** @inheritdoc */
  processId(): number {
    return process.pid;
  }

  /** @inheritdoc */
  isProcessAlive(pid: number): boolean {
    try {
      // Signal 0 checks existence and permission without delivering anything.
      process.kill(pid, 0);
      return true;
    } catch (error) {
      // EPERM: it exists but belongs to someone else.
      return (error as { code?: unknown }).code === "EPERM";
    }
  }
}
