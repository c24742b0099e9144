import { describe, expect, it } from "vitest";
import { MemoryFileSystem, type MemoryFsOperation } from "./memory-fs.js";
import { Wal } from "./wal.js";
import { RecordType, type WalRecord } from "./wal-record.js";
import { entry } from "./testing.js";
import type { EntryType } from "../raft/types.js";

const DIR = "/wal";

function entryRecord(index: number, sizeBytes = 16): WalRecord {
  return { type: RecordType.Entry, entry: entry(index, 1, sizeBytes) };
}

async function openWal(fs: MemoryFileSystem, segmentSizeBytes?: number) {
  await fs.mkdir(DIR);
  return Wal.open(fs, DIR, segmentSizeBytes === undefined ? {} : { segmentSizeBytes });
}

/** A gate that holds every datasync until opened. */
/**
 * Holds every fdatasync (a durable write's flush included) until released, once armed: opening
 * a log writes its first segment durably, so tests arm the gate after the open.
 */
function syncGate() {
  let open: () => void = () => undefined;
  let gate = new Promise<void>((resolve) => (open = resolve));
  let armed = false;
  return {
    arm: () => (armed = true),
    delay: async (operation: MemoryFsOperation) => {
      if (armed && operation === "datasync") await gate;
    },
    release: () => {
      open();
      gate = new Promise<void>((resolve) => (open = resolve));
    },
  };
}

describe("Wal group commit", () => {
  it("times every fdatasync for its observer with the observer's clock", async () => {
    let now = 0;
    const observed: number[] = [];
    const gate = syncGate();
    const fs = new MemoryFileSystem({ delay: gate.delay });
    await fs.mkdir(DIR);
    const { wal } = await Wal.open(fs, DIR, {
      syncObserver: { now: () => now, observe: (ms) => observed.push(ms) },
    });
    const syncsAtOpen = wal.stats.syncs;
    gate.arm();
    const durable = wal.append([entryRecord(1)], { sync: true });
    await new Promise((resolve) => setImmediate(resolve));
    now += 7;
    gate.release();
    await durable;
    await wal.append([entryRecord(2)], { sync: false });
    expect(wal.stats.syncs - syncsAtOpen).toBe(1);
    expect(observed).toEqual([7]);
  });

  it("writes 100 appends of one turn with one write and one fdatasync", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openWal(fs);
    const syncsBefore = fs.counters.fileSyncs;
    const writesBefore = fs.counters.writes;
    await Promise.all(
      Array.from({ length: 100 }, (_, i) => wal.append([entryRecord(i + 1)], { sync: true })),
    );
    expect(fs.counters.writes - writesBefore).toBe(1);
    expect(fs.counters.fileSyncs - syncsBefore).toBe(1);
    expect(wal.stats).toMatchObject({
      appends: 100,
      batches: 1,
      syncs: 1 + wal.stats.segmentsCreated,
    });
    await wal.close();
  });

  it("gathers appends that arrive during an fsync into the next write, resolving each after its fsync", async () => {
    const gate = syncGate();
    const fs = new MemoryFileSystem({ delay: gate.delay });
    const { wal } = await openWal(fs);
    gate.arm();
    const resolved: number[] = [];
    const first = wal.append([entryRecord(1)], { sync: true }).then(() => resolved.push(1));
    // Let the first write start and block in its fdatasync.
    for (let i = 0; i < 10; i++) await Promise.resolve();
    const rest = Array.from({ length: 99 }, (_, i) =>
      wal.append([entryRecord(i + 2)], { sync: true }).then(() => resolved.push(i + 2)),
    );
    for (let i = 0; i < 10; i++) await Promise.resolve();
    expect(resolved).toEqual([]);
    gate.release();
    await first;
    expect(resolved).toEqual([1]);
    for (let i = 0; i < 10; i++) await Promise.resolve();
    expect(resolved).toEqual([1]); // the second batch's fsync is still held
    gate.release();
    await Promise.all(rest);
    expect(resolved.length).toBe(100);
    expect(wal.stats).toMatchObject({
      appends: 100,
      batches: 2,
      syncs: 2 + wal.stats.segmentsCreated,
    });
    await wal.close();
  });

  it("holds an unsynced append and writes it first in the next synced append's write", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openWal(fs);
    await wal.append([entryRecord(1)], { sync: true });
    const writesBefore = fs.counters.writes;
    const hardState = { term: 1, vote: 0, commit: 1 };
    // Resolves at once, and nothing is written yet.
    await wal.append([{ type: RecordType.HardState, hardState }], { sync: false });
    expect(fs.counters.writes).toBe(writesBefore);
    await wal.append([entryRecord(2)], { sync: true });
    expect(fs.counters.writes - writesBefore).toBe(1);
    fs.crash();
    const { recovered } = await Wal.open(fs, DIR);
    expect(recovered.log.entries.map((e) => e.index)).toEqual([1, 2]);
    expect(recovered.log.hardState).toEqual(hardState);
  });

  it("writes held unsynced appends when it closes", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openWal(fs);
    await wal.append([entryRecord(1)], { sync: false });
    await wal.close();
    fs.crash();
    const { recovered } = await Wal.open(fs, DIR);
    expect(recovered.log.entries.map((e) => e.index)).toEqual([1]);
  });

  it("does not fsync appends that ask for no durability", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openWal(fs);
    const syncsBefore = fs.counters.fileSyncs;
    await wal.append([entryRecord(1)], { sync: false });
    expect(fs.counters.fileSyncs).toBe(syncsBefore);
    await wal.close();
  });

  it("fails every waiting and later append once an fsync fails", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openWal(fs);
    fs.failWhen = (operation) => operation === "datasync";
    await expect(wal.append([entryRecord(1)], { sync: true })).rejects.toThrow(/EIO/);
    fs.failWhen = () => false;
    await expect(wal.append([entryRecord(2)], { sync: true })).rejects.toMatchObject({
      code: "UNAVAILABLE",
    });
  });

  it("refuses a record over the size limit with TOO_LARGE", async () => {
    const fs = new MemoryFileSystem();
    await fs.mkdir(DIR);
    const { wal } = await Wal.open(fs, DIR, { maxRecordSizeBytes: 100 });
    await expect(wal.append([entryRecord(1, 200)], { sync: true })).rejects.toMatchObject({
      code: "TOO_LARGE",
    });
    await wal.close();
  });

  it("refuses appends past the pending-bytes bound with OVERLOADED", async () => {
    const gate = syncGate();
    const fs = new MemoryFileSystem({ delay: gate.delay });
    await fs.mkdir(DIR);
    const { wal } = await Wal.open(fs, DIR, { maxPendingBytes: 1000 });
    gate.arm();
    const accepted = wal.append([entryRecord(1, 600)], { sync: true });
    await expect(wal.append([entryRecord(2, 600)], { sync: true })).rejects.toMatchObject({
      code: "OVERLOADED",
    });
    gate.release();
    await accepted;
    await wal.close();
  });

  it("rolls over to new segments and recovers every record in order", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openWal(fs, 512);
    for (let i = 1; i <= 50; i++) {
      await wal.append(
        [
          entryRecord(i, 40),
          { type: RecordType.HardState, hardState: { term: 1, vote: 0, commit: i } },
        ],
        { sync: true },
      );
    }
    expect(wal.stats.segmentsCreated).toBeGreaterThan(5);
    await wal.close();
    fs.crash();
    const { wal: reopened, recovered } = await Wal.open(fs, DIR, { segmentSizeBytes: 512 });
    expect(recovered.log.entries.map((e) => e.index)).toEqual(
      Array.from({ length: 50 }, (_, i) => i + 1),
    );
    expect(recovered.log.hardState?.commit).toBe(50);
    expect(recovered.segments.length).toBe(wal.stats.segmentsCreated);
    await reopened.close();
  });

  it("removes only whole segments at or below the compaction index, never the active one", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openWal(fs, 512);
    for (let i = 1; i <= 30; i++) await wal.append([entryRecord(i, 40)], { sync: true });
    const segments = wal.segmentInfos();
    const removed = await wal.removeSegmentsThrough(15);
    const left = wal.segmentInfos();
    expect(removed).toBe(segments.filter((s) => s.maxIndex <= 15).length);
    expect(left[0]!.maxIndex).toBeGreaterThan(15);
    expect(await wal.removeSegmentsThrough(1000)).toBe(left.length - 1);
    await wal.close();
  });
});

describe("Wal asserts on write what replay checks on read", () => {
  it("refuses an entry after a gap, as replay would call it corruption, and appends nothing", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openWal(fs);
    await wal.append([entryRecord(1), entryRecord(2)], { sync: true });
    await expect(wal.append([entryRecord(4)], { sync: true })).rejects.toThrow(
      /invariant violated: WAL entry 4 would not replay after entry 2/,
    );
    // Refused before anything was queued: the log stays usable and continues at 3.
    await wal.append([entryRecord(3)], { sync: true });
    await wal.close();
    const { recovered } = await Wal.open(fs, DIR);
    expect(recovered.log.entries.map((e) => e.index)).toEqual([1, 2, 3]);
  });

  it("refuses an entry behind the last snapshot mark, also across a reopen", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openWal(fs);
    await wal.append([entryRecord(1), { type: RecordType.Snapshot, index: 5, term: 1 }], {
      sync: true,
    });
    await wal.close();
    const { wal: reopened } = await Wal.open(fs, DIR);
    await expect(reopened.append([entryRecord(5)], { sync: true })).rejects.toThrow(
      /invariant violated: WAL entry 5 would not replay after entry 5 and snapshot mark 5/,
    );
    await reopened.append([entryRecord(6)], { sync: true });
    await reopened.close();
  });

  it("refuses an index that the reader's 64-bit field check would reject", async () => {
    const fs = new MemoryFileSystem();
    const { wal } = await openWal(fs);
    const tooLarge: WalRecord = {
      type: RecordType.HardState,
      hardState: { term: Number.MAX_SAFE_INTEGER + 1, vote: 0, commit: 0 },
    };
    await expect(wal.append([tooLarge], { sync: true })).rejects.toThrow(
      /invariant violated: cannot store 9007199254740992 as an unsigned 64-bit field/,
    );
    const unknownType: number = 7;
    const badEntry = { ...entry(1, 1), type: unknownType as EntryType };
    await expect(
      wal.append([{ type: RecordType.Entry, entry: badEntry }], { sync: true }),
    ).rejects.toThrow(/invariant violated: entry 1 of type 7 cannot be logged/);
    // Nothing was appended: the log is still empty and usable.
    await wal.append([entryRecord(1)], { sync: true });
    await wal.close();
  });
});
