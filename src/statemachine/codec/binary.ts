/**
 * A minimal big-endian binary writer and reader for the state machines' deterministic encodings
 * (commands, results, snapshots). Integers are unsigned: u8, u16, u32 and "u53" (any safe
 * integer ≥ 0, as 8 bytes). Byte strings and UTF-8 strings are a u32 length then the bytes.
 *
 * The reader is strict: reading past the end, a u53 above `Number.MAX_SAFE_INTEGER` or invalid
 * UTF-8 throws `InvalidArgumentError` naming what was being decoded, never a `RangeError`.
 */
import { InvalidArgumentError, invariant } from "../../common/index.js";
import { decodeUtf8, encodeUtf8, utf8ByteLength } from "./utf8.js";

const TWO_POW_32 = 0x1_0000_0000;
/** The largest high word of a safe integer: 2^53 - 1 = 0x1fffff_ffffffff. */
const MAX_SAFE_HIGH_WORD = 0x1f_ffff;
const INITIAL_CAPACITY_BYTES = 256;
const encoder = new TextEncoder();

/** Appends encoded values to a growable buffer. Throws `InternalError` on out-of-range input (a caller bug). */
export class ByteWriter {
  #buffer: Uint8Array;
  #view: DataView;
  #lengthBytes = 0;

  /** Starts an empty writer; `initialCapacityBytes` is only a hint. */
  constructor(initialCapacityBytes: number = INITIAL_CAPACITY_BYTES) {
    this.#buffer = new Uint8Array(Math.max(16, initialCapacityBytes));
    this.#view = new DataView(this.#buffer.buffer);
  }

  /** How many bytes have been written so far. */
  get lengthBytes(): number {
    return this.#lengthBytes;
  }

  #reserve(extraBytes: number): void {
    const needed = this.#lengthBytes + extraBytes;
    if (needed <= this.#buffer.length) return;
    const grown = new Uint8Array(Math.max(needed, this.#buffer.length * 2));
    grown.set(this.#buffer.subarray(0, this.#lengthBytes));
    this.#buffer = grown;
    this.#view = new DataView(grown.buffer);
  }

  /** Writes one byte (0..255). */
  u8(value: number): this {
    invariant(
      Number.isInteger(value) && value >= 0 && value <= 0xff,
      () => `u8 out of range: ${value}`,
    );
    this.#reserve(1);
    this.#view.setUint8(this.#lengthBytes, value);
    this.#lengthBytes += 1;
    return this;
  }

  /** Writes a 16-bit unsigned integer. */
  u16(value: number): this {
    invariant(
      Number.isInteger(value) && value >= 0 && value <= 0xffff,
      () => `u16 out of range: ${value}`,
    );
    this.#reserve(2);
    this.#view.setUint16(this.#lengthBytes, value);
    this.#lengthBytes += 2;
    return this;
  }

  /** Writes a 32-bit unsigned integer. */
  u32(value: number): this {
    invariant(
      Number.isInteger(value) && value >= 0 && value < TWO_POW_32,
      () => `u32 out of range: ${value}`,
    );
    this.#reserve(4);
    this.#view.setUint32(this.#lengthBytes, value);
    this.#lengthBytes += 4;
    return this;
  }

  /** Writes a safe integer ≥ 0 as 8 bytes. */
  u53(value: number): this {
    invariant(Number.isSafeInteger(value) && value >= 0, () => `u53 out of range: ${value}`);
    this.#reserve(8);
    this.#view.setUint32(this.#lengthBytes, Math.floor(value / TWO_POW_32));
    this.#view.setUint32(this.#lengthBytes + 4, value >>> 0);
    this.#lengthBytes += 8;
    return this;
  }

  /** Writes a boolean as one byte, 0 or 1. */
  bool(value: boolean): this {
    return this.u8(value ? 1 : 0);
  }

  /** Writes `bytes` as they are, with no length prefix. */
  raw(bytes: Uint8Array): this {
    this.#reserve(bytes.length);
    this.#buffer.set(bytes, this.#lengthBytes);
    this.#lengthBytes += bytes.length;
    return this;
  }

  /** Writes a u32 length then `bytes`. */
  bytes(bytes: Uint8Array): this {
    return this.u32(bytes.length).raw(bytes);
  }

  /** Writes a u32 length then the UTF-8 of `text`; throws `InvalidArgumentError` if `text` is not well-formed. */
  string(text: string): this {
    const lengthBytes = utf8ByteLength(text);
    if (lengthBytes === undefined) return this.bytes(encodeUtf8(text)); // throws: lone surrogate
    this.u32(lengthBytes);
    this.#reserve(lengthBytes);
    // Straight into the buffer: no array per string.
    const { written } = encoder.encodeInto(text, this.#buffer.subarray(this.#lengthBytes));
    invariant(written === lengthBytes, "UTF-8 length agrees with TextEncoder");
    this.#lengthBytes += lengthBytes;
    return this;
  }

  /** A view of the bytes written so far (no copy); valid only until the next write. */
  written(): Uint8Array {
    return this.#buffer.subarray(0, this.#lengthBytes);
  }

  /**
   * Forgets what was written and writes from the start of the same buffer again (views from
   * {@link written} see the new bytes): a writer reused for slice after slice touches its memory
   * once.
   */
  clear(): this {
    this.#lengthBytes = 0;
    return this;
  }

  /**
   * The bytes written, as an array of exactly that length: the buffer itself when the initial
   * capacity was exact (no copy; the writer must not be used after), else a copy.
   */
  finish(): Uint8Array {
    if (this.#lengthBytes === this.#buffer.length) return this.#buffer;
    return this.#buffer.slice(0, this.#lengthBytes);
  }
}

/** Reads values written by {@link ByteWriter}. Every method throws `InvalidArgumentError` on malformed input. */
export class ByteReader {
  readonly #bytes: Uint8Array;
  readonly #view: DataView;
  readonly #what: string;
  #offset = 0;

  /** Reads `bytes`; `what` names the thing decoded (e.g. "kv command") in error messages. */
  constructor(bytes: Uint8Array, what: string) {
    this.#bytes = bytes;
    this.#view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    this.#what = what;
  }

  /** How many bytes are left to read. */
  get remainingBytes(): number {
    return this.#bytes.length - this.#offset;
  }

  /** The error for malformed input at the current offset (for callers' own checks). */
  malformed(reason: string): InvalidArgumentError {
    return new InvalidArgumentError(`malformed ${this.#what} at byte ${this.#offset}: ${reason}`);
  }

  #need(countBytes: number): void {
    if (countBytes > this.remainingBytes) {
      throw this.malformed(`needs ${countBytes} more bytes, ${this.remainingBytes} left`);
    }
  }

  /** Reads one byte. */
  u8(): number {
    this.#need(1);
    const value = this.#view.getUint8(this.#offset);
    this.#offset += 1;
    return value;
  }

  /** Reads a 16-bit unsigned integer. */
  u16(): number {
    this.#need(2);
    const value = this.#view.getUint16(this.#offset);
    this.#offset += 2;
    return value;
  }

  /** Reads a 32-bit unsigned integer. */
  u32(): number {
    this.#need(4);
    const value = this.#view.getUint32(this.#offset);
    this.#offset += 4;
    return value;
  }

  /** Reads an 8-byte safe integer; throws if it exceeds `Number.MAX_SAFE_INTEGER`. */
  u53(): number {
    this.#need(8);
    const high = this.#view.getUint32(this.#offset);
    const low = this.#view.getUint32(this.#offset + 4);
    if (high > MAX_SAFE_HIGH_WORD) throw this.malformed("integer exceeds 2^53 - 1");
    this.#offset += 8;
    return high * TWO_POW_32 + low;
  }

  /** Reads a boolean; any byte other than 0 or 1 is malformed. */
  bool(): boolean {
    const value = this.u8();
    if (value > 1) throw this.malformed(`boolean byte is ${value}`);
    return value === 1;
  }

  /** Reads `countBytes` bytes as a view into the input (no copy). */
  rawView(countBytes: number): Uint8Array {
    this.#need(countBytes);
    const view = this.#bytes.subarray(this.#offset, this.#offset + countBytes);
    this.#offset += countBytes;
    return view;
  }

  /** Reads a u32 length then that many bytes, as a copy the caller owns. */
  bytes(): Uint8Array {
    // Not slice(): on a Buffer input (a network read) that is a view, not a copy.
    return new Uint8Array(this.rawView(this.u32()));
  }

  /**
   * Reads a u32 length then that many bytes as a view into the input (no copy): the input stays
   * in memory while the view does, so only for inputs that are kept anyway and never changed.
   */
  bytesView(): Uint8Array {
    return this.rawView(this.u32());
  }

  /** Reads a u32 length then that many bytes of strict UTF-8. */
  string(): string {
    const view = this.rawView(this.u32());
    try {
      return decodeUtf8(view);
    } catch {
      throw this.malformed("string is not valid UTF-8");
    }
  }

  /** Reads everything left, as a view into the input (no copy). */
  rest(): Uint8Array {
    return this.rawView(this.remainingBytes);
  }

  /** Throws unless every byte has been read (trailing bytes are malformed). */
  expectEnd(): void {
    if (this.remainingBytes !== 0) throw this.malformed(`${this.remainingBytes} trailing bytes`);
  }
}
