/**
 * The pieces a snapshot is encoded from a slice at a time ({@link SnapshotEncoding}): each layer
 * (sessions, the cluster application, the kv store, the orchestrator) describes its snapshot as
 * parts captured at one point in time, and one buffer of the total size is filled a slice per
 * call. Every layer's format puts a part's length before its bytes, so sizes must be known before
 * the buffer is filled: most parts know theirs at the capture; a part that knows it only once
 * encoded (the orchestrator's JSON) is first encoded ahead, a slice at a time, into pieces of its
 * own ({@link SnapshotPart.prepare}), and copied into the buffer later. Checksums are carried from
 * slice to slice (`crc32`'s continuation), so the bytes are exactly those of the layers' one-pass
 * encoders.
 */
import { invariant } from "../common/index.js";
import { ByteWriter } from "./codec/binary.js";
import { crc32 } from "../common/crc32.js";
import { DEFAULT_SNAPSHOT_SLICE_BYTES, type SnapshotEncoding } from "./state-machine.js";

/** One part of a snapshot, captured at one point in time and written a slice at a time. */
export interface SnapshotPart {
  /** Whether {@link sizeBytes} is known (true at the capture for most parts; see {@link prepare}). */
  readonly prepared: boolean;
  /**
   * Encodes ahead at most about `budgetBytes` (≥ 1; at least one record, and possibly less than
   * the budget: a part bounds its time per call) of what the part must encode before its size is
   * known; returns the bytes encoded (0 once {@link prepared}).
   */
  prepare(budgetBytes: number): number;
  /** The exact number of bytes the part writes; read only once {@link prepared}. */
  readonly sizeBytes: number;
  /**
   * Writes the next slice into `writer`: at least one byte if any remain, and no more records
   * once `budgetBytes` (≥ 1) are written. Returns true once the whole part is written. Called
   * only once {@link prepared}.
   */
  writeSlice(writer: ByteWriter, budgetBytes: number): boolean;
  /** Drops what the part holds of the state (see `KvStore.captureSnapshot`). Idempotent. */
  release(): void;
}

/** Bytes encoded at the capture (a layer's small parts), copied into the snapshot in slices. */
class BytesPart implements SnapshotPart {
  readonly #bytes: Uint8Array;
  #offset = 0;

  constructor(bytes: Uint8Array) {
    this.#bytes = bytes;
  }

  get prepared(): boolean {
    return true;
  }

  prepare(): number {
    return 0;
  }

  get sizeBytes(): number {
    return this.#bytes.length;
  }

  writeSlice(writer: ByteWriter, budgetBytes: number): boolean {
    const end = Math.min(this.#bytes.length, this.#offset + budgetBytes);
    writer.raw(this.#bytes.subarray(this.#offset, end));
    this.#offset = end;
    return end === this.#bytes.length;
  }

  release(): void {}
}

/** Parts one after another, optionally followed by the u32 CRC-32 of all their bytes. */
class PartSequence implements SnapshotPart {
  readonly #parts: readonly SnapshotPart[];
  readonly #checksummed: boolean;
  /** The first part that may not be prepared yet. */
  #preparing = 0;
  #sizeBytes: number | undefined;
  #current = 0;
  #crc = 0;
  #complete = false;

  constructor(parts: readonly SnapshotPart[], checksummed: boolean) {
    this.#parts = parts;
    this.#checksummed = checksummed;
  }

  get prepared(): boolean {
    const parts = this.#parts;
    while (this.#preparing < parts.length && (parts[this.#preparing] as SnapshotPart).prepared) {
      this.#preparing++;
    }
    return this.#preparing === parts.length;
  }

  /** One call of the first unprepared part's: each bounds its own work per call. */
  prepare(budgetBytes: number): number {
    return this.prepared ? 0 : (this.#parts[this.#preparing] as SnapshotPart).prepare(budgetBytes);
  }

  get sizeBytes(): number {
    if (this.#sizeBytes === undefined) {
      invariant(this.prepared, "a snapshot part's size read before it was prepared");
      let sizeBytes = this.#checksummed ? 4 : 0;
      for (const part of this.#parts) sizeBytes += part.sizeBytes;
      this.#sizeBytes = sizeBytes;
    }
    return this.#sizeBytes;
  }

  writeSlice(writer: ByteWriter, budgetBytes: number): boolean {
    invariant(!this.#complete, "a snapshot part written past its end");
    const start = writer.lengthBytes;
    for (;;) {
      const part = this.#parts[this.#current];
      if (part === undefined) break;
      const remainingBytes = budgetBytes - (writer.lengthBytes - start);
      if (remainingBytes <= 0 || !part.writeSlice(writer, remainingBytes)) break;
      this.#current++;
    }
    if (this.#checksummed) this.#crc = crc32(writer.written().subarray(start), this.#crc);
    if (this.#current < this.#parts.length) return false;
    if (this.#checksummed) writer.u32(this.#crc);
    this.#complete = true;
    return true;
  }

  release(): void {
    for (const part of this.#parts) part.release();
  }
}

/** A part's u32 length (big-endian), then the part. */
class LengthPrefixedPart implements SnapshotPart {
  readonly #part: SnapshotPart;
  #lengthWritten = false;

  constructor(part: SnapshotPart) {
    this.#part = part;
  }

  get prepared(): boolean {
    return this.#part.prepared;
  }

  prepare(budgetBytes: number): number {
    return this.#part.prepare(budgetBytes);
  }

  get sizeBytes(): number {
    return 4 + this.#part.sizeBytes;
  }

  writeSlice(writer: ByteWriter, budgetBytes: number): boolean {
    let remainingBytes = budgetBytes;
    if (!this.#lengthWritten) {
      writer.u32(this.#part.sizeBytes);
      this.#lengthWritten = true;
      remainingBytes -= 4;
      // The length alone may be this slice's bytes.
      if (remainingBytes <= 0 && this.#part.sizeBytes > 0) return false;
    }
    return this.#part.writeSlice(writer, Math.max(1, remainingBytes));
  }

  release(): void {
    this.#part.release();
  }
}

/** A part holding `bytes` as they are. Throws nothing. */
export function bytesPart(bytes: Uint8Array): SnapshotPart {
  return new BytesPart(bytes);
}

/** `parts` one after another. Throws nothing. */
export function concatParts(parts: readonly SnapshotPart[]): SnapshotPart {
  return new PartSequence(parts, false);
}

/** `parts` one after another, then the u32 CRC-32 of their bytes (big-endian). Throws nothing. */
export function checksummedParts(parts: readonly SnapshotPart[]): SnapshotPart {
  return new PartSequence(parts, true);
}

/**
 * `part` preceded by its size as a u32 (big-endian), as `ByteWriter.bytes` writes a byte string;
 * for a part whose size is known only once prepared. Throws nothing.
 */
export function lengthPrefixedPart(part: SnapshotPart): SnapshotPart {
  return new LengthPrefixedPart(part);
}

const NO_BYTES = new Uint8Array(0);

/**
 * What a streaming encoding's buffer starts at: a turn of encoding (SNAPSHOT_TURN_MAX_BYTES in
 * the runner) plus a slice. It grows only for a record larger than that.
 */
const STREAM_BUFFER_BYTES = 4 * 1024 * 1024 + DEFAULT_SNAPSHOT_SLICE_BYTES;

/**
 * A {@link SnapshotEncoding} of a captured part: first the parts that know their size only once
 * encoded are prepared (empty slices), then the slices are written, either into one buffer of
 * the total size, or (streaming) into one reused buffer from which the caller takes them.
 */
export class SlicedSnapshot implements SnapshotEncoding {
  readonly #part: SnapshotPart;
  #writer: ByteWriter | undefined;
  #encodedBytes = 0;
  #complete = false;
  #closed = false;
  #streaming = false;
  /** Streaming: bytes handed out by `take`, and whether the next slice reuses their buffer. */
  #takenBytes = 0;
  #reuseOnNext = false;

  /** Encodes `part` (captured by the caller). Throws nothing. */
  constructor(part: SnapshotPart) {
    this.#part = part;
  }

  /** @inheritdoc */
  get encodedBytes(): number {
    return this.#encodedBytes;
  }

  /** @inheritdoc */
  get sizeBytes(): number | undefined {
    return this.#writer !== undefined || this.#part.prepared ? this.#part.sizeBytes : undefined;
  }

  /** @inheritdoc */
  startStreaming(): void {
    invariant(this.#writer === undefined, "a snapshot encoding streamed after its first slice");
    this.#streaming = true;
  }

  /** @inheritdoc */
  take(): Uint8Array {
    invariant(this.#streaming && !this.#closed, "a snapshot slice taken from a buffered encoding");
    if (this.#writer === undefined || this.#reuseOnNext) return NO_BYTES;
    const bytes = this.#writer.written();
    this.#takenBytes += bytes.length;
    this.#reuseOnNext = true;
    return bytes;
  }

  /** @inheritdoc */
  next(budgetBytes: number = DEFAULT_SNAPSHOT_SLICE_BYTES): Uint8Array | undefined {
    invariant(!this.#closed, "a snapshot encoding used after close");
    invariant(budgetBytes >= 1, () => `a snapshot slice budget of ${budgetBytes} bytes`);
    if (this.#complete) return undefined;
    if (this.#writer === undefined && !this.#part.prepared) {
      this.#encodedBytes += this.#part.prepare(budgetBytes);
      return NO_BYTES;
    }
    // Buffered: exactly the size, so the writer never grows and `finish` hands the buffer over.
    this.#writer ??= new ByteWriter(
      this.#streaming ? Math.min(this.#part.sizeBytes, STREAM_BUFFER_BYTES) : this.#part.sizeBytes,
    );
    if (this.#reuseOnNext) {
      this.#writer.clear();
      this.#reuseOnNext = false;
    }
    const start = this.#writer.lengthBytes;
    this.#complete = this.#part.writeSlice(this.#writer, budgetBytes);
    this.#encodedBytes += this.#writer.lengthBytes - start;
    if (this.#complete) {
      const total = this.#takenBytes + this.#writer.lengthBytes;
      invariant(
        total === this.#part.sizeBytes,
        () => `a snapshot of ${this.#part.sizeBytes} bytes came out at ${total}`,
      );
      this.#part.release();
    }
    return this.#writer.written().subarray(start);
  }

  /** @inheritdoc */
  finish(): Uint8Array {
    invariant(
      this.#complete && !this.#closed && !this.#streaming,
      "a snapshot finished before it was complete, or streamed",
    );
    return (this.#writer as ByteWriter).finish();
  }

  /** @inheritdoc */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#writer = undefined;
    this.#part.release();
  }
}
