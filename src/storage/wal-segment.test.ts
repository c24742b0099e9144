import { describe, expect, it } from "vitest";
import { StorageCorruptError } from "../common/errors.js";
import {
  encodeRecord,
  readFrame,
  RecordType,
  recordSizeBytes,
  decodePayload,
  type WalRecord,
} from "./wal-record.js";
import {
  encodeSegmentHeader,
  parseSegmentFileName,
  scanSegment,
  SEGMENT_HEADER_BYTES,
  segmentFileName,
} from "./wal-segment.js";
import { entry } from "./testing.js";

const ID = { sequence: 3, firstIndex: 17 };

function flip(bytes: Uint8Array, offset: number, mask: number): void {
  bytes[offset] = (bytes[offset] ?? 0) ^ mask;
}

function segment(records: readonly WalRecord[]): { bytes: Uint8Array; offsets: number[] } {
  const size = records.reduce((sum, r) => sum + recordSizeBytes(r), SEGMENT_HEADER_BYTES);
  const bytes = new Uint8Array(size);
  bytes.set(encodeSegmentHeader(ID), 0);
  const offsets: number[] = [];
  let offset = SEGMENT_HEADER_BYTES;
  for (const record of records) {
    offsets.push(offset);
    offset = encodeRecord(record, bytes, offset);
  }
  return { bytes, offsets };
}

const RECORDS: WalRecord[] = [
  { type: RecordType.HardState, hardState: { term: 2, vote: 3, commit: 9 } },
  { type: RecordType.Entry, entry: entry(17, 2, 40) },
  { type: RecordType.Snapshot, index: 2 ** 40, term: 7 },
  { type: RecordType.Entry, entry: entry(18, 2, 0) },
];

describe("WAL record and segment format", () => {
  it("round-trips every record type, including 53-bit indexes", () => {
    const { bytes } = segment(RECORDS);
    const scan = scanSegment("f", bytes, { id: ID, isLast: false });
    expect(scan.records.map((r) => r.record)).toEqual(RECORDS);
    expect(scan.validEndBytes).toBe(bytes.byteLength);
  });

  it("names segments by sequence and first index, sortable as text", () => {
    expect(segmentFileName(ID)).toBe("wal-0000000000000003-0000000000000011.log");
    expect(parseSegmentFileName(segmentFileName(ID))).toEqual(ID);
    expect(parseSegmentFileName("wal-3-11.log")).toBeUndefined();
  });

  it("classifies frames: incomplete, bad header, bad payload", () => {
    const { bytes, offsets } = segment(RECORDS);
    const second = offsets[1]!;
    expect(readFrame(bytes.subarray(0, second + 10), second).status).toBe("incomplete");
    expect(readFrame(bytes.subarray(0, second + 20), second).status).toBe("incomplete");
    const badHeader = bytes.slice();
    flip(badHeader, second, 1);
    expect(readFrame(badHeader, second).status).toBe("badHeader");
    const badPayload = bytes.slice();
    flip(badPayload, second + 20, 0x80);
    expect(readFrame(badPayload, second).status).toBe("badPayload");
    expect(decodePayload(99, new Uint8Array(0))).toBe("unknown record type 99");
  });

  it("cuts a torn last record of the last segment", () => {
    const { bytes, offsets } = segment(RECORDS);
    const torn = bytes.subarray(0, bytes.byteLength - 3);
    const scan = scanSegment("f", torn, { id: ID, isLast: true });
    expect(scan.records.length).toBe(3);
    expect(scan.tornTail?.offsetBytes).toBe(offsets[3]);
    expect(scan.validEndBytes).toBe(offsets[3]);
  });

  it("cuts a checksum-failing last record followed only by zeros", () => {
    const { bytes, offsets } = segment(RECORDS);
    const padded = new Uint8Array(bytes.byteLength + 100);
    padded.set(bytes);
    flip(padded, offsets[3]! + 18, 4);
    const scan = scanSegment("f", padded, { id: ID, isLast: true });
    expect(scan.records.length).toBe(3);
    expect(scan.tornTail?.reason).toMatch(/payload checksum/);
  });

  it("treats zeros after the last record as the end of the log", () => {
    const { bytes } = segment(RECORDS);
    const padded = new Uint8Array(bytes.byteLength + 64);
    padded.set(bytes);
    const scan = scanSegment("f", padded, { id: ID, isLast: true });
    expect(scan.records.length).toBe(4);
    expect(scan.validEndBytes).toBe(bytes.byteLength);
  });

  it("raises StorageCorrupt for a bad record followed by more data, naming file and offset", () => {
    const { bytes, offsets } = segment(RECORDS);
    const damaged = bytes.slice();
    flip(damaged, offsets[1]! + 25, 1);
    let thrown: unknown;
    try {
      scanSegment("seg.log", damaged, { id: ID, isLast: true });
    } catch (error) {
      thrown = error;
    }
    expect(thrown).toBeInstanceOf(StorageCorruptError);
    expect(thrown).toMatchObject({ file: "seg.log", offset: offsets[1] });
  });

  it("raises StorageCorrupt for any damage in a segment that is not the last", () => {
    const { bytes } = segment(RECORDS);
    expect(() =>
      scanSegment("f", bytes.subarray(0, bytes.byteLength - 1), { id: ID, isLast: false }),
    ).toThrow(StorageCorruptError);
  });

  it("checks the segment header: checksum, magic, version and name", () => {
    const { bytes } = segment(RECORDS);
    const damaged = bytes.slice();
    flip(damaged, 20, 1);
    expect(() => scanSegment("f", damaged, { id: ID, isLast: true })).toThrow(/header checksum/);
    expect(() =>
      scanSegment("f", bytes, { id: { sequence: 4, firstIndex: 17 }, isLast: true }),
    ).toThrow(/does not match its file name/);
    const torn = scanSegment("f", bytes.subarray(0, 30), { id: ID, isLast: true });
    expect(torn.tornCreation).toBe(true);
  });
});
