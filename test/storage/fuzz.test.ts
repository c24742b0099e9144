/**
 * Fuzzing recovery and decoding: random and corrupted bytes either recover a correct prefix of
 * what was acknowledged or raise StorageCorruptError; never wrong data, never another error.
 */
import { describe, expect, it } from "vitest";
import { StorageCorruptError } from "../../src/common/errors.js";
import { SeededRandom, type Random } from "../../src/common/random.js";
import { joinPath } from "../../src/storage/fs.js";
import { MemoryFileSystem } from "../../src/storage/memory-fs.js";
import { decodeSnapshotFile, encodeSnapshotFile } from "../../src/storage/snapshot-file.js";
import { WalLogStore } from "../../src/storage/wal-log-store.js";
import { readFrame } from "../../src/storage/wal-record.js";
import { encodeSegmentHeader, scanSegment } from "../../src/storage/wal-segment.js";
import { VOTERS } from "./helpers.js";
import { entryTexts, isStateOf, runWorkload } from "./workload.js";

const DIR = "/fuzz";
const ROUNDS = 300;

function randomBytes(random: Random, length: number): Uint8Array {
  const bytes = new Uint8Array(length);
  for (let i = 0; i < length; i++) bytes[i] = random.int(256);
  return bytes;
}

/** Damages one file of the data directory at random; returns a description. */
async function corrupt(fs: MemoryFileSystem, random: Random): Promise<string> {
  const names = (await fs.list(DIR)).filter((name) => name !== "LOCK");
  const name = names[random.int(names.length)]!;
  const path = joinPath(DIR, name);
  const content = fs.contentOf(path);
  const kind = random.int(5);
  if (kind === 0 && content.byteLength > 0) {
    const flips = 1 + random.int(3);
    for (let i = 0; i < flips; i++) fs.flipBit(path, random.int(content.byteLength), random.int(8));
    return `flipped ${flips} bits in ${name}`;
  }
  if (kind === 1) {
    fs.setContent(path, content.subarray(0, random.int(content.byteLength + 1)));
    return `truncated ${name}`;
  }
  if (kind === 2 && content.byteLength > 0) {
    const at = random.int(content.byteLength);
    const damaged = content.slice();
    damaged.set(randomBytes(random, Math.min(1 + random.int(64), content.byteLength - at)), at);
    fs.setContent(path, damaged);
    return `overwrote bytes in ${name}`;
  }
  const grown = new Uint8Array(content.byteLength + 1 + random.int(200));
  grown.set(content);
  if (kind === 3)
    grown.set(randomBytes(random, grown.byteLength - content.byteLength), content.byteLength);
  fs.setContent(path, grown);
  return `appended ${kind === 3 ? "garbage" : "zeros"} to ${name}`;
}

describe("fuzzing recovery", () => {
  it(`recovers a correct prefix or raises StorageCorrupt, over ${ROUNDS} damaged directories`, async () => {
    let corruptions = 0;
    let recoveries = 0;
    for (let round = 0; round < ROUNDS; round++) {
      const random = new SeededRandom(1000 + round);
      const fs = new MemoryFileSystem();
      const store = await WalLogStore.open(DIR, { fs, confState: VOTERS, segmentSizeBytes: 1024 });
      const result = await runWorkload(store, random, {
        operations: 10 + random.int(40),
        allowUnsynced: false,
        inFlightTail: 0,
      });
      const snapshot = store.snapshotMetadata();
      await store.close();
      const what = await corrupt(fs, random);
      let reopened: WalLogStore;
      try {
        reopened = await WalLogStore.open(DIR, { fs, segmentSizeBytes: 1024 });
      } catch (error) {
        if (!(error instanceof StorageCorruptError)) {
          throw new Error(`round ${round} (${what}): ${String(error)}`, { cause: error });
        }
        corruptions++;
        continue;
      }
      recoveries++;
      try {
        // Damage to an older snapshot file goes unseen, and a cut log may leave a newer snapshot
        // than its last entry; the snapshot in use is the one written.
        expect(reopened.snapshotMetadata(), `round ${round} (${what})`).toEqual(snapshot);
        // A cut tail may go back into earlier saves (a torn last record, or a file cut short,
        // looks the same): the log must still be one the store went through, entry for entry.
        const got = entryTexts(reopened);
        if (!isStateOf(result, got, snapshot.index, 0)) {
          throw new Error(
            `round ${round} (${what}): recovered log is not a state the store went through`,
          );
        }
      } finally {
        await reopened.close();
      }
    }
    // Both outcomes must occur, or the fuzzing is not reaching the decoder.
    expect(corruptions).toBeGreaterThan(ROUNDS / 10);
    expect(recoveries).toBeGreaterThan(ROUNDS / 10);
  });

  it("decodes random bytes into records or StorageCorrupt, nothing else", () => {
    const random = new SeededRandom(99);
    const id = { sequence: 1, firstIndex: 1 };
    for (let round = 0; round < 2000; round++) {
      const body = randomBytes(random, random.int(300));
      const bytes = new Uint8Array(40 + body.byteLength);
      bytes.set(random.int(4) === 0 ? randomBytes(random, 40) : encodeSegmentHeader(id), 0);
      bytes.set(body, 40);
      expect(readFrame(bytes, random.int(bytes.byteLength)).status).not.toBe("ok");
      try {
        scanSegment("f", bytes, { id, isLast: random.int(2) === 0 });
      } catch (error) {
        expect(error).toBeInstanceOf(StorageCorruptError);
      }
      try {
        decodeSnapshotFile("s", body);
      } catch (error) {
        expect(error).toBeInstanceOf(StorageCorruptError);
      }
    }
  });

  it("finds every damaged snapshot file", () => {
    const random = new SeededRandom(5);
    const file = encodeSnapshotFile({
      metadata: { index: 12, term: 3, confState: VOTERS },
      data: randomBytes(random, 500),
    });
    for (let round = 0; round < 500; round++) {
      const damaged = file.slice();
      const at = random.int(damaged.byteLength);
      damaged[at] = (damaged[at] ?? 0) ^ (1 << random.int(8));
      expect(() => decodeSnapshotFile("s", damaged)).toThrow(StorageCorruptError);
    }
  });
});
