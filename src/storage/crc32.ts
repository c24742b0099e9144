/**
 * CRC-32 (IEEE 802.3, the polynomial of zlib and gzip), slicing-by-8 in plain TypeScript.
 * `zlib.crc32` computes the same values natively on Node 20.20, but it is missing on 20.19 and
 * this layer keeps Node modules out of everything but `node-fs.ts` so the simulator can run it;
 * at several hundred MB/s this one is far from the bottleneck (the disk's fsyncs are).
 */

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
