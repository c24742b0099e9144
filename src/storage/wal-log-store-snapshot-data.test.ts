import { describe, expect, it, vi } from "vitest";
import { StorageFullError } from "../common/errors.js";
import { SnapshotOutOfDateError, SnapshotTemporarilyUnavailableError } from "../raft/storage.js";
import { joinPath } from "./fs.js";
import { MemoryFileSystem } from "./memory-fs.js";
import { snapshotFileName } from "./snapshot-file.js";
import { entries, VOTERS } from "./testing.js";
import { WalLogStore } from "./wal-log-store.js";

const DIR = "/data";

/** Data of `size` bytes whose every byte depends on its position and `seed`. */
function data(size: number, seed: number): Uint8Array {
  const bytes = new Uint8Array(size);
  for (let i = 0; i < size; i++) bytes[i] = (i * 31 + seed) & 0xff;
  return bytes;
}

/** Asks for the snapshot until the store has read it back (each ask may start the read). */
async function readBack(store: WalLogStore) {
  return vi.waitFor(() => store.snapshot(), { timeout: 5000, interval: 5 });
}

describe("WalLogStore keeps no copy of the snapshot's data", () => {
  it("keeps no data after taking a snapshot, and reads it back from the file when asked", async () => {
    const fs = new MemoryFileSystem();
    const store = await WalLogStore.open(DIR, { fs, confState: VOTERS });
    await store.save({ entries: entries(1, 10, 1) }, { sync: true });
    // Over two read pieces (1 MiB each), so the piecewise checksum is exercised.
    const state = data(2.5 * 1024 * 1024, 7);
    await store.saveSnapshot(8, VOTERS, state);

    expect(store.snapshotMetadata()).toMatchObject({ index: 8, term: 1 });
    expect(() => store.snapshot()).toThrow(SnapshotTemporarilyUnavailableError);
    const back = await readBack(store);
    expect(back.metadata).toMatchObject({ index: 8, term: 1 });
    // Read from the file, not the caller's array (a plain comparison: vitest's matchers would
    // compare the 2.5 million elements deeply for their message).
    expect(back.data === state).toBe(false);
    // Compared as buffers: a deep equality of 2.5 million elements takes half a minute.
    expect(Buffer.from(back.data).equals(state)).toBe(true);
    // Handed out once: the next ask reads the file again.
    expect(() => store.snapshot()).toThrow(SnapshotTemporarilyUnavailableError);
    await store.close();
  });

  it("hands the opened snapshot to the restore once, and reads it back for a send", async () => {
    const fs = new MemoryFileSystem();
    const store = await WalLogStore.open(DIR, { fs, confState: VOTERS });
    await store.save({ entries: entries(1, 5, 1) }, { sync: true });
    await store.saveSnapshot(5, VOTERS, data(1000, 1));
    await store.close();

    const reopened = await WalLogStore.open(DIR, { fs, confState: VOTERS });
    expect(reopened.snapshot().data).toEqual(data(1000, 1));
    expect(() => reopened.snapshot()).toThrow(SnapshotTemporarilyUnavailableError);
    expect((await readBack(reopened)).data).toEqual(data(1000, 1));
    await reopened.close();
  });

  it("forgets an installed leader's snapshot and reads it back when asked", async () => {
    const fs = new MemoryFileSystem();
    const store = await WalLogStore.open(DIR, { fs, confState: VOTERS });
    const snapshot = { metadata: { index: 10, term: 3, confState: VOTERS }, data: data(4096, 3) };
    await store.save(
      { entries: [], snapshot, hardState: { term: 3, vote: 0, commit: 10 } },
      { sync: true },
    );
    expect(() => store.snapshot()).toThrow(SnapshotTemporarilyUnavailableError);
    const back = await readBack(store);
    expect(back.metadata).toMatchObject({ index: 10, term: 3, confState: VOTERS });
    expect(back.data).toEqual(snapshot.data);
    await store.close();
  });

  it("says when the file cannot be read back, and tries again later", async () => {
    const fs = new MemoryFileSystem();
    const failures: Error[] = [];
    const sleeps: number[] = [];
    let wake: (() => void) | undefined;
    const store = await WalLogStore.open(DIR, {
      fs,
      confState: VOTERS,
      onSnapshotReadFailed: (error) => failures.push(error),
      sleep: (ms) => {
        sleeps.push(ms);
        return new Promise<void>((resolve) => (wake = resolve));
      },
    });
    await store.save({ entries: entries(1, 5, 1) }, { sync: true });
    await store.saveSnapshot(5, VOTERS, data(1000, 2));
    // Damage the file: one flipped byte in the data.
    const path = joinPath(DIR, snapshotFileName(5, 1));
    const bytes = await fs.readFile(path);
    bytes[100] = (bytes[100] ?? 0) ^ 0xff;
    const handle = await fs.open(path, "readWrite");
    await handle.write(bytes, 0);
    await handle.close();

    expect(() => store.snapshot()).toThrow(SnapshotTemporarilyUnavailableError);
    await vi.waitFor(() => expect(failures).toHaveLength(1));
    expect(failures[0]?.message).toMatch(/checksum/);
    expect(sleeps).toEqual([1000]);
    // While the retry waits, asking does not start a second read.
    expect(() => store.snapshot()).toThrow(SnapshotTemporarilyUnavailableError);
    expect(failures).toHaveLength(1);
    wake?.();
    await vi.waitFor(() => {
      expect(() => store.snapshot()).toThrow(SnapshotTemporarilyUnavailableError);
      expect(failures).toHaveLength(2);
    });
    wake?.();
    await store.close();
  });
});

describe("WalLogStore.beginSnapshot: a snapshot saved a piece at a time", () => {
  it("writes the pieces to one file that reads back as the whole data, current only once committed", async () => {
    const fs = new MemoryFileSystem();
    const store = await WalLogStore.open(DIR, { fs, confState: VOTERS });
    await store.save({ entries: entries(1, 10, 2) }, { sync: true });
    const state = data(3 * 1024 * 1024 + 17, 3);
    const writer = await store.beginSnapshot(9, VOTERS, state.length);
    // Pieces written from one reused buffer, as the streaming encoder hands them out.
    const buffer = new Uint8Array(1024 * 1024);
    for (let offset = 0; offset < state.length; offset += buffer.length) {
      const piece = state.subarray(offset, offset + buffer.length);
      buffer.set(piece);
      await writer.write(buffer.subarray(0, piece.length));
    }
    expect(store.snapshotMetadata().index).toBe(0);
    expect(await writer.commit()).toMatchObject({ index: 9, term: 2 });
    expect(store.snapshotMetadata()).toMatchObject({ index: 9, term: 2 });
    expect(Buffer.from((await readBack(store)).data).equals(state)).toBe(true);
    expect((await fs.list(DIR)).filter((name) => name.endsWith(".tmp"))).toEqual([]);
    await store.close();

    const reopened = await WalLogStore.open(DIR, { fs, confState: VOTERS });
    expect(Buffer.from(reopened.snapshot().data).equals(state)).toBe(true);
    await reopened.close();
  });

  it("leaves nothing behind when aborted, and refuses a commit once a newer snapshot is current", async () => {
    const fs = new MemoryFileSystem();
    const store = await WalLogStore.open(DIR, { fs, confState: VOTERS });
    await store.save({ entries: entries(1, 10, 1) }, { sync: true });

    const abandoned = await store.beginSnapshot(5, VOTERS, 100);
    await abandoned.write(data(60, 1));
    await abandoned.abort();
    expect(await fs.list(DIR)).not.toContain(`${snapshotFileName(5, 1)}.tmp`);
    expect(store.snapshotMetadata().index).toBe(0);

    const overtaken = await store.beginSnapshot(6, VOTERS, 100);
    await overtaken.write(data(100, 2));
    await store.saveSnapshot(8, VOTERS, data(50, 3));
    await expect(overtaken.commit()).rejects.toThrow(SnapshotOutOfDateError);
    expect(store.snapshotMetadata().index).toBe(8);
    expect((await fs.list(DIR)).filter((name) => name.endsWith(".tmp"))).toEqual([]);
    await expect(store.beginSnapshot(7, VOTERS, 10)).rejects.toThrow(SnapshotOutOfDateError);
    await store.close();
  });

  it("fails a write on a full disk with STORAGE_FULL and removes the partial file", async () => {
    const fs = new MemoryFileSystem();
    const store = await WalLogStore.open(DIR, { fs, confState: VOTERS });
    await store.save({ entries: entries(1, 10, 1) }, { sync: true });
    const writer = await store.beginSnapshot(9, VOTERS, 4096);
    fs.capacityBytes = fs.usedBytes() + 1000;
    await expect(writer.write(data(4096, 4))).rejects.toBeInstanceOf(StorageFullError);
    fs.capacityBytes = undefined;
    expect((await fs.list(DIR)).filter((name) => name.endsWith(".tmp"))).toEqual([]);
    expect(store.snapshotMetadata().index).toBe(0);
    await store.close();
  });
});
