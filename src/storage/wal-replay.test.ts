import { describe, expect, it } from "vitest";
import { StorageCorruptError } from "../common/errors.js";
import { RecordType } from "./wal-record.js";
import { WalReplay } from "./wal-replay.js";
import { entry } from "./testing.js";

const AT = { file: "f", offsetBytes: 0 };
const e = (index: number, term: number) =>
  ({ type: RecordType.Entry, entry: entry(index, term) }) as const;

describe("WalReplay", () => {
  it("lets a later record for an index supersede it and everything after", () => {
    const replay = new WalReplay();
    for (let i = 1; i <= 5; i++) replay.apply(e(i, 1), AT);
    replay.apply(e(3, 2), AT);
    expect(replay.result().entries.map((x) => `${x.index}:${x.term}`)).toEqual([
      "1:1",
      "2:1",
      "3:2",
    ]);
  });

  it("restarts the log at a snapshot record and keeps the last hard state", () => {
    const replay = new WalReplay();
    replay.apply(e(1, 1), AT);
    replay.apply({ type: RecordType.HardState, hardState: { term: 1, vote: 1, commit: 1 } }, AT);
    replay.apply({ type: RecordType.Snapshot, index: 10, term: 2 }, AT);
    replay.apply(e(11, 2), AT);
    expect(replay.result()).toMatchObject({
      snapshotMark: { index: 10 },
      hardState: { commit: 1 },
    });
    expect(replay.result().entries.map((x) => x.index)).toEqual([11]);
  });

  it("raises StorageCorrupt on a gap or on an entry behind a snapshot record", () => {
    const replay = new WalReplay();
    replay.apply(e(1, 1), AT);
    expect(() => replay.apply(e(3, 1), { file: "seg", offsetBytes: 77 })).toThrow(
      StorageCorruptError,
    );
    replay.apply({ type: RecordType.Snapshot, index: 10, term: 2 }, AT);
    expect(() => replay.apply(e(9, 2), AT)).toThrow(/behind the snapshot/);
  });

  it("accepts a rewrite reaching behind a log whose start was compacted away", () => {
    const replay = new WalReplay();
    replay.apply(e(36, 4), AT);
    replay.apply(e(37, 4), AT);
    replay.apply(e(35, 6), AT);
    expect(replay.result().entries.map((x) => `${x.index}:${x.term}`)).toEqual(["35:6"]);
  });
});
