import { describe, expect, it } from "vitest";
import { joinPath } from "./fs.js";
import { MemoryFileSystem } from "./memory-fs.js";
import { WalLogStore } from "./wal-log-store.js";
import { entries, entry, VOTERS } from "./testing.js";
import { listSegments } from "./wal-recovery.js";
import { listSnapshotFiles, writeSnapshotFile } from "./snapshot-file.js";

const DIR = "/data";

async function open(fs: MemoryFileSystem, segmentSizeBytes = 64 * 1024) {
  return WalLogStore.open(DIR, { fs, confState: VOTERS, segmentSizeBytes });
}

function all(store: WalLogStore) {
  return store.entries(store.firstIndex(), store.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
}

describe("WalLogStore", () => {
  it("starts a new directory with the bootstrap configuration", async () => {
    const fs = new MemoryFileSystem();
    const store = await open(fs);
    expect(store.initialState().confState).toEqual(VOTERS);
    expect(store.firstIndex()).toBe(1);
    expect(store.lastIndex()).toBe(0);
    await store.close();
    const again = await open(fs);
    expect(again.initialState().confState).toEqual(VOTERS);
    await again.close();
  });

  it("recovers entries and hard state after a crash that loses nothing synced", async () => {
    const fs = new MemoryFileSystem();
    const store = await open(fs);
    await store.save(
      { entries: entries(1, 10, 1), hardState: { term: 1, vote: 1, commit: 5 } },
      { sync: true },
    );
    fs.crash();
    const reopened = await open(fs);
    expect(all(reopened)).toEqual(entries(1, 10, 1));
    expect(reopened.initialState().hardState).toEqual({ term: 1, vote: 1, commit: 5 });
    await reopened.close();
  });

  it("marks the committed entries it recovered as stable data, and none of a new directory", async () => {
    const fs = new MemoryFileSystem();
    const store = await open(fs);
    expect(store.stableDataThroughIndex).toBe(0);
    await store.save(
      { entries: entries(1, 10, 1), hardState: { term: 1, vote: 1, commit: 6 } },
      { sync: true },
    );
    // Entries saved while running are not: the runtime applies them from their own buffers.
    expect(store.stableDataThroughIndex).toBe(0);
    await store.close();
    const reopened = await open(fs);
    expect(reopened.stableDataThroughIndex).toBe(6);
    await reopened.close();
  });

  it("loses unsynced saves on a power cut, keeping a consistent prefix", async () => {
    const fs = new MemoryFileSystem();
    const store = await open(fs);
    await store.save({ entries: entries(1, 3, 1) }, { sync: true });
    await store.save(
      { entries: entries(4, 6, 1), hardState: { term: 1, vote: 0, commit: 6 } },
      { sync: false },
    );
    fs.crash();
    const reopened = await open(fs);
    expect(all(reopened)).toEqual(entries(1, 3, 1));
    await reopened.close();
  });

  it("reproduces a follower's suffix truncation exactly", async () => {
    const fs = new MemoryFileSystem();
    const store = await open(fs);
    await store.save({ entries: entries(1, 10, 1) }, { sync: true });
    await store.save(
      { entries: entries(6, 7, 2), hardState: { term: 2, vote: 2, commit: 5 } },
      { sync: true },
    );
    expect(store.lastIndex()).toBe(7);
    fs.crash();
    const reopened = await open(fs);
    expect(all(reopened)).toEqual([...entries(1, 5, 1), ...entries(6, 7, 2)]);
    await reopened.close();
  });

  it("rolls segments, compacts the ones below a snapshot and recovers from the snapshot", async () => {
    const fs = new MemoryFileSystem();
    const store = await open(fs, 1024);
    for (let i = 1; i <= 100; i++) {
      await store.save(
        { entries: [entry(i, 1, 100)], hardState: { term: 1, vote: 1, commit: i } },
        { sync: true },
      );
    }
    const before = (await listSegments(fs, DIR)).length;
    expect(before).toBeGreaterThan(5);
    await store.saveSnapshot(80, VOTERS, new TextEncoder().encode("state@80"));
    await store.compact(70);
    expect(store.firstIndex()).toBe(71);
    const after = (await listSegments(fs, DIR)).length;
    expect(after).toBeLessThan(before);
    fs.crash();
    const reopened = await open(fs, 1024);
    const snapshot = reopened.snapshot();
    expect(snapshot.metadata.index).toBe(80);
    expect(new TextDecoder().decode(snapshot.data)).toBe("state@80");
    expect(reopened.firstIndex()).toBe(81);
    expect(all(reopened)).toEqual(entries(81, 100, 1, 100));
    expect(reopened.initialState().hardState.commit).toBe(100);
    await reopened.close();
  });

  it("installs a leader's snapshot, dropping the conflicting log, and recovers it", async () => {
    const fs = new MemoryFileSystem();
    const store = await open(fs);
    await store.save({ entries: entries(1, 20, 1) }, { sync: true });
    const snapshot = {
      metadata: { index: 10, term: 3, confState: VOTERS },
      data: new TextEncoder().encode("leader state"),
    };
    await store.save(
      { entries: [], snapshot, hardState: { term: 3, vote: 0, commit: 10 } },
      { sync: true },
    );
    expect(store.lastIndex()).toBe(10);
    await store.save({ entries: entries(11, 12, 3) }, { sync: true });
    fs.crash();
    const reopened = await open(fs);
    expect(reopened.snapshot().metadata).toMatchObject({ index: 10, term: 3 });
    expect(all(reopened)).toEqual(entries(11, 12, 3));
    await reopened.close();
  });

  it("recovers a crash between a leader's snapshot file and its log record, twice over", async () => {
    // The follower's log ends at 3; the leader's snapshot at 10 reaches the disk as a file, then
    // the process dies before the snapshot record is written.
    const fs = new MemoryFileSystem();
    const store = await open(fs);
    await store.save(
      { entries: entries(1, 3, 1), hardState: { term: 1, vote: 1, commit: 3 } },
      { sync: true },
    );
    await store.close();
    await writeSnapshotFile(fs, DIR, {
      metadata: { index: 10, term: 2, confState: VOTERS },
      data: new Uint8Array(0),
    });
    const reopened = await open(fs);
    expect(reopened.lastIndex()).toBe(10);
    await reopened.save(
      { entries: entries(11, 12, 2), hardState: { term: 2, vote: 1, commit: 12 } },
      { sync: true },
    );
    await reopened.close();
    // Without the snapshot record written at the first reopen, entry 11 would follow entry 3.
    const third = await open(fs);
    expect(all(third)).toEqual(entries(11, 12, 2));
    await third.close();
  });

  it("keeps entries acknowledged after a crash that left a stale entry at the snapshot's index", async () => {
    const fs = new MemoryFileSystem();
    const store = await open(fs);
    await store.save(
      { entries: entries(1, 12, 1), hardState: { term: 1, vote: 1, commit: 5 } },
      { sync: true },
    );
    await store.close();
    // The leader's snapshot at 8 is of term 2: this log's entry 8 (term 1) is stale.
    await writeSnapshotFile(fs, DIR, {
      metadata: { index: 8, term: 2, confState: VOTERS },
      data: new Uint8Array(0),
    });
    const reopened = await open(fs);
    expect(reopened.lastIndex()).toBe(8);
    await reopened.save(
      { entries: entries(9, 10, 2), hardState: { term: 2, vote: 1, commit: 10 } },
      { sync: true },
    );
    await reopened.close();
    const third = await open(fs);
    expect(all(third)).toEqual(entries(9, 10, 2));
    await third.close();
  });

  it("asserts on save what recovery checks on open: no commit past the last entry", async () => {
    const fs = new MemoryFileSystem();
    const store = await open(fs);
    await store.save({ entries: entries(1, 3, 1) }, { sync: true });
    await expect(
      store.save({ hardState: { term: 1, vote: 1, commit: 4 }, entries: [] }, { sync: true }),
    ).rejects.toThrow(/invariant violated: hard state commits 4 past the last entry 3/);
    await store.save(
      { entries: entries(4, 4, 1), hardState: { term: 1, vote: 1, commit: 4 } },
      { sync: true },
    );
    await store.close();
  });

  it("keeps the newest two snapshot files", async () => {
    const fs = new MemoryFileSystem();
    const store = await open(fs);
    await store.save({ entries: entries(1, 10, 1) }, { sync: true });
    for (const index of [2, 4, 6, 8])
      await store.saveSnapshot(index, VOTERS, new Uint8Array([index]));
    const files = await listSnapshotFiles(fs, DIR);
    expect(files.map((f) => f.index)).toEqual([8, 6]);
    await expect(store.saveSnapshot(8, VOTERS, new Uint8Array(0))).rejects.toMatchObject({
      code: "CONFLICT",
    });
    await store.close();
  });

  it("refuses oversized entries with TOO_LARGE and saves nothing", async () => {
    const fs = new MemoryFileSystem();
    const store = await WalLogStore.open(DIR, { fs, maxEntrySizeBytes: 100 });
    await expect(store.save({ entries: [entry(1, 1, 101)] }, { sync: true })).rejects.toMatchObject(
      {
        code: "TOO_LARGE",
      },
    );
    expect(store.lastIndex()).toBe(0);
    await store.close();
  });

  it("locks the directory against a second opener and releases it on close", async () => {
    const fs = new MemoryFileSystem();
    const store = await open(fs);
    await expect(open(fs)).rejects.toThrow(
      `data directory ${DIR} is in use by process ${fs.processId()}`,
    );
    await store.close();
    const again = await open(fs);
    await again.close();
    expect(await fs.exists(joinPath(DIR, "LOCK"))).toBe(false);
  });

  it("takes over the lock of a crashed process", async () => {
    const fs = new MemoryFileSystem();
    await open(fs);
    fs.crash();
    const store = await open(fs);
    await store.close();
  });

  it("fails every later call after closing", async () => {
    const fs = new MemoryFileSystem();
    const store = await open(fs);
    await store.close();
    await expect(store.save({ entries: [entry(1, 1)] }, { sync: true })).rejects.toMatchObject({
      code: "UNAVAILABLE",
    });
  });
});
