/**
 * Little-endian integers for the on-disk formats. Log indexes and terms are stored as 64-bit
 * fields but the core handles at most `Number.MAX_SAFE_INTEGER`; a stored value above that is
 * malformed data, never rounded.
 */

import { invariant } from "../common/assert.js";

const TWO_POW_32 = 0x1_0000_0000;
/** The largest high word of a 64-bit field that still makes a safe integer (2^53 - 1). */
const MAX_SAFE_HIGH_WORD = 0x1f_ffff;

/**
 * Writes a safe non-negative integer as a 64-bit little-endian field.
 * @throws InternalError for any other value: {@link readUint64} would refuse it as malformed, so
 *   writing it is our bug (what the reader checks, the writer asserts).
 */
export function writeUint64(view: DataView, offsetBytes: number, value: number): void {
  invariant(
    Number.isSafeInteger(value) && value >= 0,
    () => `cannot store ${value} as an unsigned 64-bit field`,
  );
  view.setUint32(offsetBytes, value >>> 0, true);
  view.setUint32(offsetBytes + 4, Math.floor(value / TWO_POW_32), true);
}

/** Reads a 64-bit little-endian field; undefined if it does not fit a safe integer. */
export function readUint64(view: DataView, offsetBytes: number): number | undefined {
  const low = view.getUint32(offsetBytes, true);
  const high = view.getUint32(offsetBytes + 4, true);
  if (high > MAX_SAFE_HIGH_WORD) return undefined;
  return high * TWO_POW_32 + low;
}

/** A DataView over exactly `bytes`. Never throws. */
export function viewOf(bytes: Uint8Array): DataView {
  return new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

/** `value` as 16 lower-case hex digits, for file names that sort by number. Never throws. */
export function hex16(value: number): string {
  return value.toString(16).padStart(16, "0");
}

/** True if every byte of `bytes` from `fromBytes` on is zero (preallocated or never written). */
export function allZero(bytes: Uint8Array, fromBytes: number): boolean {
  for (let i = fromBytes; i < bytes.byteLength; i++) if (bytes[i] !== 0) return false;
  return true;
}
