/**
 * A VM's log file, capped: when `<path>` would pass `maxBytes` it is renamed to `<path>.1`
 * (replacing the previous one) and a new `<path>` begins, so a VM never uses more than twice the
 * cap on disk however much it prints.
 *
 * It is a `Writable`, so a process's stdout and stderr can be piped into it with back-pressure: a
 * VM that prints faster than the disk takes its output waits on its pipe instead of growing the
 * agent's memory. Logging is best effort: when the disk fails the error is kept in
 * {@link RotatingLog.failure} and output is dropped from then on, so a full disk never blocks or
 * kills the VM.
 */
import { open, rename, type FileHandle } from "node:fs/promises";
import { Writable } from "node:stream";

/** An append-only log file rotated at a byte cap; see the module comment. */
export class RotatingLog extends Writable {
  private handle: FileHandle | undefined;
  private sizeBytes = 0;
  private error: Error | undefined;

  /**
   * Opens (creating or appending to) `path`; the directory must exist.
   * @param maxBytes bytes of `path` before it is rotated (≥ 1).
   */
  constructor(
    readonly path: string,
    private readonly maxBytes: number,
  ) {
    super({ decodeStrings: true });
  }

  /** The error that stopped logging, if one did. */
  get failure(): Error | undefined {
    return this.error;
  }

  /** Appends one line (a newline is added). */
  line(text: string): void {
    if (!this.writableEnded) this.write(`${text}\n`);
  }

  /** Ends the stream and resolves once everything written is in the file and it is closed. */
  finish(): Promise<void> {
    return new Promise((resolve) => this.end(() => resolve()));
  }

  override _construct(callback: (error?: Error | null) => void): void {
    this.openFile().then(
      () => callback(),
      (error: unknown) => {
        this.error = asError(error);
        callback();
      },
    );
  }

  override _write(chunk: Buffer, _encoding: BufferEncoding, callback: () => void): void {
    this.append(chunk).then(callback, (error: unknown) => {
      this.error ??= asError(error);
      callback();
    });
  }

  /**
   * Everything queued while the previous write was in flight goes out in one write: a guest's
   * console arrives in many small chunks, and one file write each made the log fall seconds
   * behind the console on a loaded machine.
   */
  override _writev(
    chunks: Array<{ chunk: Buffer; encoding: BufferEncoding }>,
    callback: () => void,
  ): void {
    const joined =
      chunks.length === 1
        ? (chunks[0] as { chunk: Buffer }).chunk
        : Buffer.concat(chunks.map((c) => c.chunk));
    this._write(joined, "utf8", callback); // the encoding is unused: decodeStrings makes every chunk a Buffer
  }

  override _final(callback: (error?: Error | null) => void): void {
    this.closeFile().then(
      () => callback(),
      () => callback(),
    );
  }

  override _destroy(error: Error | null, callback: (error?: Error | null) => void): void {
    this.closeFile().then(
      () => callback(error),
      () => callback(error),
    );
  }

  private async openFile(): Promise<void> {
    this.handle = await open(this.path, "a", 0o600);
    this.sizeBytes = (await this.handle.stat()).size;
  }

  private async closeFile(): Promise<void> {
    const handle = this.handle;
    this.handle = undefined;
    await handle?.close();
  }

  private async append(chunk: Uint8Array): Promise<void> {
    let offset = 0;
    while (offset < chunk.length && this.error === undefined && this.handle !== undefined) {
      if (this.sizeBytes >= this.maxBytes) await this.rotate();
      const take = Math.min(chunk.length - offset, this.maxBytes - this.sizeBytes);
      const { bytesWritten } = await this.handle.write(chunk, offset, take);
      offset += bytesWritten;
      this.sizeBytes += bytesWritten;
    }
  }

  private async rotate(): Promise<void> {
    await this.closeFile();
    await rename(this.path, `${this.path}.1`);
    await this.openFile();
  }
}

function asError(error: unknown): Error {
  return error instanceof Error ? error : new Error(String(error));
}
