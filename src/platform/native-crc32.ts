/**
 * Installs Node's native CRC-32 (`zlib.crc32`, present from Node 20.15) for the WAL, snapshot
 * files and snapshot payloads. Loading a 100 MB state checksums about 200 MB; the table loop in
 * `common/crc32.ts` does that in about half a second on this machine kind, zlib's in a few tens
 * of milliseconds.
 */
import * as zlib from "node:zlib";
import { crc32, useNativeCrc32, type Crc32Function } from "../common/crc32.js";

/** The CRC-32 of "123456789", the standard check value. */
const CHECK_VALUE = 0xcbf43926;

/**
 * Uses `zlib.crc32` when this Node has it and it gives the standard check value; returns whether
 * it did. Never throws.
 */
export function installNativeCrc32(): boolean {
  const native = (zlib as { crc32?: Crc32Function }).crc32;
  if (typeof native !== "function") return false;
  const check = new TextEncoder().encode("123456789");
  if (native(check, 0) !== CHECK_VALUE || native(check, 0) !== crc32(check)) return false;
  useNativeCrc32(native);
  return true;
}
