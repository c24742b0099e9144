/**
 * Faults of the in-memory file system against the WAL: lost unsynced writes, torn writes and
 * flipped bits each end as a truncated tail or a loud StorageCorruptError, never as silently
 * wrong data.
 */
import { describe, expect, it } from "vitest";
import { StorageCorruptError } from "../../src/common/errors.js";
import { SeededRandom } from "../../src/common/random.js";
import { joinPath } from "../../src/storage/fs.js";
import { MemoryFileSystem } from "../../src/storage/memory-fs.js";
import { listSnapshotFiles } from "../../src/storage/snapshot-file.js";
import { WalLogStore } from "../../src/storage/wal-log-store.js";
import { listSegments } from "../../src/storage/wal-recovery.js";
import { SEGMENT_HEADER_BYTES } from "../../src/storage/wal-segment.js";
import { entries, VOTERS } from "./helpers.js";
import { entryTexts, isStateOf, runWorkload } from "./workload.js";

const DIR = "/node";
const SEEDS = 250;

function open(fs: MemoryFileSystem): Promise<WalLogStore> {
  return WalLogStore.open(DIR, { fs, confState: VOTERS, segmentSizeBytes: 2048 });
}

describe("crashes on the in-memory file system", () => {
  it(`recovers a state the store went through, with every acknowledged save, over ${SEEDS} seeds`, async () => {
    const modes = ["lose", "tornPrefix", "keep"] as const;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const random = new SeededRandom(seed);
      const fs = new MemoryFileSystem();
      const store = await open(fs);
      const result = await runWorkload(store, random, {
        operations: 20 + random.int(60),
        allowUnsynced: true,
        inFlightTail: random.int(4),
      });
      const mode = modes[random.int(modes.length)]!;
      fs.crash({ unsyncedWrites: mode, random });
      const recovered = await open(fs).catch((error: unknown) => {
        throw new Error(`seed ${seed} (${mode}): recovery failed: ${String(error)}`);
      });
      const snapshotIndex = recovered.snapshotMetadata().index;
      if (
        !isStateOf(
          result,
          entryTexts(recovered),
          snapshotIndex,
          Math.max(0, result.lastAcknowledged),
        )
      ) {
        throw new Error(
          `seed ${seed} (${mode}): recovered log is not a state the store acknowledged`,
        );
      }
      await recovered.close();
    }
  });
});

describe("flipped bits on disk", () => {
  async function filledStore() {
    const fs = new MemoryFileSystem();
    const store = await WalLogStore.open(DIR, { fs, confState: VOTERS });
    for (let i = 1; i <= 20; i += 5) {
      await store.save({ entries: entries(i, i + 4, 1, 50) }, { sync: true });
    }
    await store.close();
    const segment = (await listSegments(fs, DIR))[0]!;
    return { fs, path: joinPath(DIR, segment.name) };
  }

  it("a bit flipped inside acknowledged data followed by more records stops recovery, naming file and offset", async () => {
    const { fs, path } = await filledStore();
    fs.flipBit(path, SEGMENT_HEADER_BYTES + 30, 3);
    const error = await WalLogStore.open(DIR, { fs }).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(StorageCorruptError);
    expect(error).toMatchObject({ file: path, offset: SEGMENT_HEADER_BYTES });
  });

  it("a bit flipped in the very last record is cut as a torn tail, and the rest is intact", async () => {
    const { fs, path } = await filledStore();
    const size = fs.contentOf(path).byteLength;
    fs.flipBit(path, size - 2, 0);
    const store = await WalLogStore.open(DIR, { fs });
    expect(store.recovery.truncated?.file).toBe(path);
    expect(store.lastIndex()).toBe(19);
    expect(store.entries(1, 20, Number.MAX_SAFE_INTEGER)).toEqual(entries(1, 19, 1, 50));
    await store.close();
  });

  it("a bit flipped in an earlier segment stops recovery", async () => {
    const fs = new MemoryFileSystem();
    const store = await WalLogStore.open(DIR, { fs, segmentSizeBytes: 512 });
    for (let i = 1; i <= 30; i++)
      await store.save({ entries: entries(i, i, 1, 50) }, { sync: true });
    await store.close();
    const [first] = await listSegments(fs, DIR);
    const path = joinPath(DIR, first!.name);
    fs.flipBit(path, fs.contentOf(path).byteLength - 1, 7);
    await expect(WalLogStore.open(DIR, { fs, segmentSizeBytes: 512 })).rejects.toThrow(
      /not the last segment/,
    );
  });

  it("a bit flipped in the newest snapshot stops recovery", async () => {
    const fs = new MemoryFileSystem();
    const store = await WalLogStore.open(DIR, { fs, confState: VOTERS });
    await store.save({ entries: entries(1, 5, 1) }, { sync: true });
    await store.saveSnapshot(3, VOTERS, new Uint8Array(100).fill(7));
    await store.close();
    const [newest] = await listSnapshotFiles(fs, DIR);
    fs.flipBit(joinPath(DIR, newest!.name), 80, 1);
    await expect(WalLogStore.open(DIR, { fs })).rejects.toThrow(/snapshot checksum mismatch/);
  });

  it("a lost unsynced write disappears without a trace of corruption", async () => {
    const fs = new MemoryFileSystem();
    const store = await WalLogStore.open(DIR, { fs, confState: VOTERS });
    await store.save({ entries: entries(1, 5, 1) }, { sync: true });
    await store.save({ entries: entries(6, 9, 1) }, { sync: false });
    fs.crash({ unsyncedWrites: "lose" });
    const reopened = await WalLogStore.open(DIR, { fs });
    expect(reopened.lastIndex()).toBe(5);
    expect(reopened.recovery.truncated).toBeUndefined();
    await reopened.close();
  });
});
