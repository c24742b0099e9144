/**
 * Follows a VM's console log file (`<logDir>/<name>.log`, written by the drivers) as it grows,
 * for `vm logs --follow`: it watches the log directory (inotify through `fs.watch`) and reads
 * what was appended each time the file changes, so nothing is polled. A directory watch, not a
 * file watch, so that a rotation (the file renamed to `<name>.log.1`, a new one created) and a
 * file that does not exist yet are seen too. On a rotation it first reads what was left unread
 * of the old file (now `.1`, recognised by its inode), then the new file from its start.
 *
 * Some filesystems (NFS, some FUSE) deliver no watch events: a slow re-check every
 * {@link RECHECK_MS} bounds the delay there. Reads stop while the consumer is full (`text`
 * answered false) and go on at `resume()`.
 */
import { watch, type FSWatcher } from "node:fs";
import { open, stat } from "node:fs/promises";
import { join } from "node:path";
import { MAX_VM_LOG_READ_BYTES } from "./vm-log-reader.js";
import { checkVmName } from "./vm-driver.js";

/** How often the file is looked at without a watch event (a backstop, not the mechanism). */
export const RECHECK_MS = 5_000;

/** Where the follower's text goes. */
export interface VmLogFollowSink {
  /** New text of the log; false when the consumer is full (reading waits for `resume`). */
  text(text: string): boolean;
  /** The log was rotated: what follows is the new file's. */
  rotated(): void;
}

/** Follows one VM's log from a byte offset; see the module comment. */
export class VmLogFollower {
  readonly #path: string;
  readonly #sink: VmLogFollowSink;
  #offset: number;
  #inode: number | undefined;
  #decoder = new TextDecoder();
  #reading = false;
  #again = false;
  #paused = false;
  #closed = false;
  #watcher: FSWatcher | undefined;
  #recheck: ReturnType<typeof setInterval> | undefined;

  /**
   * Starts following `<logDir>/<name>.log` from byte `offset` of the file with inode `inode`
   * (undefined: whatever file is there, from `offset`).
   * @throws InvalidArgumentError for a name that cannot name a file; the watch's error if the
   *   directory cannot be watched.
   */
  constructor(
    logDir: string,
    name: string,
    from: { readonly offset: number; readonly inode: number | undefined },
    sink: VmLogFollowSink,
  ) {
    checkVmName(name);
    this.#path = join(logDir, `${name}.log`);
    this.#sink = sink;
    this.#offset = from.offset;
    this.#inode = from.inode;
    const file = `${name}.log`;
    this.#watcher = watch(logDir, { persistent: false }, (_type, changed) => {
      if (changed === null || changed === file) this.#kick();
    });
    this.#watcher.on("error", () => undefined);
    this.#recheck = setInterval(() => this.#kick(), RECHECK_MS);
    this.#recheck.unref();
    this.#kick();
  }

  /** The consumer drained: read on. */
  resume(): void {
    if (!this.#paused) return;
    this.#paused = false;
    this.#kick();
  }

  /** Stops watching. Idempotent. */
  close(): void {
    this.#closed = true;
    this.#watcher?.close();
    this.#watcher = undefined;
    clearInterval(this.#recheck);
  }

  #kick(): void {
    if (this.#closed || this.#paused) return;
    if (this.#reading) {
      this.#again = true;
      return;
    }
    this.#reading = true;
    void this.#readAll()
      // A read that fails (EIO from a failing disk) is tried again at the next change or
      // re-check, as a file that cannot be opened is; unhandled, it would end the node's process.
      .catch(() => undefined)
      .finally(() => {
        this.#reading = false;
        if (this.#again) {
          this.#again = false;
          this.#kick();
        }
      });
  }

  /** Reads until the end of the file (or until the consumer is full). Throws nothing. */
  async #readAll(): Promise<void> {
    for (;;) {
      if (this.#closed || this.#paused) return;
      let current;
      try {
        current = await stat(this.#path);
      } catch {
        return; // not there (yet, or between a rotation's rename and the new file)
      }
      if (this.#inode !== undefined && current.ino !== this.#inode) {
        // Rotated: what was left unread of the old file first, then the new one from 0.
        await this.#drainRotated(this.#inode);
        this.#sink.rotated();
        this.#decoder = new TextDecoder();
        this.#offset = 0;
      } else if (current.size < this.#offset) {
        // Truncated in place: start again.
        this.#sink.rotated();
        this.#decoder = new TextDecoder();
        this.#offset = 0;
      }
      this.#inode = current.ino;
      if (current.size === this.#offset) return;
      const read = await this.#readFrom(this.#path, current.ino);
      if (read === 0) return;
    }
  }

  /** The rest of the old file, if it is `<name>.log.1` now. */
  async #drainRotated(inode: number): Promise<void> {
    const old = `${this.#path}.1`;
    try {
      if ((await stat(old)).ino !== inode) return;
    } catch {
      return;
    }
    while (!this.#closed && !this.#paused && (await this.#readFrom(old, inode)) > 0) {
      // read on until its end
    }
  }

  /** Reads one piece of `path` at the offset and hands it on; the bytes read (0 at the end). */
  async #readFrom(path: string, inode: number): Promise<number> {
    let file;
    try {
      file = await open(path, "r");
    } catch {
      return 0;
    }
    try {
      const info = await file.stat();
      if (info.ino !== inode) return 0;
      const length = Math.min(MAX_VM_LOG_READ_BYTES, info.size - this.#offset);
      if (length <= 0) return 0;
      const buffer = new Uint8Array(length);
      const { bytesRead } = await file.read(buffer, 0, length, this.#offset);
      this.#offset += bytesRead;
      const text = this.#decoder.decode(buffer.subarray(0, bytesRead), { stream: true });
      if (!this.#closed && text.length > 0 && !this.#sink.text(text)) this.#paused = true;
      return bytesRead;
    } finally {
      await file.close();
    }
  }
}

/** The inode of `<logDir>/<name>.log`, or undefined when it does not exist. Throws nothing. */
export async function vmLogInode(logDir: string, name: string): Promise<number | undefined> {
  try {
    return (await stat(join(logDir, `${name}.log`))).ino;
  } catch {
    return undefined;
  }
}
