/**
 * The WAL and the log store on a full and on a failing disk (the in-memory file system's
 * `capacityBytes` and `failWhen`): a write that finds the disk full waits and is retried, in
 * order, until space is freed, and the log recovers intact whatever happens meanwhile; a failed
 * fsync is fatal and names the file.
 */
import { describe, expect, it } from "vitest";
import { StorageFullError, UnavailableError } from "../common/errors.js";
import { MemoryFileSystem } from "./memory-fs.js";
import { entries, VOTERS } from "./testing.js";
import { Wal } from "./wal.js";
import { WalLogStore } from "./wal-log-store.js";
import { RecordType, type WalRecord } from "./wal-record.js";

const DIR = "/wal";
/** Retries on the next turn of the event loop: the tests free space, not a clock. */
const nextTurn = (): Promise<void> => new Promise((resolve) => setImmediate(resolve));

function records(from: number, to: number, sizeBytes = 100): WalRecord[] {
  return entries(from, to, 1, sizeBytes).map((entry) => ({ type: RecordType.Entry, entry }));
}

async function turns(count: number): Promise<void> {
  for (let i = 0; i < count; i++) await nextTurn();
}

async function reopenIndexes(fs: MemoryFileSystem): Promise<number[]> {
  const { wal, recovered } = await Wal.open(fs, DIR);
  await wal.close();
  return recovered.log.entries.map((e) => e.index);
}

describe("WAL on a full disk", () => {
  it("holds appends while the disk is full and writes them, in order, once space is freed", async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir(DIR);
    const changes: (string | undefined)[] = [];
    const { wal } = await Wal.open(fs, DIR, {
      sleep: nextTurn,
      onStorageFull: (error) => changes.push(error?.code),
    });
    await wal.append(records(1, 5), { sync: true });
    fs.capacityBytes = fs.usedBytes() + 250; // room for two of the next five records
    const settled: number[] = [];
    const first = wal.append(records(6, 10), { sync: true }).then(() => settled.push(1));
    const second = wal.append(records(11, 12), { sync: true }).then(() => settled.push(2));
    await turns(20);
    expect(settled).toEqual([]);
    expect(wal.storageFull()).toBeInstanceOf(StorageFullError);
    expect(wal.storageFull()?.message).toMatch(
      /disk is full: write of \/wal\/.+ failed \(ENOSPC\)/,
    );
    expect(changes).toEqual(["STORAGE_FULL"]); // said once, however many retries

    fs.capacityBytes = undefined;
    await Promise.all([first, second]);
    expect(settled).toEqual([1, 2]);
    expect(wal.storageFull()).toBeUndefined();
    expect(changes).toEqual(["STORAGE_FULL", undefined]);
    await wal.close();
    fs.crash();
    expect(await reopenIndexes(fs)).toEqual(Array.from({ length: 12 }, (_, i) => i + 1));
  });

  it("recovers the log intact when the process dies while a write waits for space", async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir(DIR);
    const { wal } = await Wal.open(fs, DIR, { sleep: nextTurn });
    await wal.append(records(1, 3), { sync: true });
    fs.capacityBytes = fs.usedBytes() + 200; // record 4 fits, record 5 is written in part
    void wal.append(records(4, 6), { sync: true }).catch(() => undefined);
    await turns(10);
    expect(wal.storageFull()).toBeDefined();
    // A kill keeps what the kernel has: the torn part of record 5 is a tail recovery cuts
    // (record 4, whole but never acknowledged, may stay: nobody was promised either way).
    fs.crash({ unsyncedWrites: "keep" });
    fs.capacityBytes = undefined;
    const { wal: reopened, recovered } = await Wal.open(fs, DIR);
    expect(recovered.log.entries.map((e) => e.index)).toEqual([1, 2, 3, 4]);
    expect(recovered.truncated).toBeDefined();
    await reopened.append(records(5, 6), { sync: true });
    await reopened.close();
    expect(await reopenIndexes(fs)).toEqual([1, 2, 3, 4, 5, 6]);
  });

  it("retries a segment rollover that found the disk full", async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir(DIR);
    const { wal } = await Wal.open(fs, DIR, { sleep: nextTurn, segmentSizeBytes: 1024 });
    await wal.append(records(1, 8), { sync: true }); // fills the first segment
    fs.capacityBytes = fs.usedBytes() + 10; // not even a new segment's header fits
    const done = wal.append(records(9, 9), { sync: true });
    await turns(10);
    expect(wal.storageFull()?.message).toMatch(/ENOSPC/);
    fs.capacityBytes = undefined;
    await done;
    expect(wal.segmentInfos().length).toBe(2);
    await wal.close();
    fs.crash();
    expect(await reopenIndexes(fs)).toEqual(Array.from({ length: 9 }, (_, i) => i + 1));
  });

  it("gives up on close while the disk stays full, rejecting what waits", async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir(DIR);
    const { wal } = await Wal.open(fs, DIR, { sleep: nextTurn });
    fs.capacityBytes = fs.usedBytes();
    const pending = wal.append(records(1, 1), { sync: true });
    await turns(5);
    await wal.close();
    await expect(pending).rejects.toBeInstanceOf(StorageFullError);
  });
});

describe("WAL on a failing disk", () => {
  it("stops for good when a flush fails, naming the segment, and recovers what was durable", async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir(DIR);
    const { wal } = await Wal.open(fs, DIR, { sleep: nextTurn });
    await wal.append(records(1, 3), { sync: true });
    fs.failWhen = (operation) => operation === "datasync";
    const failed = wal.append(records(4, 4), { sync: true });
    await expect(failed).rejects.toBeInstanceOf(UnavailableError);
    // The segment's writes are durable ones (O_DSYNC): the flush fails inside the write.
    await expect(failed).rejects.toThrow(/write of \/wal\/\S+ failed \(EIO\)/);
    // Never retried: a later fsync could "succeed" over pages the kernel already dropped.
    fs.failWhen = () => false;
    await expect(wal.append(records(5, 5), { sync: true })).rejects.toThrow(/WAL failed/);
    fs.crash();
    expect(await reopenIndexes(fs)).toEqual([1, 2, 3]);
  });
});

describe("WalLogStore on a full disk", () => {
  it("refuses a snapshot with STORAGE_FULL and leaves no temporary file", async () => {
    const fs = new MemoryFileSystem();
    const store = await WalLogStore.open(DIR, { fs, confState: VOTERS, sleep: nextTurn });
    await store.save({ entries: entries(1, 5, 1) }, { sync: true });
    fs.capacityBytes = fs.usedBytes() + 20;
    await expect(store.saveSnapshot(5, VOTERS, new Uint8Array(1000))).rejects.toBeInstanceOf(
      StorageFullError,
    );
    expect((await fs.list(DIR)).filter((name) => name.endsWith(".tmp"))).toEqual([]);
    expect(store.snapshotMetadata().index).toBe(0);
    fs.capacityBytes = undefined;
    await store.saveSnapshot(5, VOTERS, new Uint8Array(1000));
    expect(store.snapshotMetadata().index).toBe(5);
    await store.close();
  });

  it("says it is full while a save waits, and not once the save went through", async () => {
    const fs = new MemoryFileSystem();
    const store = await WalLogStore.open(DIR, { fs, confState: VOTERS, sleep: nextTurn });
    fs.capacityBytes = fs.usedBytes();
    const saved = store.save({ entries: entries(1, 2, 1) }, { sync: true });
    await turns(5);
    expect(store.storageFull()?.code).toBe("STORAGE_FULL");
    fs.capacityBytes = undefined;
    await saved;
    expect(store.storageFull()).toBeUndefined();
    await store.close();
  });
});
