/**
 * The audit log: one JSON line per mutating API request (time, identity, route, target, outcome,
 * forwarding) in `<dataDir>/audit.log`, mode 0600, rotated by size (`audit.log.1` … `.N`, the
 * oldest dropped). Lines are queued in memory and written by one async pump, so a request never
 * waits for the disk. The pump starts `flushDelayMs` after the first queued line, so that lines
 * arriving meanwhile share one write (a write costs far more than a line; one per request was a
 * tenth of a leader's CPU at one write in flight); a crash of the process can lose the lines of
 * that window. If the disk falls far behind, lines are dropped and counted, and the count
 * is written as a line of its own once the disk keeps up again. Callers must never put secrets
 * in an entry (the server writes identities by accessor or name, targets by key or id).
 */
import { open, rename, stat, type FileHandle } from "node:fs/promises";

/** One audit record (the writer adds nothing but the newline). */
export type AuditEntry = Readonly<Record<string, unknown>>;

/** Where the server sends audit records. */
export interface AuditSink {
  /** Queues one record; never blocks, never throws. */
  record(entry: AuditEntry): void;
}

/** Options of {@link AuditLog.open}. */
export interface AuditLogOptions {
  /** Rotate once the file would pass this size. Default 64 MiB. */
  readonly maxBytes?: number;
  /** Rotated files kept beside the live one. Default 5. */
  readonly keepFiles?: number;
  /** How long a queued line may wait for others to share its write. Default 50 ms. */
  readonly flushDelayMs?: number;
}

/** The default time a queued audit line waits for others before it is written. */
export const DEFAULT_AUDIT_FLUSH_DELAY_MS = 50;

/** The default size at which the audit log rotates. */
export const DEFAULT_AUDIT_LOG_MAX_BYTES = 64 * 1024 * 1024;
const DEFAULT_KEEP_FILES = 5;
/** Queued bytes beyond which new lines are dropped (and counted) rather than held in memory. */
const MAX_QUEUED_BYTES = 8 * 1024 * 1024;

/** A size-rotated JSON-lines file; see the module comment. */
export class AuditLog implements AuditSink {
  readonly path: string;
  readonly #maxBytes: number;
  readonly #keepFiles: number;
  readonly #flushDelayMs: number;
  #delay: NodeJS.Timeout | undefined;
  #handle: FileHandle;
  #sizeBytes: number;
  #queue: string[] = [];
  #queuedBytes = 0;
  #dropped = 0;
  #pump: Promise<void> | undefined;
  #closed = false;
  /** The error that stopped writing, if one did (writing is best effort and never throws). */
  failure: Error | undefined;

  private constructor(
    path: string,
    handle: FileHandle,
    sizeBytes: number,
    options: AuditLogOptions,
  ) {
    this.path = path;
    this.#handle = handle;
    this.#sizeBytes = sizeBytes;
    this.#maxBytes = options.maxBytes ?? DEFAULT_AUDIT_LOG_MAX_BYTES;
    this.#keepFiles = options.keepFiles ?? DEFAULT_KEEP_FILES;
    this.#flushDelayMs = options.flushDelayMs ?? DEFAULT_AUDIT_FLUSH_DELAY_MS;
  }

  /** Opens (creating, mode 0600, or appending to) `path`. @throws the file system's error. */
  static async open(path: string, options: AuditLogOptions = {}): Promise<AuditLog> {
    const handle = await open(path, "a", 0o600);
    const sizeBytes = (await stat(path)).size;
    return new AuditLog(path, handle, sizeBytes, options);
  }

  /** @inheritdoc */
  record(entry: AuditEntry): void {
    if (this.#closed) return;
    const line = `${JSON.stringify(entry)}\n`;
    if (this.#queuedBytes + line.length > MAX_QUEUED_BYTES) {
      this.#dropped++;
      return;
    }
    this.#queue.push(line);
    this.#queuedBytes += line.length;
    if (this.#pump !== undefined || this.#delay !== undefined) return;
    if (this.#flushDelayMs <= 0) {
      this.#startPump();
      return;
    }
    this.#delay = setTimeout(() => this.#startPump(), this.#flushDelayMs);
    // A pending write must not keep a stopping process alive: close() flushes it.
    this.#delay.unref();
  }

  /** Resolves once everything queued so far is in the file. */
  async flush(): Promise<void> {
    if (this.#delay !== undefined) this.#startPump();
    while (this.#pump !== undefined) await this.#pump;
  }

  #startPump(): void {
    clearTimeout(this.#delay);
    this.#delay = undefined;
    this.#pump ??= this.#drain().finally(() => (this.#pump = undefined));
  }

  /** Writes what is queued and closes the file. Throws nothing. */
  async close(): Promise<void> {
    await this.flush();
    this.#closed = true;
    await this.#handle.close().catch(() => undefined);
  }

  async #drain(): Promise<void> {
    while (this.#queue.length > 0 && this.failure === undefined) {
      if (this.#dropped > 0) {
        this.#queue.unshift(
          `${JSON.stringify({ time: new Date().toISOString(), dropped: this.#dropped, reason: "the disk fell behind" })}\n`,
        );
        this.#dropped = 0;
      }
      const text = this.#queue.join("");
      this.#queue = [];
      this.#queuedBytes = 0;
      const bytes = Buffer.from(text, "utf8");
      try {
        if (this.#sizeBytes > 0 && this.#sizeBytes + bytes.length > this.#maxBytes) {
          await this.#rotate();
        }
        await this.#handle.write(bytes);
        this.#sizeBytes += bytes.length;
      } catch (error) {
        this.failure = error instanceof Error ? error : new Error(String(error));
      }
    }
  }

  async #rotate(): Promise<void> {
    await this.#handle.close();
    for (let i = this.#keepFiles - 1; i >= 1; i--) {
      await rename(`${this.path}.${i}`, `${this.path}.${i + 1}`).catch(() => undefined);
    }
    await rename(this.path, `${this.path}.1`);
    this.#handle = await open(this.path, "a", 0o600);
    this.#sizeBytes = 0;
  }
}
