/**
 * Segment files of the write-ahead log: their names, their 40-byte header and the scan of one
 * segment's bytes into records, which decides what is a torn tail (cut away) and what is
 * corruption (raised, naming the file and offset).
 */
import { StorageCorruptError } from "../common/errors.js";
import { allZero, hex16, readUint64, viewOf, writeUint64 } from "./binary.js";
import { crc32 } from "../common/crc32.js";
import { decodePayload, RECORD_HEADER_BYTES, readFrame, type WalRecord } from "./wal-record.js";

/** "BLXWAL\r\n": the CR LF catches a file mangled by a text-mode transfer. */
const SEGMENT_MAGIC = new Uint8Array([0x42, 0x4c, 0x58, 0x57, 0x41, 0x4c, 0x0d, 0x0a]);
/** The segment format this code writes and reads. */
export const SEGMENT_FORMAT_VERSION = 1;
/** Bytes of a segment header: magic, version, reserved, sequence, first index, CRC, reserved. */
export const SEGMENT_HEADER_BYTES = 40;
const HEADER_CHECKED_BYTES = 32;

const SEGMENT_NAME = /^wal-([0-9a-f]{16})-([0-9a-f]{16})\.log$/;

/** Identity of a segment: its place in the sequence and the log index it started at. */
export interface SegmentId {
  /** Position in the sequence of segments; consecutive, starting at 1. */
  readonly sequence: number;
  /** The index the next entry had when the segment was created (informational). */
  readonly firstIndex: number;
}

/** The file name of a segment: `wal-<sequence hex16>-<firstIndex hex16>.log`. Never throws. */
export function segmentFileName(id: SegmentId): string {
  return `wal-${hex16(id.sequence)}-${hex16(id.firstIndex)}.log`;
}

/** The identity a segment file name encodes, or undefined if `name` is not a segment's. */
export function parseSegmentFileName(name: string): SegmentId | undefined {
  const match = SEGMENT_NAME.exec(name);
  if (match === null) return undefined;
  const sequence = Number.parseInt(match[1] as string, 16);
  const firstIndex = Number.parseInt(match[2] as string, 16);
  if (!Number.isSafeInteger(sequence) || !Number.isSafeInteger(firstIndex)) return undefined;
  return { sequence, firstIndex };
}

/** The header of a new segment. Never throws. */
export function encodeSegmentHeader(id: SegmentId): Uint8Array {
  const bytes = new Uint8Array(SEGMENT_HEADER_BYTES);
  const view = viewOf(bytes);
  bytes.set(SEGMENT_MAGIC, 0);
  view.setUint32(8, SEGMENT_FORMAT_VERSION, true);
  writeUint64(view, 16, id.sequence);
  writeUint64(view, 24, id.firstIndex);
  view.setUint32(32, crc32(bytes.subarray(0, HEADER_CHECKED_BYTES)), true);
  return bytes;
}

/** Why a segment header is not valid, or undefined if it is and matches `expected`. */
function checkSegmentHeader(bytes: Uint8Array, expected: SegmentId): string | undefined {
  if (bytes.byteLength < SEGMENT_HEADER_BYTES) return "segment header is incomplete";
  const view = viewOf(bytes);
  if (crc32(bytes.subarray(0, HEADER_CHECKED_BYTES)) !== view.getUint32(32, true)) {
    return "segment header checksum mismatch";
  }
  for (let i = 0; i < SEGMENT_MAGIC.length; i++) {
    if (bytes[i] !== SEGMENT_MAGIC[i]) return "not a Blixard WAL segment (bad magic)";
  }
  const version = view.getUint32(8, true);
  if (version !== SEGMENT_FORMAT_VERSION) {
    return `segment format version ${version} is not supported (this build reads ${SEGMENT_FORMAT_VERSION})`;
  }
  if (readUint64(view, 16) !== expected.sequence || readUint64(view, 24) !== expected.firstIndex) {
    return "segment header does not match its file name";
  }
  return undefined;
}

/** A record found by {@link scanSegment}, with where it starts. */
export interface ScannedRecord {
  readonly record: WalRecord;
  readonly offsetBytes: number;
}

/** What {@link scanSegment} found in one segment. */
export interface SegmentScan {
  readonly records: readonly ScannedRecord[];
  /** Where the valid records end; the file is cut here if a torn tail follows. */
  readonly validEndBytes: number;
  /** Set if a torn tail was found (only ever in the last segment). */
  readonly tornTail?: { readonly offsetBytes: number; readonly reason: string };
  /** True if the whole segment is a torn creation (header incomplete, no records): drop it. */
  readonly tornCreation: boolean;
}

/**
 * Decodes every record of one segment. In the last segment a damaged record is a torn tail only
 * if nothing but zeros follows it (a write that stopped part way); anything else, and any damage
 * in an earlier segment, is corruption.
 * @throws StorageCorruptError naming `file` and the offset of the bad header or record.
 */
export function scanSegment(
  file: string,
  bytes: Uint8Array,
  options: { readonly id: SegmentId; readonly isLast: boolean },
): SegmentScan {
  const headerProblem = checkSegmentHeader(bytes, options.id);
  if (headerProblem !== undefined) {
    // The header is written and fsynced before any record: a last segment that holds no more
    // than a damaged header was being created when the process died.
    if (options.isLast && bytes.byteLength <= SEGMENT_HEADER_BYTES) {
      return { records: [], validEndBytes: 0, tornCreation: true };
    }
    throw new StorageCorruptError(file, 0, headerProblem);
  }
  const records: ScannedRecord[] = [];
  let offset = SEGMENT_HEADER_BYTES;
  while (offset < bytes.byteLength) {
    const frame = readFrame(bytes, offset);
    if (frame.status === "ok") {
      const decoded = decodePayload(frame.type, frame.payload);
      if (typeof decoded === "string") throw new StorageCorruptError(file, offset, decoded);
      records.push({ record: decoded, offsetBytes: offset });
      offset = frame.endOffsetBytes;
      continue;
    }
    const tornCandidate =
      frame.status === "incomplete" ||
      (frame.status === "badHeader" && allZero(bytes, offset + RECORD_HEADER_BYTES)) ||
      (frame.status === "badPayload" && allZero(bytes, frame.endOffsetBytes));
    if (!options.isLast || !tornCandidate) {
      const where = options.isLast ? "" : " (not the last segment, so not a torn write)";
      throw new StorageCorruptError(file, offset, `${frame.reason}${where}`);
    }
    return {
      records,
      validEndBytes: offset,
      tornTail: { offsetBytes: offset, reason: frame.reason },
      tornCreation: false,
    };
  }
  return { records, validEndBytes: offset, tornCreation: false };
}
