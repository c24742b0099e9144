/**
 * CRC-32 (IEEE 802.3, the polynomial of zlib and gzip): the checksum of WAL records, snapshot
 * files and snapshot payloads. Slicing-by-8 in plain TypeScript, so the deterministic core and
 * the simulator can run it anywhere; the real platform installs Node's native `zlib.crc32`
 * (same values, an order of magnitude faster) with {@link useNativeCrc32}, because a restart
 * checksums the whole snapshot file and the whole state twice, and at a few hundred MB/s that
 * was a third of the time to load a 100 MB state.
 */

/** A CRC-32 that continues from `previous`, as `zlib.crc32(data, previous)`. */
export type Crc32Function = (data: Uint8Array, previous: number) => number;

/** Below this many bytes the table loop beats the call into native code. */
const NATIVE_MIN_BYTES = 256;

let native: Crc32Function | undefined;

/**
 * Makes {@link crc32} hand inputs of at least a few hundred bytes to `implementation` (Node's
 * `zlib.crc32`), or back to the table loop alone with `undefined`. The implementation must
 * compute exactly this CRC-32; the platform checks it against the check value before installing.
 */
export function useNativeCrc32(implementation: Crc32Function | undefined): void {
  native = implementation;
}

const POLYNOMIAL_REFLECTED = 0xedb88320;

/** TABLES[k][b]: the CRC of byte b followed by k zero bytes. */
const TABLES: Uint32Array[] = (() => {
  const tables = Array.from({ length: 8 }, () => new Uint32Array(256));
  const first = tables[0] as Uint32Array;
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte;
    for (let bit = 0; bit < 8; bit++)
      crc = crc & 1 ? (crc >>> 1) ^ POLYNOMIAL_REFLECTED : crc >>> 1;
    first[byte] = crc >>> 0;
  }
  for (let k = 1; k < 8; k++) {
    const previous = tables[k - 1] as Uint32Array;
    const table = tables[k] as Uint32Array;
    for (let byte = 0; byte < 256; byte++) {
      const crc = previous[byte] as number;
      table[byte] = ((crc >>> 8) ^ (first[crc & 0xff] as number)) >>> 0;
    }
  }
  return tables;
})();

/**
 * The CRC-32 of `data`, continuing from `previous` (the CRC of the bytes before it; 0 to start),
 * exactly as `zlib.crc32(data, previous)`. Never throws.
 */
export function crc32(data: Uint8Array, previous = 0): number {
  if (native !== undefined && data.length >= NATIVE_MIN_BYTES) return native(data, previous);
  const [t0, t1, t2, t3, t4, t5, t6, t7] = TABLES as [
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
    Uint32Array,
  ];
  let crc = ~previous >>> 0;
  let i = 0;
  const length = data.length;
  const fastEnd = length - (length % 8);
  // Eight bytes per step: one table lookup per byte, no per-bit work.
  for (; i < fastEnd; i += 8) {
    const lo =
      (crc ^ (data[i]! | (data[i + 1]! << 8) | (data[i + 2]! << 16) | (data[i + 3]! << 24))) >>> 0;
    crc =
      t7[lo & 0xff]! ^
      t6[(lo >>> 8) & 0xff]! ^
      t5[(lo >>> 16) & 0xff]! ^
      t4[lo >>> 24]! ^
      t3[data[i + 4]!]! ^
      t2[data[i + 5]!]! ^
      t1[data[i + 6]!]! ^
      t0[data[i + 7]!]!;
  }
  for (; i < length; i++) crc = (crc >>> 8) ^ t0[(crc ^ data[i]!) & 0xff]!;
  return ~crc >>> 0;
}
