import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InternalError } from "../common/errors.js";
import { entryWireSize, limitSize } from "./entries.js";
import { RaftLog } from "./log.js";
import { CompactedError, LogUnavailableError, MemoryStorage } from "./storage.js";
import { EMPTY_CONF_STATE, EntryType, type Entry, type Snapshot } from "./types.js";

function entry(index: number, term: number, dataBytes = 0): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(dataBytes) };
}

function snapshot(index: number, term: number): Snapshot {
  return { metadata: { index, term, confState: EMPTY_CONF_STATE }, data: new Uint8Array() };
}

/** Entries lo..hi with the given term for each (a function of the index). */
function run(lo: number, hi: number, termOf: (index: number) => number = (i) => i): Entry[] {
  const entries: Entry[] = [];
  for (let i = lo; i <= hi; i++) entries.push(entry(i, termOf(i)));
  return entries;
}

/** A log over storage holding `stored` after an optional snapshot; nothing unstable. */
function logWith(
  stored: Entry[],
  options: { snapshot?: Snapshot; maxCommittedSizePerReadyBytes?: number } = {},
): RaftLog {
  const storage = new MemoryStorage();
  if (options.snapshot !== undefined) storage.applySnapshot(options.snapshot);
  storage.append(stored);
  return new RaftLog(storage, {
    maxCommittedSizePerReadyBytes: options.maxCommittedSizePerReadyBytes ?? Infinity,
  });
}

function indexes(entries: readonly Entry[]): number[] {
  return entries.map((e) => e.index);
}

function pairs(entries: readonly Entry[]): Array<[number, number]> {
  return entries.map((e) => [e.index, e.term]);
}

/** Every entry of the log from firstIndex on, as [index, term]. */
function everything(log: RaftLog): Array<[number, number]> {
  return pairs(log.entries(log.firstIndex(), Infinity));
}

describe("RaftLog", () => {
  describe("construction", () => {
    it("starts committed and applied at the storage's snapshot, unstable after its last entry", () => {
      const log = logWith(run(11, 13), { snapshot: snapshot(10, 2) });
      expect(log.committed).toBe(10);
      expect(log.applied).toBe(10);
      expect(log.firstIndex()).toBe(11);
      expect(log.lastIndex()).toBe(13);
      expect(log.lastTerm()).toBe(13);
      expect(log.unstable.offset).toBe(14);
      expect(log.unstableEntries()).toEqual([]);
    });

    it("over empty storage is an empty log at (0, 0)", () => {
      const log = logWith([]);
      expect(log.firstIndex()).toBe(1);
      expect(log.lastIndex()).toBe(0);
      expect(log.lastTerm()).toBe(0);
      expect(log.committed).toBe(0);
      expect(log.toString()).toBe("committed=0 applied=0 unstable.offset=1 unstable.entries=0");
    });
  });

  describe("term", () => {
    // snapshot (100, 1); storage 101..149; unstable 150..199, term = index
    const log = logWith(run(101, 149), { snapshot: snapshot(100, 1) });
    log.append(run(150, 199));

    it.each([
      { index: 100, want: 1 },
      { index: 101, want: 101 },
      { index: 149, want: 149 },
      { index: 150, want: 150 },
      { index: 199, want: 199 },
    ])("of $index is $want", ({ index, want }) => {
      expect(log.term(index)).toBe(want);
      expect(log.termOrZero(index)).toBe(want);
      expect(log.matchTerm(index, want)).toBe(true);
      expect(log.matchTerm(index, want + 1)).toBe(false);
    });

    it("throws CompactedError below the snapshot and LogUnavailableError past the end", () => {
      expect(() => log.term(99)).toThrow(CompactedError);
      expect(() => log.term(200)).toThrow(LogUnavailableError);
      expect(log.termOrZero(99)).toBe(0);
      expect(log.termOrZero(200)).toBe(0);
      expect(log.matchTerm(99, 0)).toBe(false);
      expect(log.matchTerm(200, 0)).toBe(false);
    });

    it("of an unstable snapshot's index is the snapshot's term", () => {
      const restored = logWith(run(1, 3));
      restored.restore(snapshot(50, 7));
      expect(restored.term(50)).toBe(7);
      expect(() => restored.term(49)).toThrow(CompactedError);
      expect(() => restored.term(51)).toThrow(LogUnavailableError);
    });

    it("prefers the unstable entry where it overwrites a stored one", () => {
      const overwritten = logWith(run(1, 5, () => 1));
      overwritten.append([entry(4, 2)]);
      expect(overwritten.term(4)).toBe(2);
      expect(overwritten.term(3)).toBe(1);
      expect(() => overwritten.term(5)).toThrow(LogUnavailableError);
      expect(overwritten.lastIndex()).toBe(4);
    });
  });

  describe("findConflict", () => {
    const log = logWith(run(1, 3));

    it.each([
      { name: "no entries", entries: [], want: 0 },
      { name: "all present", entries: run(1, 3), want: 0 },
      { name: "a present suffix", entries: run(2, 3), want: 0 },
      { name: "the last one", entries: run(3, 3), want: 0 },
      { name: "new after all", entries: run(1, 5, (i) => Math.min(i, 4)), want: 4 },
      { name: "new after some", entries: run(2, 5, (i) => Math.min(i, 4)), want: 4 },
      { name: "new after one", entries: run(3, 5, (i) => Math.min(i, 4)), want: 4 },
      { name: "only new", entries: run(4, 5, () => 4), want: 4 },
      { name: "conflict at the first", entries: run(1, 2, () => 4), want: 1 },
      { name: "conflict at the second", entries: [entry(2, 1), entry(3, 4), entry(4, 4)], want: 2 },
      {
        name: "conflict at the third",
        entries: [entry(3, 1), entry(4, 2), entry(5, 4), entry(6, 4)],
        want: 3,
      },
    ])("$name -> $want", ({ entries, want }) => {
      expect(log.findConflict(entries)).toBe(want);
    });
  });

  describe("findConflictByTerm", () => {
    // terms of 1..10: 1 1 2 2 2 4 4 5 5 5
    const terms = [0, 1, 1, 2, 2, 2, 4, 4, 5, 5, 5];
    const termOf = (i: number): number => terms[i] ?? -1;
    const full = logWith(run(1, 10, termOf));
    // the same log with 1..5 compacted into a snapshot (5, 2)
    const compacted = logWith(run(6, 10, termOf), { snapshot: snapshot(5, 2) });

    it.each([
      { log: full, index: 10, term: 5, want: { index: 10, term: 5 } },
      { log: full, index: 10, term: 6, want: { index: 10, term: 5 } },
      { log: full, index: 10, term: 4, want: { index: 7, term: 4 } },
      { log: full, index: 10, term: 3, want: { index: 5, term: 2 } },
      { log: full, index: 10, term: 1, want: { index: 2, term: 1 } },
      { log: full, index: 10, term: 0, want: { index: 0, term: 0 } },
      { log: full, index: 7, term: 4, want: { index: 7, term: 4 } },
      { log: full, index: 6, term: 3, want: { index: 5, term: 2 } },
      { log: full, index: 3, term: 1, want: { index: 2, term: 1 } },
      { log: full, index: 0, term: 0, want: { index: 0, term: 0 } },
      // beyond the last index the term is unknown: probe that index
      { log: full, index: 12, term: 5, want: { index: 12, term: 0 } },
      { log: compacted, index: 10, term: 3, want: { index: 5, term: 2 } },
      { log: compacted, index: 10, term: 4, want: { index: 7, term: 4 } },
      // below the snapshot the term is unknown: stop there
      { log: compacted, index: 10, term: 1, want: { index: 4, term: 0 } },
      { log: compacted, index: 3, term: 1, want: { index: 3, term: 0 } },
    ])("($index, $term) -> $want.index", ({ log, index, term, want }) => {
      expect(log.findConflictByTerm(index, term)).toEqual(want);
    });
  });

  describe("maybeAppend", () => {
    // log 1..3 with term = index, committed 1
    function fresh(): RaftLog {
      const log = logWith([]);
      log.append(run(1, 3));
      log.commitTo(1);
      return log;
    }

    it.each([
      // the log does not match at (index, logTerm): nothing changes
      {
        name: "term mismatch",
        index: 3,
        logTerm: 2,
        commit: 3,
        entries: [entry(4, 4)],
        want: undefined,
        committed: 1,
        last: 3,
      },
      {
        name: "index past the end",
        index: 4,
        logTerm: 3,
        commit: 3,
        entries: [entry(5, 4)],
        want: undefined,
        committed: 1,
        last: 3,
      },
      // match at the last entry
      {
        name: "heartbeat-like",
        index: 3,
        logTerm: 3,
        commit: 3,
        entries: [],
        want: 3,
        committed: 3,
        last: 3,
      },
      {
        name: "commit bounded by the last new index",
        index: 3,
        logTerm: 3,
        commit: 4,
        entries: [],
        want: 3,
        committed: 3,
        last: 3,
      },
      {
        name: "commit below ours",
        index: 3,
        logTerm: 3,
        commit: 2,
        entries: [],
        want: 3,
        committed: 2,
        last: 3,
      },
      {
        name: "commit never lowered",
        index: 3,
        logTerm: 3,
        commit: 0,
        entries: [],
        want: 3,
        committed: 1,
        last: 3,
      },
      {
        name: "one new entry",
        index: 3,
        logTerm: 3,
        commit: 3,
        entries: [entry(4, 4)],
        want: 4,
        committed: 3,
        last: 4,
      },
      {
        name: "commit the new entry",
        index: 3,
        logTerm: 3,
        commit: 4,
        entries: [entry(4, 4)],
        want: 4,
        committed: 4,
        last: 4,
      },
      {
        name: "commit bounded by new entries",
        index: 3,
        logTerm: 3,
        commit: 5,
        entries: [entry(4, 4)],
        want: 4,
        committed: 4,
        last: 4,
      },
      {
        name: "two new entries",
        index: 3,
        logTerm: 3,
        commit: 4,
        entries: [entry(4, 4), entry(5, 4)],
        want: 5,
        committed: 4,
        last: 5,
      },
      // match in the middle: conflicting entries are replaced and the rest dropped
      {
        name: "conflict at 3",
        index: 2,
        logTerm: 2,
        commit: 3,
        entries: [entry(3, 4)],
        want: 3,
        committed: 3,
        last: 3,
      },
      {
        name: "conflict at 2",
        index: 1,
        logTerm: 1,
        commit: 3,
        entries: [entry(2, 4)],
        want: 2,
        committed: 2,
        last: 2,
      },
      {
        name: "conflict and extend",
        index: 2,
        logTerm: 2,
        commit: 4,
        entries: [entry(3, 4), entry(4, 4)],
        want: 4,
        committed: 4,
        last: 4,
      },
      // a stale message whose entries are all present: nothing is truncated
      {
        name: "stale",
        index: 1,
        logTerm: 1,
        commit: 3,
        entries: [entry(2, 2)],
        want: 2,
        committed: 2,
        last: 3,
      },
    ])("$name", ({ index, logTerm, commit, entries, want, committed, last }) => {
      const log = fresh();
      const before = everything(log);
      expect(log.maybeAppend(index, logTerm, commit, entries)).toBe(want);
      expect(log.committed).toBe(committed);
      expect(log.lastIndex()).toBe(last);
      if (want === undefined) expect(everything(log)).toEqual(before);
      // every entry sent is now in the log
      else for (const sent of entries) expect(log.term(sent.index)).toBe(sent.term);
    });

    it("replaces the conflicting suffix and drops everything after it", () => {
      const log = fresh();
      expect(log.maybeAppend(1, 1, 1, [entry(2, 4)])).toBe(2);
      expect(everything(log)).toEqual([
        [1, 1],
        [2, 4],
      ]);
    });

    it("never truncates on a stale message whose entries are already present", () => {
      const log = fresh();
      expect(log.maybeAppend(1, 1, 3, [entry(2, 2)])).toBe(2);
      expect(everything(log)).toEqual([
        [1, 1],
        [2, 2],
        [3, 3],
      ]);
      // commit is bounded by the last index the message vouches for, not our last index
      expect(log.committed).toBe(2);
    });

    it("fails when a conflict would overwrite a committed entry", () => {
      const log = fresh();
      expect(() => log.maybeAppend(0, 0, 3, [entry(1, 4)])).toThrow(InternalError);
      log.commitTo(3);
      expect(() => log.maybeAppend(2, 2, 3, [entry(3, 4)])).toThrow(InternalError);
      expect(log.term(3)).toBe(3);
    });

    it("appends entries that follow a stored prefix", () => {
      const log = logWith(run(1, 3));
      expect(log.maybeAppend(2, 2, 0, [entry(3, 3), entry(4, 3), entry(5, 3)])).toBe(5);
      expect(pairs(log.unstableEntries())).toEqual([
        [4, 3],
        [5, 3],
      ]);
      expect(log.unstable.offset).toBe(4);
    });
  });

  describe("append", () => {
    it.each([
      {
        name: "nothing",
        entries: [],
        want: 2,
        offset: 3,
        all: [
          [1, 1],
          [2, 2],
        ],
      },
      {
        name: "after the last",
        entries: [entry(3, 2)],
        want: 3,
        offset: 3,
        all: [
          [1, 1],
          [2, 2],
          [3, 2],
        ],
      },
      {
        name: "overwrite from the first",
        entries: [entry(1, 2)],
        want: 1,
        offset: 1,
        all: [[1, 2]],
      },
      {
        name: "overwrite from the middle",
        entries: [entry(2, 3), entry(3, 3)],
        want: 3,
        offset: 2,
        all: [
          [1, 1],
          [2, 3],
          [3, 3],
        ],
      },
    ])("$name", ({ entries, want, offset, all }) => {
      const log = logWith(run(1, 2));
      expect(log.append(entries)).toBe(want);
      expect(log.unstable.offset).toBe(offset);
      expect(everything(log)).toEqual(all);
    });

    it("fails when it would overwrite a committed entry", () => {
      const log = logWith(run(1, 3));
      log.commitTo(2);
      expect(() => log.append([entry(2, 4)])).toThrow(InternalError);
      expect(log.append([entry(3, 4)])).toBe(3);
    });

    it("never changes the unstable entries already handed out", () => {
      const log = logWith([]);
      log.append(run(1, 2));
      const handedOut = log.unstableEntries();
      log.append(run(3, 4));
      log.append([entry(2, 9)]);
      expect(indexes(handedOut)).toEqual([1, 2]);
      expect(handedOut[1]!.term).toBe(2);
    });
  });

  describe("stableTo and unstableEntries", () => {
    it("drops entries from unstable once durable, unless their term changed", () => {
      const log = logWith([]);
      log.append(run(1, 3));
      expect(indexes(log.unstableEntries())).toEqual([1, 2, 3]);
      log.stableTo(1, 1);
      expect(indexes(log.unstableEntries())).toEqual([2, 3]);
      log.stableTo(3, 2); // entry 3 has term 3: a stale acknowledgement
      expect(indexes(log.unstableEntries())).toEqual([2, 3]);
      log.stableTo(3, 3);
      expect(log.unstableEntries()).toEqual([]);
      expect(log.unstable.offset).toBe(4);
    });

    it("stableSnapTo drops the unstable snapshot, so storage's is used again", () => {
      const storage = new MemoryStorage();
      storage.append(run(1, 3));
      const log = new RaftLog(storage, { maxCommittedSizePerReadyBytes: Infinity });
      const incoming = snapshot(10, 2);
      log.restore(incoming);
      expect(log.snapshot()).toBe(incoming);
      log.stableSnapTo(9);
      expect(log.snapshot()).toBe(incoming);
      // the application persists it (a distinct object, so we can tell which one is read)
      const persisted: Snapshot = { ...incoming };
      storage.applySnapshot(persisted);
      expect(log.snapshot()).toBe(incoming);
      log.stableSnapTo(10);
      expect(log.unstable.snapshot).toBeUndefined();
      expect(log.snapshot()).toBe(persisted);
      expect(log.firstIndex()).toBe(11);
      expect(log.lastIndex()).toBe(10);
      expect(log.term(10)).toBe(2);
    });
  });

  describe("commitTo", () => {
    it("raises committed, never lowers it", () => {
      const log = logWith(run(1, 3));
      log.commitTo(2);
      expect(log.committed).toBe(2);
      log.commitTo(3);
      expect(log.committed).toBe(3);
      log.commitTo(1);
      expect(log.committed).toBe(3);
    });

    it("fails past the last index", () => {
      const log = logWith(run(1, 3));
      expect(() => log.commitTo(4)).toThrow(InternalError);
      expect(log.committed).toBe(0);
    });
  });

  describe("maybeCommit", () => {
    it("commits only entries of the given term, and only forward", () => {
      const log = logWith(run(1, 4, (i) => (i <= 2 ? 1 : 2)));
      expect(log.maybeCommit(2, 2)).toBe(false); // entry 2 is from term 1
      expect(log.maybeCommit(3, 1)).toBe(false); // entry 3 is from term 2
      expect(log.committed).toBe(0);
      expect(log.maybeCommit(3, 2)).toBe(true);
      expect(log.committed).toBe(3);
      expect(log.maybeCommit(3, 2)).toBe(false);
      expect(log.maybeCommit(2, 1)).toBe(false);
      expect(log.maybeCommit(5, 2)).toBe(false); // past the end: term unknown
      expect(log.maybeCommit(4, 2)).toBe(true);
      expect(log.committed).toBe(4);
    });
  });

  describe("appliedTo", () => {
    it("moves applied within [applied, committed]", () => {
      const log = logWith(run(1, 5));
      log.commitTo(3);
      log.appliedTo(2);
      expect(log.applied).toBe(2);
      log.appliedTo(2);
      expect(log.applied).toBe(2);
      log.appliedTo(0); // nothing applied: ignored
      expect(log.applied).toBe(2);
      expect(() => log.appliedTo(1)).toThrow(InternalError);
      expect(() => log.appliedTo(4)).toThrow(InternalError);
      log.appliedTo(3);
      expect(log.applied).toBe(3);
    });
  });

  describe("nextCommittedEntries", () => {
    // snapshot (3, 1); unstable 4, 5, 6 of term 1; committed 5
    function fresh(maxCommittedSizePerReadyBytes = Infinity): RaftLog {
      const log = logWith([], {
        snapshot: snapshot(3, 1),
        maxCommittedSizePerReadyBytes,
      });
      log.append(run(4, 6, () => 1));
      expect(log.maybeCommit(5, 1)).toBe(true);
      return log;
    }

    it.each([
      { applied: 0, want: [4, 5] }, // applied below the snapshot: start after it
      { applied: 3, want: [4, 5] },
      { applied: 4, want: [5] },
      { applied: 5, want: [] },
    ])("after applying $applied: $want", ({ applied, want }) => {
      const log = fresh();
      log.applied = applied;
      expect(indexes(log.nextCommittedEntries())).toEqual(want);
      expect(log.hasNextCommittedEntries()).toBe(want.length > 0);
    });

    it("is bounded by maxCommittedSizePerReadyBytes, at least one entry", () => {
      const one = entryWireSize(entry(4, 1));
      const bounded = fresh(one);
      bounded.appliedTo(3);
      expect(indexes(bounded.nextCommittedEntries())).toEqual([4]);
      const zero = fresh(0);
      expect(indexes(zero.nextCommittedEntries())).toEqual([4]);
      const two = fresh(2 * one);
      two.commitTo(6);
      expect(indexes(two.nextCommittedEntries())).toEqual([4, 5]);
    });

    it("walks the committed entries across storage and unstable as they are applied", () => {
      const log = logWith(
        run(1, 4, () => 1),
        {
          maxCommittedSizePerReadyBytes: 3 * entryWireSize(entry(1, 1, 10)),
        },
      );
      log.append([entry(5, 1, 10), entry(6, 1, 10), entry(7, 1, 10), entry(8, 1, 10)]);
      log.commitTo(7);
      const batches: number[][] = [];
      while (log.hasNextCommittedEntries()) {
        const batch = log.nextCommittedEntries();
        batches.push(indexes(batch));
        log.appliedTo(batch[batch.length - 1]!.index);
      }
      // storage entries are 24 bytes, unstable ones 34: 1..4 fit within 102 bytes, then 5..7
      expect(batches).toEqual([
        [1, 2, 3, 4],
        [5, 6, 7],
      ]);
      expect(log.nextCommittedEntries()).toEqual([]);
    });
  });

  describe("isUpToDate (§5.4.1)", () => {
    // our last entry is (3, 3)
    const log = logWith(run(1, 3));

    it.each([
      // a later last term wins regardless of length
      { lastIndex: 2, term: 4, want: true },
      { lastIndex: 3, term: 4, want: true },
      { lastIndex: 4, term: 4, want: true },
      // an earlier last term loses regardless of length
      { lastIndex: 2, term: 2, want: false },
      { lastIndex: 3, term: 2, want: false },
      { lastIndex: 4, term: 2, want: false },
      // equal last terms: the longer (or equal) log wins
      { lastIndex: 2, term: 3, want: false },
      { lastIndex: 3, term: 3, want: true },
      { lastIndex: 4, term: 3, want: true },
    ])("(lastIndex $lastIndex, term $term) -> $want", ({ lastIndex, term, want }) => {
      expect(log.isUpToDate(lastIndex, term)).toBe(want);
    });
  });

  describe("slice", () => {
    // snapshot (100, 100); storage 101..149; unstable 150..199; term = index
    const log = logWith(run(101, 149), { snapshot: snapshot(100, 100) });
    log.append(run(150, 199));
    const one = entryWireSize(entry(1, 1));

    it.each([
      { lo: 149, hi: 151, maxSizeBytes: Infinity, want: [149, 150] },
      { lo: 150, hi: 151, maxSizeBytes: Infinity, want: [150] },
      { lo: 198, hi: 200, maxSizeBytes: Infinity, want: [198, 199] },
      { lo: 101, hi: 103, maxSizeBytes: Infinity, want: [101, 102] },
      { lo: 120, hi: 120, maxSizeBytes: Infinity, want: [] },
      { lo: 160, hi: 160, maxSizeBytes: Infinity, want: [] },
      // size limits within storage, within unstable and across the boundary
      { lo: 149, hi: 151, maxSizeBytes: 0, want: [149] },
      { lo: 149, hi: 151, maxSizeBytes: one + 1, want: [149] },
      { lo: 148, hi: 151, maxSizeBytes: 2 * one, want: [148, 149] },
      { lo: 149, hi: 152, maxSizeBytes: 2 * one, want: [149, 150] },
      { lo: 149, hi: 152, maxSizeBytes: 3 * one, want: [149, 150, 151] },
      { lo: 150, hi: 152, maxSizeBytes: 0, want: [150] },
      { lo: 150, hi: 152, maxSizeBytes: one, want: [150] },
      { lo: 150, hi: 152, maxSizeBytes: 2 * one, want: [150, 151] },
    ])("[$lo, $hi) within $maxSizeBytes bytes", ({ lo, hi, maxSizeBytes, want }) => {
      const got = log.slice(lo, hi, maxSizeBytes);
      expect(indexes(got)).toEqual(want);
      for (const e of got) expect(e.term).toBe(e.index);
    });

    it("throws CompactedError below firstIndex and LogUnavailableError past the end", () => {
      expect(() => log.slice(99, 101, Infinity)).toThrow(CompactedError);
      expect(() => log.slice(100, 101, Infinity)).toThrow(CompactedError);
      expect(() => log.slice(199, 201, Infinity)).toThrow(LogUnavailableError);
      expect(() => log.slice(200, 201, Infinity)).toThrow(LogUnavailableError);
      expect(() => log.slice(151, 150, Infinity)).toThrow(InternalError);
    });

    it("stops at the storage part when the budget ran out there, never skipping entries", () => {
      // storage entries of 64 bytes on the wire, unstable ones of 24
      const mixed = logWith([entry(1, 1, 40), entry(2, 1, 40)]);
      mixed.append([entry(3, 1), entry(4, 1)]);
      expect(indexes(mixed.slice(1, 5, 100))).toEqual([1]);
      expect(indexes(mixed.slice(1, 5, 128))).toEqual([1, 2]);
      expect(indexes(mixed.slice(1, 5, 128 + 24))).toEqual([1, 2, 3]);
      expect(indexes(mixed.slice(2, 5, 64 + 47))).toEqual([2, 3]);
    });

    it("entries(i) reads to the end, [] past it, CompactedError before the first", () => {
      expect(indexes(log.entries(197, Infinity))).toEqual([197, 198, 199]);
      expect(indexes(log.entries(148, 2 * one))).toEqual([148, 149]);
      expect(log.entries(200, Infinity)).toEqual([]);
      expect(() => log.entries(100, Infinity)).toThrow(CompactedError);
    });

    it("matches limitSize over the whole log, for any split between storage and unstable", () => {
      fc.assert(
        fc.property(
          fc.array(fc.oneof(fc.constant(0), fc.integer({ min: 0, max: 40 })), {
            minLength: 1,
            maxLength: 30,
          }),
          fc.nat(30),
          fc.nat(30),
          fc.nat(30),
          fc.integer({ min: 0, max: 400 }),
          (sizes, splitSeed, loSeed, hiSeed, maxSizeBytes) => {
            const all = sizes.map((bytes, i) => entry(i + 1, 1, bytes));
            const split = splitSeed % (all.length + 1);
            const model = logWith(all.slice(0, split));
            model.append(all.slice(split));
            const lo = 1 + (loSeed % all.length);
            const hi = lo + (hiSeed % (all.length + 2 - lo));
            const want = limitSize(all.slice(lo - 1, hi - 1), maxSizeBytes);
            expect(model.slice(lo, hi, maxSizeBytes)).toEqual(want);
          },
        ),
        { numRuns: 500 },
      );
    });
  });

  describe("restore", () => {
    it("resets to the snapshot: committed at its index, nothing unstable but it", () => {
      const log = logWith(run(1, 5));
      log.append(run(6, 7));
      log.commitTo(3);
      log.appliedTo(2);
      const incoming = snapshot(10, 4);
      log.restore(incoming);
      expect(log.committed).toBe(10);
      expect(log.applied).toBe(2);
      expect(log.firstIndex()).toBe(11);
      expect(log.lastIndex()).toBe(10);
      expect(log.lastTerm()).toBe(4);
      expect(log.unstableEntries()).toEqual([]);
      expect(log.unstable.offset).toBe(11);
      expect(log.snapshot()).toBe(incoming);
      expect(log.hasNextCommittedEntries()).toBe(false);
      expect(log.nextCommittedEntries()).toEqual([]);
      expect(log.matchTerm(10, 4)).toBe(true);
      expect(log.append([entry(11, 4)])).toBe(11);
      expect(log.toString()).toBe("committed=10 applied=2 unstable.offset=11 unstable.entries=1");
    });
  });
});
