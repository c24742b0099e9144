/**
 * One write-ahead-log record: its framing (a 16-byte header with two CRC-32s) and its typed
 * payloads. See ARCHITECTURE.md, "Storage", for the byte layout.
 *
 * The header has its own checksum so that a damaged length field is recognised as damage, not
 * trusted: recovery can then tell a torn tail (the header is fine, the record just stops at the
 * end of the file) from a bad record in the middle of acknowledged data.
 */
import { invariant } from "../common/assert.js";
import { EntryType, type Entry, type HardState } from "../raft/types.js";
import { readUint64, viewOf, writeUint64 } from "./binary.js";
import { crc32 } from "../common/crc32.js";

/** Bytes of a record header: length u32, type u8, 3 zero bytes, payload CRC u32, header CRC u32. */
export const RECORD_HEADER_BYTES = 16;
/** Bytes the header CRC covers (everything before it). */
const HEADER_CHECKED_BYTES = 12;

/** The type byte of each record. Values are part of the format; never reuse one. */
export const RecordType = {
  /** One log entry: term u64, index u64, entry type u8, data. A later one for an index supersedes. */
  Entry: 1,
  /** The hard state: term u64, vote u64, commit u64. The last one wins. */
  HardState: 2,
  /**
   * A snapshot from the leader replaced the log: index u64, term u64. Entries before it are
   * dropped; the snapshot file with that index is durable before this record is written.
   */
  Snapshot: 3,
} as const;
export type RecordType = (typeof RecordType)[keyof typeof RecordType];

/** Fixed payload bytes of an entry record besides the entry's data. */
export const ENTRY_PAYLOAD_OVERHEAD_BYTES = 17;
const HARD_STATE_PAYLOAD_BYTES = 24;
const SNAPSHOT_PAYLOAD_BYTES = 16;

/** A decoded record. */
export type WalRecord =
  | { readonly type: typeof RecordType.Entry; readonly entry: Entry }
  | { readonly type: typeof RecordType.HardState; readonly hardState: HardState }
  | { readonly type: typeof RecordType.Snapshot; readonly index: number; readonly term: number };

function payloadSizeBytes(record: WalRecord): number {
  switch (record.type) {
    case RecordType.Entry:
      return ENTRY_PAYLOAD_OVERHEAD_BYTES + record.entry.data.byteLength;
    case RecordType.HardState:
      return HARD_STATE_PAYLOAD_BYTES;
    case RecordType.Snapshot:
      return SNAPSHOT_PAYLOAD_BYTES;
  }
}

/** Bytes `record` takes on disk, header included. Never throws. */
export function recordSizeBytes(record: WalRecord): number {
  return RECORD_HEADER_BYTES + payloadSizeBytes(record);
}

/** The largest payload the header's u32 length field can describe. */
const MAX_PAYLOAD_BYTES = 0xffff_ffff;

/**
 * Encodes `record` into `target` at `offsetBytes` (which must have room for
 * {@link recordSizeBytes}); returns the offset after it.
 * @throws InternalError if the record is one {@link readFrame} or {@link decodePayload} would
 *   refuse (an index 0, an unknown entry type, a number past 2^53 - 1, a payload past the length
 *   field) or does not fit `target`: what the reader checks, the writer asserts.
 */
export function encodeRecord(record: WalRecord, target: Uint8Array, offsetBytes: number): number {
  const payloadBytes = payloadSizeBytes(record);
  invariant(payloadBytes <= MAX_PAYLOAD_BYTES, "a WAL record payload must fit its u32 length");
  invariant(
    offsetBytes >= 0 && offsetBytes + RECORD_HEADER_BYTES + payloadBytes <= target.byteLength,
    "no room for the WAL record in its buffer",
  );
  const view = viewOf(target);
  const payloadOffset = offsetBytes + RECORD_HEADER_BYTES;
  switch (record.type) {
    case RecordType.Entry:
      invariant(
        record.entry.index >= 1 &&
          (record.entry.type === EntryType.Normal || record.entry.type === EntryType.ConfChange),
        () => `entry ${record.entry.index} of type ${record.entry.type} cannot be logged`,
      );
      writeUint64(view, payloadOffset, record.entry.term);
      writeUint64(view, payloadOffset + 8, record.entry.index);
      view.setUint8(payloadOffset + 16, record.entry.type);
      target.set(record.entry.data, payloadOffset + ENTRY_PAYLOAD_OVERHEAD_BYTES);
      break;
    case RecordType.HardState:
      writeUint64(view, payloadOffset, record.hardState.term);
      writeUint64(view, payloadOffset + 8, record.hardState.vote);
      writeUint64(view, payloadOffset + 16, record.hardState.commit);
      break;
    case RecordType.Snapshot:
      writeUint64(view, payloadOffset, record.index);
      writeUint64(view, payloadOffset + 8, record.term);
      break;
  }
  view.setUint32(offsetBytes, payloadBytes, true);
  view.setUint8(offsetBytes + 4, record.type);
  view.setUint8(offsetBytes + 5, 0);
  view.setUint16(offsetBytes + 6, 0, true);
  const payload = target.subarray(payloadOffset, payloadOffset + payloadBytes);
  view.setUint32(offsetBytes + 8, crc32(payload), true);
  const header = target.subarray(offsetBytes, offsetBytes + HEADER_CHECKED_BYTES);
  view.setUint32(offsetBytes + 12, crc32(header), true);
  return payloadOffset + payloadBytes;
}

/** What is found at an offset of a segment. */
export type FrameResult =
  /** A record whose header and payload checksums hold. */
  | {
      readonly status: "ok";
      readonly type: number;
      readonly payload: Uint8Array;
      readonly endOffsetBytes: number;
    }
  /** The header or the payload runs past the end of the bytes: a torn write, if at the tail. */
  | { readonly status: "incomplete"; readonly reason: string }
  /** The header's checksum fails (or its zero bytes are not zero): the length is not to be trusted. */
  | { readonly status: "badHeader"; readonly reason: string }
  /** The header holds but the payload's checksum fails; the record ends at `endOffsetBytes`. */
  | { readonly status: "badPayload"; readonly reason: string; readonly endOffsetBytes: number };

/** Reads the record framed at `offsetBytes` of `bytes` and checks both checksums. Never throws. */
export function readFrame(bytes: Uint8Array, offsetBytes: number): FrameResult {
  const remaining = bytes.byteLength - offsetBytes;
  if (remaining < RECORD_HEADER_BYTES) {
    return { status: "incomplete", reason: `only ${remaining} bytes left for a record header` };
  }
  const view = viewOf(bytes);
  const header = bytes.subarray(offsetBytes, offsetBytes + HEADER_CHECKED_BYTES);
  const headerCrc = view.getUint32(offsetBytes + 12, true);
  if (crc32(header) !== headerCrc) {
    return { status: "badHeader", reason: "record header checksum mismatch" };
  }
  if (view.getUint8(offsetBytes + 5) !== 0 || view.getUint16(offsetBytes + 6, true) !== 0) {
    return { status: "badHeader", reason: "record header reserved bytes are not zero" };
  }
  const payloadBytes = view.getUint32(offsetBytes, true);
  const payloadOffset = offsetBytes + RECORD_HEADER_BYTES;
  const endOffsetBytes = payloadOffset + payloadBytes;
  if (endOffsetBytes > bytes.byteLength) {
    return {
      status: "incomplete",
      reason: `record of ${payloadBytes} payload bytes runs past the end of the file`,
    };
  }
  const payload = bytes.subarray(payloadOffset, endOffsetBytes);
  if (crc32(payload) !== view.getUint32(offsetBytes + 8, true)) {
    return { status: "badPayload", reason: "record payload checksum mismatch", endOffsetBytes };
  }
  return { status: "ok", type: view.getUint8(offsetBytes + 4), payload, endOffsetBytes };
}

/**
 * Decodes a checksummed payload of record type `type`. The entry's data is a view into
 * `payload` (no copy): recovery reads a segment once and its entries are the log the node keeps
 * in memory, so the segment's buffer is freed when compaction has dropped its last entry; a copy
 * per entry cost a restart more than the read itself (fresh memory is slow to touch). Returns a reason string if the payload is malformed (a
 * checksummed payload that does not parse is corruption or a bug, never a torn write).
 */
export function decodePayload(type: number, payload: Uint8Array): WalRecord | string {
  const view = viewOf(payload);
  switch (type) {
    case RecordType.Entry: {
      if (payload.byteLength < ENTRY_PAYLOAD_OVERHEAD_BYTES) return "entry record too short";
      const term = readUint64(view, 0);
      const index = readUint64(view, 8);
      const entryType = view.getUint8(16);
      if (term === undefined || index === undefined) return "entry term or index out of range";
      if (index < 1) return "entry index 0";
      if (entryType !== EntryType.Normal && entryType !== EntryType.ConfChange) {
        return `unknown entry type ${entryType}`;
      }
      const data = payload.subarray(ENTRY_PAYLOAD_OVERHEAD_BYTES);
      return { type: RecordType.Entry, entry: { term, index, type: entryType, data } };
    }
    case RecordType.HardState: {
      if (payload.byteLength !== HARD_STATE_PAYLOAD_BYTES)
        return "hard state record has wrong size";
      const term = readUint64(view, 0);
      const vote = readUint64(view, 8);
      const commit = readUint64(view, 16);
      if (term === undefined || vote === undefined || commit === undefined) {
        return "hard state field out of range";
      }
      return { type: RecordType.HardState, hardState: { term, vote, commit } };
    }
    case RecordType.Snapshot: {
      if (payload.byteLength !== SNAPSHOT_PAYLOAD_BYTES) return "snapshot record has wrong size";
      const index = readUint64(view, 0);
      const term = readUint64(view, 8);
      if (index === undefined || term === undefined) return "snapshot index or term out of range";
      return { type: RecordType.Snapshot, index, term };
    }
    default:
      return `unknown record type ${type}`;
  }
}
