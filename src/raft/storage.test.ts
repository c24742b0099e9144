import { describe, expect, it } from "vitest";
import { BlixardError, InternalError } from "../common/errors.js";
import { entryWireSize } from "./entries.js";
import {
  CompactedError,
  LogUnavailableError,
  MemoryStorage,
  SnapshotOutOfDateError,
  SnapshotTemporarilyUnavailableError,
} from "./storage.js";
import {
  EMPTY_CONF_STATE,
  EMPTY_HARD_STATE,
  EMPTY_SNAPSHOT,
  EntryType,
  type ConfState,
  type Entry,
  type Snapshot,
} from "./types.js";

function entry(index: number, term: number, dataBytes = 0): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(dataBytes) };
}

function confState(voters: number[]): ConfState {
  return { ...EMPTY_CONF_STATE, voters };
}

function snapshot(index: number, term: number, voters: number[] = [1]): Snapshot {
  return { metadata: { index, term, confState: confState(voters) }, data: new Uint8Array([index]) };
}

/** A storage whose snapshot (the dummy) is (3, 3), followed by entries (4,4) ... (last, last). */
function storageFrom3To(lastIndex: number): MemoryStorage {
  const storage = new MemoryStorage();
  storage.applySnapshot(snapshot(3, 3));
  const entries: Entry[] = [];
  for (let i = 4; i <= lastIndex; i++) entries.push(entry(i, i));
  storage.append(entries);
  return storage;
}

/** Every entry storage holds after its dummy, as [index, term] pairs. */
function contents(storage: MemoryStorage): Array<[number, number]> {
  const lo = storage.firstIndex();
  return storage.entries(lo, storage.lastIndex() + 1, Infinity).map((e) => [e.index, e.term]);
}

describe("storage errors", () => {
  it("carry the codes callers branch on", () => {
    const errors = [
      [new CompactedError(3), "NOT_FOUND"],
      [new CompactedError(), "NOT_FOUND"],
      [new LogUnavailableError("x"), "NOT_FOUND"],
      [new SnapshotTemporarilyUnavailableError("x"), "UNAVAILABLE"],
      [new SnapshotOutOfDateError("x"), "CONFLICT"],
    ] as const;
    for (const [error, code] of errors) {
      expect(error).toBeInstanceOf(BlixardError);
      expect(error.code).toBe(code);
    }
    expect(new CompactedError(3).message).toContain("3");
    expect(new CompactedError(3).name).toBe("CompactedError");
  });
});

describe("MemoryStorage", () => {
  it("starts empty: dummy (0, 0), no entries, the empty snapshot and hard state", () => {
    const storage = new MemoryStorage();
    expect(storage.firstIndex()).toBe(1);
    expect(storage.lastIndex()).toBe(0);
    expect(storage.term(0)).toBe(0);
    expect(storage.snapshot()).toBe(EMPTY_SNAPSHOT);
    expect(storage.initialState()).toEqual({
      hardState: EMPTY_HARD_STATE,
      confState: EMPTY_CONF_STATE,
    });
    expect(storage.entries(1, 1, Infinity)).toEqual([]);
    expect(() => storage.entries(1, 2, Infinity)).toThrow(LogUnavailableError);
  });

  it("reports a bootstrap configuration and the hard state it was given", () => {
    const storage = new MemoryStorage({ confState: confState([1, 2, 3]) });
    storage.setHardState({ term: 5, vote: 2, commit: 0 });
    expect(storage.initialState()).toEqual({
      hardState: { term: 5, vote: 2, commit: 0 },
      confState: confState([1, 2, 3]),
    });
    expect(storage.snapshot().metadata.index).toBe(0);
  });

  describe("term", () => {
    const storage = storageFrom3To(5);

    it.each([
      { index: 3, term: 3 }, // the dummy: the snapshot's last term
      { index: 4, term: 4 },
      { index: 5, term: 5 },
    ])("is known for $index", ({ index, term }) => {
      expect(storage.term(index)).toBe(term);
    });

    it("throws CompactedError below the dummy and LogUnavailableError above the last", () => {
      expect(() => storage.term(2)).toThrow(CompactedError);
      expect(() => storage.term(6)).toThrow(LogUnavailableError);
    });
  });

  describe("entries", () => {
    const storage = storageFrom3To(6);
    const oneEntryBytes = entryWireSize(entry(4, 4));

    it.each([
      { lo: 4, hi: 5, maxSizeBytes: Infinity, want: [4] },
      { lo: 4, hi: 6, maxSizeBytes: Infinity, want: [4, 5] },
      { lo: 4, hi: 7, maxSizeBytes: Infinity, want: [4, 5, 6] },
      { lo: 5, hi: 7, maxSizeBytes: Infinity, want: [5, 6] },
      { lo: 5, hi: 5, maxSizeBytes: Infinity, want: [] },
      // at least one entry, even when it alone is over the limit
      { lo: 4, hi: 7, maxSizeBytes: 0, want: [4] },
      { lo: 4, hi: 7, maxSizeBytes: 2 * oneEntryBytes, want: [4, 5] },
      { lo: 4, hi: 7, maxSizeBytes: 3 * oneEntryBytes - 1, want: [4, 5] },
      { lo: 4, hi: 7, maxSizeBytes: 3 * oneEntryBytes, want: [4, 5, 6] },
    ])("[$lo, $hi) within $maxSizeBytes bytes", ({ lo, hi, maxSizeBytes, want }) => {
      expect(storage.entries(lo, hi, maxSizeBytes).map((e) => e.index)).toEqual(want);
    });

    it("throws CompactedError from the dummy down, LogUnavailableError past the end", () => {
      expect(() => storage.entries(2, 6, Infinity)).toThrow(CompactedError);
      expect(() => storage.entries(3, 4, Infinity)).toThrow(CompactedError);
      expect(() => storage.entries(4, 8, Infinity)).toThrow(LogUnavailableError);
      expect(() => storage.entries(5, 4, Infinity)).toThrow(InternalError);
    });

    it("hands out a copy that callers may change", () => {
      const got = storage.entries(4, 7, Infinity);
      got.length = 0;
      expect(storage.entries(4, 7, Infinity)).toHaveLength(3);
    });
  });

  describe("compact", () => {
    it("keeps entry `index` as the new dummy and the entries after it", () => {
      const storage = storageFrom3To(6);
      storage.compact(5);
      expect(storage.firstIndex()).toBe(6);
      expect(storage.lastIndex()).toBe(6);
      expect(storage.term(5)).toBe(5);
      expect(() => storage.term(4)).toThrow(CompactedError);
      expect(() => storage.entries(5, 7, Infinity)).toThrow(CompactedError);
      expect(contents(storage)).toEqual([[6, 6]]);
    });

    it("may compact up to the last index, leaving only the dummy", () => {
      const storage = storageFrom3To(6);
      storage.compact(6);
      expect(storage.firstIndex()).toBe(7);
      expect(storage.lastIndex()).toBe(6);
      expect(storage.term(6)).toBe(6);
      // compaction does not move the snapshot
      expect(storage.snapshot().metadata.index).toBe(3);
    });

    it("throws CompactedError at or below the dummy and fails beyond the last index", () => {
      const storage = storageFrom3To(6);
      expect(() => storage.compact(2)).toThrow(CompactedError);
      expect(() => storage.compact(3)).toThrow(CompactedError);
      expect(() => storage.compact(7)).toThrow(InternalError);
      expect(contents(storage)).toEqual([
        [4, 4],
        [5, 5],
        [6, 6],
      ]);
    });
  });

  describe("createSnapshot", () => {
    it("records index, its term, the configuration and data, and keeps the entries", () => {
      const storage = storageFrom3To(6);
      const data = new Uint8Array([7, 7]);
      const made = storage.createSnapshot(4, confState([1, 2]), data);
      expect(made).toEqual({
        metadata: { index: 4, term: 4, confState: confState([1, 2]) },
        data,
      });
      expect(storage.snapshot()).toBe(made);
      expect(storage.initialState().confState).toEqual(confState([1, 2]));
      expect(storage.firstIndex()).toBe(4);
      expect(contents(storage)).toHaveLength(3);
    });

    it("keeps the previous configuration when none is given", () => {
      const storage = storageFrom3To(6);
      storage.createSnapshot(4, confState([1, 2]), new Uint8Array());
      const made = storage.createSnapshot(6, undefined, new Uint8Array());
      expect(made.metadata).toEqual({ index: 6, term: 6, confState: confState([1, 2]) });
    });

    it("throws SnapshotOutOfDateError at or below the current snapshot, fails past the end", () => {
      const storage = storageFrom3To(6);
      expect(() => storage.createSnapshot(3, undefined, new Uint8Array())).toThrow(
        SnapshotOutOfDateError,
      );
      expect(() => storage.createSnapshot(2, undefined, new Uint8Array())).toThrow(
        SnapshotOutOfDateError,
      );
      expect(() => storage.createSnapshot(7, undefined, new Uint8Array())).toThrow(InternalError);
      expect(storage.snapshot().metadata.index).toBe(3);
    });
  });

  describe("applySnapshot", () => {
    it("replaces the log with the snapshot", () => {
      const storage = storageFrom3To(6);
      const incoming = snapshot(10, 7, [4, 5]);
      storage.applySnapshot(incoming);
      expect(storage.snapshot()).toBe(incoming);
      expect(storage.firstIndex()).toBe(11);
      expect(storage.lastIndex()).toBe(10);
      expect(storage.term(10)).toBe(7);
      expect(() => storage.term(6)).toThrow(CompactedError);
      expect(storage.initialState().confState).toEqual(confState([4, 5]));
    });

    it("also drops entries after the snapshot index", () => {
      const storage = storageFrom3To(10);
      storage.applySnapshot(snapshot(5, 9));
      expect(storage.lastIndex()).toBe(5);
      expect(storage.term(5)).toBe(9);
      expect(() => storage.term(6)).toThrow(LogUnavailableError);
    });

    it("throws SnapshotOutOfDateError unless the snapshot is newer, changing nothing", () => {
      const storage = new MemoryStorage();
      storage.applySnapshot(snapshot(4, 4));
      expect(() => storage.applySnapshot(snapshot(3, 3))).toThrow(SnapshotOutOfDateError);
      expect(() => storage.applySnapshot(snapshot(4, 5))).toThrow(SnapshotOutOfDateError);
      expect(storage.snapshot().metadata).toMatchObject({ index: 4, term: 4 });
      expect(storage.term(4)).toBe(4);
      expect(() => new MemoryStorage().applySnapshot(EMPTY_SNAPSHOT)).toThrow(
        SnapshotOutOfDateError,
      );
    });
  });

  describe("append", () => {
    it.each([
      {
        name: "identical entries change nothing",
        append: [entry(3, 3), entry(4, 4), entry(5, 5)],
        want: [
          [4, 4],
          [5, 5],
        ],
      },
      {
        name: "conflicting entries replace from the first overlap",
        append: [entry(3, 3), entry(4, 6), entry(5, 6)],
        want: [
          [4, 6],
          [5, 6],
        ],
      },
      {
        name: "overlap then extend",
        append: [entry(3, 3), entry(4, 4), entry(5, 5), entry(6, 5)],
        want: [
          [4, 4],
          [5, 5],
          [6, 5],
        ],
      },
      {
        name: "entries before the first index are skipped",
        append: [entry(2, 3), entry(3, 3), entry(4, 5)],
        want: [[4, 5]],
      },
      {
        name: "an overlap in the middle truncates the rest",
        append: [entry(4, 5)],
        want: [[4, 5]],
      },
      {
        name: "directly after the last entry",
        append: [entry(6, 5)],
        want: [
          [4, 4],
          [5, 5],
          [6, 5],
        ],
      },
      {
        name: "entries wholly before the first index are ignored",
        append: [entry(1, 1), entry(2, 2), entry(3, 3)],
        want: [
          [4, 4],
          [5, 5],
        ],
      },
      {
        name: "nothing",
        append: [],
        want: [
          [4, 4],
          [5, 5],
        ] as Array<[number, number]>,
      },
    ])("$name", ({ append, want }) => {
      const storage = storageFrom3To(5);
      storage.append(append);
      expect(contents(storage)).toEqual(want);
      expect(storage.term(3)).toBe(3); // the dummy is never replaced
    });

    it("fails on a gap after the last index", () => {
      const storage = storageFrom3To(5);
      expect(() => storage.append([entry(7, 5)])).toThrow(InternalError);
      expect(storage.lastIndex()).toBe(5);
    });

    it("does not keep a reference to the caller's array", () => {
      const storage = new MemoryStorage();
      const batch = [entry(1, 1), entry(2, 1)];
      storage.append(batch);
      batch.push(entry(3, 1));
      expect(storage.lastIndex()).toBe(2);
    });
  });
});
