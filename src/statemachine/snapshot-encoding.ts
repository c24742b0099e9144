/**
 * The pieces a snapshot is encoded from a slice at a time ({@link SnapshotEncoding}): each layer
 * (sessions, the cluster application, the kv store) describes its snapshot as parts of known size
 * captured at one point in time, and one buffer of the total size is filled a slice per call.
 * Sizes are known up front because every layer's format puts a part's length before its bytes;
 * checksums are carried from slice to slice (`crc32`'s continuation), so the bytes are exactly
 * those of the layers' one-pass encoders.
 */
import { invariant } from "../common/index.js";
import { ByteWriter } from "./codec/binary.js";
import { crc32 } from "./codec/crc32.js";
import { DEFAULT_SNAPSHOT_SLICE_BYTES, type SnapshotEncoding } from "./state-machine.js";

/** One part of a snapshot, captured at one point in time and written a slice at a time. */
export interface SnapshotPart {
  /** The exact number of bytes the part writes. */
  readonly sizeBytes: number;
  /**
   * Writes the next slice into `writer`: at least one byte if any remain, and no more records
   * once `budgetBytes` (≥ 1) are written. Returns true once the whole part is written.
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
  readonly sizeBytes: number;
  readonly #parts: readonly SnapshotPart[];
  readonly #checksummed: boolean;
  #current = 0;
  #crc = 0;
  #complete = false;

  constructor(parts: readonly SnapshotPart[], checksummed: boolean) {
    this.#parts = parts;
    this.#checksummed = checksummed;
    let sizeBytes = checksummed ? 4 : 0;
    for (const part of parts) sizeBytes += part.sizeBytes;
    this.sizeBytes = sizeBytes;
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
 * A {@link SnapshotEncoding} of a captured part: one buffer of the part's size, allocated at the
 * first slice, filled a slice per {@link next}.
 */
export class SlicedSnapshot implements SnapshotEncoding {
  readonly sizeBytes: number;
  readonly #part: SnapshotPart;
  #writer: ByteWriter | undefined;
  #complete = false;
  #closed = false;

  /** Encodes `part` (captured by the caller). Throws nothing. */
  constructor(part: SnapshotPart) {
    this.#part = part;
    this.sizeBytes = part.sizeBytes;
  }

  /** @inheritdoc */
  next(budgetBytes: number = DEFAULT_SNAPSHOT_SLICE_BYTES): Uint8Array | undefined {
    invariant(!this.#closed, "a snapshot encoding used after close");
    invariant(budgetBytes >= 1, () => `a snapshot slice budget of ${budgetBytes} bytes`);
    if (this.#complete) return undefined;
    // Exactly the size, so the writer never grows and `finish` hands the buffer over.
    this.#writer ??= new ByteWriter(this.sizeBytes);
    const start = this.#writer.lengthBytes;
    this.#complete = this.#part.writeSlice(this.#writer, budgetBytes);
    if (this.#complete) {
      invariant(
        this.#writer.lengthBytes === this.sizeBytes,
        () => `a snapshot of ${this.sizeBytes} bytes came out at ${this.#writer?.lengthBytes}`,
      );
      this.#part.release();
    }
    return this.#writer.written().subarray(start);
  }

  /** @inheritdoc */
  finish(): Uint8Array {
    invariant(this.#complete && !this.#closed, "a snapshot finished before it was complete");
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
