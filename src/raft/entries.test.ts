import { describe, expect, it } from "vitest";
import {
  ENTRY_WIRE_OVERHEAD_BYTES,
  countWithinSize,
  entryPayloadSize,
  entryWireSize,
  limitSize,
  payloadsSize,
  wireSize,
} from "./entries.js";
import { EntryType, type Entry } from "./types.js";

function entry(index: number, dataBytes: number): Entry {
  return { index, term: 1, type: EntryType.Normal, data: new Uint8Array(dataBytes) };
}

describe("entry sizes", () => {
  it("count the payload toward the uncommitted limit and add a fixed overhead on the wire", () => {
    expect(entryPayloadSize(entry(1, 0))).toBe(0);
    expect(entryPayloadSize(entry(1, 10))).toBe(10);
    expect(entryWireSize(entry(1, 0))).toBe(24);
    expect(entryWireSize(entry(1, 10))).toBe(34);
    expect(ENTRY_WIRE_OVERHEAD_BYTES).toBe(24);
  });

  it("sum over a batch", () => {
    const entries = [entry(1, 3), entry(2, 0), entry(3, 7)];
    expect(payloadsSize(entries)).toBe(10);
    expect(payloadsSize([])).toBe(0);
    expect(wireSize(entries)).toBe(10 + 3 * 24);
  });

  it("count only the payload view, not the whole underlying buffer", () => {
    const buffer = new Uint8Array(100);
    const view: Entry = {
      index: 1,
      term: 1,
      type: EntryType.Normal,
      data: buffer.subarray(10, 15),
    };
    expect(entryPayloadSize(view)).toBe(5);
    expect(entryWireSize(view)).toBe(29);
  });
});

describe("countWithinSize", () => {
  const entries = [entry(1, 6), entry(2, 6), entry(3, 6), entry(4, 6)]; // 30 bytes each on the wire

  it("counts the entries of a range that fit, possibly none", () => {
    expect(countWithinSize(entries, { from: 0, to: 4, maxSizeBytes: 29 })).toBe(0);
    expect(countWithinSize(entries, { from: 0, to: 4, maxSizeBytes: 30 })).toBe(1);
    expect(countWithinSize(entries, { from: 0, to: 4, maxSizeBytes: 89 })).toBe(2);
    expect(countWithinSize(entries, { from: 1, to: 3, maxSizeBytes: 1000 })).toBe(2);
    expect(countWithinSize(entries, { from: 2, to: 2, maxSizeBytes: 1000 })).toBe(0);
    expect(countWithinSize(entries, { from: 0, to: 4, maxSizeBytes: Infinity })).toBe(4);
  });
});

describe("limitSize", () => {
  const entries = [entry(4, 6), entry(5, 6), entry(6, 6)]; // 30 bytes each on the wire

  it.each([
    { maxSizeBytes: Infinity, want: [4, 5, 6] },
    { maxSizeBytes: 0, want: [4] }, // at least one, even over the limit
    { maxSizeBytes: 29, want: [4] },
    { maxSizeBytes: 30, want: [4] },
    { maxSizeBytes: 59, want: [4] },
    { maxSizeBytes: 60, want: [4, 5] },
    { maxSizeBytes: 89, want: [4, 5] },
    { maxSizeBytes: 90, want: [4, 5, 6] },
    { maxSizeBytes: 1000, want: [4, 5, 6] },
  ])("keeps the longest prefix within $maxSizeBytes bytes", ({ maxSizeBytes, want }) => {
    expect(limitSize(entries, maxSizeBytes).map((e) => e.index)).toEqual(want);
  });

  it("returns the same array when nothing is cut, and a copy otherwise", () => {
    expect(limitSize(entries, 90)).toBe(entries);
    const cut = limitSize(entries, 30);
    expect(cut).not.toBe(entries);
    expect(cut[0]).toBe(entries[0]); // entries themselves are shared, not cloned
    const empty: Entry[] = [];
    expect(limitSize(empty, 0)).toBe(empty);
  });

  it("lets a single oversized entry through", () => {
    const big = [entry(1, 1000), entry(2, 0)];
    expect(limitSize(big, 10).map((e) => e.index)).toEqual([1]);
  });
});
