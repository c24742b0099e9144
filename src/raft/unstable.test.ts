import { describe, expect, it } from "vitest";
import { InternalError } from "../common/errors.js";
import { entryWireSize } from "./entries.js";
import { EMPTY_CONF_STATE, EntryType, type Entry, type Snapshot } from "./types.js";
import { Unstable } from "./unstable.js";

function entry(index: number, term: number): Entry {
  return { index, term, type: EntryType.Normal, data: new Uint8Array(0) };
}

function snapshot(index: number, term: number): Snapshot {
  return { metadata: { index, term, confState: EMPTY_CONF_STATE }, data: new Uint8Array() };
}

/** An Unstable with the given offset, entries and snapshot, built through its own methods. */
function unstableWith(offset: number, entries: Entry[], snap?: Snapshot): Unstable {
  const unstable = new Unstable(offset);
  if (snap !== undefined) unstable.restore(snap);
  unstable.offset = offset;
  unstable.truncateAndAppend(entries);
  return unstable;
}

function pairs(entries: readonly Entry[]): Array<[number, number]> {
  return entries.map((e) => [e.index, e.term]);
}

describe("Unstable", () => {
  it.each([
    { name: "no snapshot", unstable: () => unstableWith(5, [entry(5, 1)]), want: undefined },
    { name: "nothing at all", unstable: () => new Unstable(0), want: undefined },
    {
      name: "snapshot and entries",
      unstable: () => unstableWith(5, [entry(5, 1)], snapshot(4, 1)),
      want: 5,
    },
    { name: "snapshot only", unstable: () => unstableWith(5, [], snapshot(4, 1)), want: 5 },
  ])("maybeFirstIndex: $name", ({ unstable, want }) => {
    expect(unstable().maybeFirstIndex()).toBe(want);
  });

  it.each([
    { name: "entries", unstable: () => unstableWith(5, [entry(5, 1)]), want: 5 },
    {
      name: "entries and snapshot",
      unstable: () => unstableWith(5, [entry(5, 1), entry(6, 1)], snapshot(4, 1)),
      want: 6,
    },
    { name: "snapshot only", unstable: () => unstableWith(5, [], snapshot(4, 1)), want: 4 },
    { name: "nothing", unstable: () => new Unstable(0), want: undefined },
  ])("maybeLastIndex: $name", ({ unstable, want }) => {
    expect(unstable().maybeLastIndex()).toBe(want);
  });

  it.each([
    { name: "an entry", unstable: () => unstableWith(5, [entry(5, 1)]), index: 5, want: 1 },
    {
      name: "after entries",
      unstable: () => unstableWith(5, [entry(5, 1)]),
      index: 6,
      want: undefined,
    },
    {
      name: "before entries",
      unstable: () => unstableWith(5, [entry(5, 1)]),
      index: 4,
      want: undefined,
    },
    {
      name: "the snapshot's index",
      unstable: () => unstableWith(5, [entry(5, 1)], snapshot(4, 3)),
      index: 4,
      want: 3,
    },
    {
      name: "below the snapshot",
      unstable: () => unstableWith(5, [entry(5, 1)], snapshot(4, 3)),
      index: 3,
      want: undefined,
    },
    {
      name: "an entry after a snapshot",
      unstable: () => unstableWith(5, [entry(5, 2)], snapshot(4, 1)),
      index: 5,
      want: 2,
    },
    {
      name: "snapshot only, its index",
      unstable: () => unstableWith(5, [], snapshot(4, 1)),
      index: 4,
      want: 1,
    },
    {
      name: "snapshot only, after it",
      unstable: () => unstableWith(5, [], snapshot(4, 1)),
      index: 5,
      want: undefined,
    },
    { name: "nothing", unstable: () => new Unstable(0), index: 5, want: undefined },
  ])("maybeTerm: $name", ({ unstable, index, want }) => {
    expect(unstable().maybeTerm(index)).toBe(want);
  });

  it("restore drops entries, moves offset past the snapshot and keeps it", () => {
    const unstable = unstableWith(5, [entry(5, 1)], snapshot(4, 1));
    const incoming = snapshot(6, 2);
    unstable.restore(incoming);
    expect(unstable.offset).toBe(7);
    expect(unstable.entries).toEqual([]);
    expect(unstable.snapshot).toBe(incoming);
    expect(unstable.maybeLastIndex()).toBe(6);
  });

  describe("stableTo", () => {
    it.each([
      { name: "nothing unstable", u: () => new Unstable(0), index: 5, term: 1, offset: 0, left: 0 },
      {
        name: "the only entry",
        u: () => unstableWith(5, [entry(5, 1)]),
        index: 5,
        term: 1,
        offset: 6,
        left: 0,
      },
      {
        name: "a prefix",
        u: () => unstableWith(5, [entry(5, 1), entry(6, 1)]),
        index: 5,
        term: 1,
        offset: 6,
        left: 1,
      },
      {
        name: "mismatched term",
        u: () => unstableWith(6, [entry(6, 2)]),
        index: 6,
        term: 1,
        offset: 6,
        left: 1,
      },
      {
        name: "an index below offset",
        u: () => unstableWith(5, [entry(5, 1)]),
        index: 4,
        term: 1,
        offset: 5,
        left: 1,
      },
      {
        name: "below offset, other term",
        u: () => unstableWith(5, [entry(5, 1)]),
        index: 4,
        term: 2,
        offset: 5,
        left: 1,
      },
      {
        name: "beyond the entries",
        u: () => unstableWith(5, [entry(5, 1)]),
        index: 6,
        term: 1,
        offset: 5,
        left: 1,
      },
      {
        name: "an entry after a snapshot",
        u: () => unstableWith(5, [entry(5, 1)], snapshot(4, 1)),
        index: 5,
        term: 1,
        offset: 6,
        left: 0,
      },
      {
        name: "a prefix after a snapshot",
        u: () => unstableWith(5, [entry(5, 1), entry(6, 1)], snapshot(4, 1)),
        index: 5,
        term: 1,
        offset: 6,
        left: 1,
      },
      {
        name: "mismatched term after a snapshot",
        u: () => unstableWith(6, [entry(6, 2)], snapshot(5, 1)),
        index: 6,
        term: 1,
        offset: 6,
        left: 1,
      },
      {
        // the snapshot's (index, term) matches, but entries are only dropped by stableTo of an entry
        name: "the snapshot's own index",
        u: () => unstableWith(5, [entry(5, 1)], snapshot(4, 1)),
        index: 4,
        term: 1,
        offset: 5,
        left: 1,
      },
      {
        name: "below the snapshot, other term",
        u: () => unstableWith(5, [entry(5, 2)], snapshot(4, 2)),
        index: 4,
        term: 1,
        offset: 5,
        left: 1,
      },
    ])("$name", ({ u, index, term, offset, left }) => {
      const unstable = u();
      unstable.stableTo(index, term);
      expect(unstable.offset).toBe(offset);
      expect(unstable.entries).toHaveLength(left);
    });

    it("keeps the snapshot; stableSnapTo drops it only at its own index", () => {
      const unstable = unstableWith(5, [entry(5, 1)], snapshot(4, 1));
      unstable.stableTo(5, 1);
      expect(unstable.snapshot?.metadata.index).toBe(4);
      unstable.stableSnapTo(3);
      expect(unstable.snapshot).toBeDefined();
      unstable.stableSnapTo(5);
      expect(unstable.snapshot).toBeDefined();
      unstable.stableSnapTo(4);
      expect(unstable.snapshot).toBeUndefined();
      unstable.stableSnapTo(4); // nothing left: a no-op
      expect(unstable.snapshot).toBeUndefined();
    });
  });

  describe("truncateAndAppend", () => {
    it.each([
      {
        name: "append after the last entry",
        offset: 5,
        entries: [entry(5, 1)],
        append: [entry(6, 1), entry(7, 1)],
        wantOffset: 5,
        want: [
          [5, 1],
          [6, 1],
          [7, 1],
        ],
      },
      {
        name: "replace all from offset",
        offset: 5,
        entries: [entry(5, 1)],
        append: [entry(5, 2), entry(6, 2)],
        wantOffset: 5,
        want: [
          [5, 2],
          [6, 2],
        ],
      },
      {
        name: "replace all from before offset",
        offset: 5,
        entries: [entry(5, 1)],
        append: [entry(4, 2), entry(5, 2), entry(6, 2)],
        wantOffset: 4,
        want: [
          [4, 2],
          [5, 2],
          [6, 2],
        ],
      },
      {
        name: "truncate in the middle",
        offset: 5,
        entries: [entry(5, 1), entry(6, 1), entry(7, 1)],
        append: [entry(6, 2)],
        wantOffset: 5,
        want: [
          [5, 1],
          [6, 2],
        ],
      },
      {
        name: "truncate the last entry and extend",
        offset: 5,
        entries: [entry(5, 1), entry(6, 1), entry(7, 1)],
        append: [entry(7, 2), entry(8, 2)],
        wantOffset: 5,
        want: [
          [5, 1],
          [6, 1],
          [7, 2],
          [8, 2],
        ],
      },
      {
        name: "into an empty unstable",
        offset: 5,
        entries: [],
        append: [entry(5, 1)],
        wantOffset: 5,
        want: [[5, 1]],
      },
      {
        name: "nothing",
        offset: 5,
        entries: [entry(5, 1)],
        append: [],
        wantOffset: 5,
        want: [[5, 1]],
      },
    ])("$name", ({ offset, entries, append, wantOffset, want }) => {
      const unstable = unstableWith(offset, entries);
      unstable.truncateAndAppend(append);
      expect(unstable.offset).toBe(wantOffset);
      expect(pairs(unstable.entries)).toEqual(want);
    });

    it("fails on a gap after the last entry", () => {
      const unstable = unstableWith(5, [entry(5, 1)]);
      expect(() => unstable.truncateAndAppend([entry(7, 1)])).toThrow(InternalError);
      expect(pairs(unstable.entries)).toEqual([[5, 1]]);
    });

    it("never changes an array it handed out", () => {
      const unstable = unstableWith(5, [entry(5, 1), entry(6, 1)]);
      const handedOut = unstable.entries;
      unstable.truncateAndAppend([entry(7, 1)]);
      unstable.truncateAndAppend([entry(6, 2)]);
      expect(pairs(handedOut)).toEqual([
        [5, 1],
        [6, 1],
      ]);
      expect(pairs(unstable.entries)).toEqual([
        [5, 1],
        [6, 2],
      ]);
      const fromSlice = unstable.slice(5, 7);
      unstable.truncateAndAppend([entry(7, 2)]);
      expect(fromSlice).toHaveLength(2);
      unstable.stableTo(5, 1);
      expect(fromSlice).toHaveLength(2);
    });

    it("never changes the caller's array", () => {
      const unstable = new Unstable(5);
      const batch = [entry(5, 1)];
      unstable.truncateAndAppend(batch);
      unstable.truncateAndAppend([entry(6, 1)]);
      const batch2 = [entry(5, 2), entry(6, 2), entry(7, 2)];
      unstable.truncateAndAppend(batch2);
      unstable.truncateAndAppend([entry(7, 3)]);
      expect(batch).toHaveLength(1);
      expect(pairs(batch2)).toEqual([
        [5, 2],
        [6, 2],
        [7, 2],
      ]);
      expect(pairs(unstable.entries)).toEqual([
        [5, 2],
        [6, 2],
        [7, 3],
      ]);
    });
  });

  describe("slice", () => {
    const unstable = unstableWith(5, [entry(5, 1), entry(6, 1), entry(7, 2)]);

    it("returns [lo, hi), the whole array itself when the range covers it", () => {
      expect(pairs(unstable.slice(6, 8))).toEqual([
        [6, 1],
        [7, 2],
      ]);
      expect(unstable.slice(6, 6)).toEqual([]);
      expect(unstable.slice(5, 8)).toBe(unstable.entries);
    });

    it("fails outside [offset, offset + entries.length)", () => {
      expect(() => unstable.slice(4, 6)).toThrow(InternalError);
      expect(() => unstable.slice(6, 9)).toThrow(InternalError);
      expect(() => unstable.slice(7, 6)).toThrow(InternalError);
    });

    it("sliceWithinSize keeps the prefix within the budget, possibly none", () => {
      const one = entryWireSize(entry(5, 1));
      expect(unstable.sliceWithinSize(5, 8, one - 1)).toEqual([]);
      expect(pairs(unstable.sliceWithinSize(5, 8, 2 * one))).toEqual([
        [5, 1],
        [6, 1],
      ]);
      expect(unstable.sliceWithinSize(5, 8, 3 * one)).toBe(unstable.entries);
    });
  });

  it("entryCount counts the entries", () => {
    expect(unstableWith(5, [entry(5, 1), entry(6, 1)]).entryCount()).toBe(2);
    expect(new Unstable(3).entryCount()).toBe(0);
  });
});

describe("Unstable asserts what it is given", () => {
  const snapshotAt = (index: number) => ({
    metadata: {
      index,
      term: 1,
      confState: {
        voters: [1],
        learners: [],
        votersOutgoing: [],
        learnersNext: [],
        autoLeave: false,
      },
    },
    data: new Uint8Array(0),
  });
  const entryAt = (index: number) => ({ index, term: 1, type: 0 as const, data: new Uint8Array() });

  it("refuses entries under an unstable snapshot", () => {
    const u = new Unstable(1);
    u.restore(snapshotAt(10));
    expect(() => u.truncateAndAppend([entryAt(10)])).toThrow(
      /appending from 10 under the unstable snapshot at 10/,
    );
    u.truncateAndAppend([entryAt(11)]);
    expect(u.maybeLastIndex()).toBe(11);
  });

  it("refuses entries whose ends are not contiguous", () => {
    const u = new Unstable(1);
    expect(() => u.truncateAndAppend([entryAt(1), entryAt(3)])).toThrow(
      /entries 1\.\.3 are not 2 contiguous indexes/,
    );
  });
});
