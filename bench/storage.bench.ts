/**
 * `npm run bench:storage`: appends/s and MB/s of the write-ahead log with 1, 16 and 256
 * concurrent appenders of 256-byte entries, each append durable, next to the raw rate of durable
 * writes on the same disk, the physical limit: the better of write + fdatasync and of a write to
 * a file opened `O_DSYNC` (what the WAL's segments use). The ratio compares the WAL's batches
 * (durable writes) per second with that raw rate.
 *
 * Set BLIXARD_BENCH_DIR to measure another disk (default: the OS temp directory);
 * BLIXARD_BENCH_SECONDS sets each run's length (default 3).
 */
import { constants } from "node:fs";
import { mkdtemp, open, rm } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { installNativeCrc32 } from "../src/platform/native-crc32.js";
import { EntryType } from "../src/raft/types.js";
import { NodeFileSystem } from "../src/storage/node-fs.js";
import { Wal } from "../src/storage/wal.js";
import { RecordType, recordSizeBytes } from "../src/storage/wal-record.js";

const ENTRY_DATA_BYTES = 256;
const CONCURRENCY = [1, 16, 256];
const RUN_SECONDS = Number(process.env.BLIXARD_BENCH_SECONDS ?? 3);
const BASE_DIR = process.env.BLIXARD_BENCH_DIR ?? tmpdir();

const payload = new Uint8Array(ENTRY_DATA_BYTES).fill(0x61);
const RECORD_BYTES = recordSizeBytes({
  type: RecordType.Entry,
  entry: { index: 1, term: 1, type: EntryType.Normal, data: payload },
});

/**
 * Appending durable writes of `blockBytes` at a time, back to back: write + fdatasync, or a write
 * to a file opened `O_DSYNC` (`dsync`).
 */
async function rawSyncsPerSecond(dir: string, blockBytes: number, dsync: boolean): Promise<number> {
  const flags = constants.O_WRONLY | constants.O_CREAT | constants.O_TRUNC;
  const handle = await open(
    join(dir, `raw-${blockBytes}-${dsync ? "dsync" : "fdatasync"}.bin`),
    dsync ? flags | constants.O_DSYNC : flags,
  );
  const block = new Uint8Array(blockBytes).fill(0x62);
  let position = 0;
  let count = 0;
  const deadline = performance.now() + RUN_SECONDS * 1000;
  try {
    while (performance.now() < deadline) {
      await handle.write(block, 0, block.byteLength, position);
      position += block.byteLength;
      if (!dsync) await handle.datasync();
      count++;
    }
  } finally {
    await handle.close();
  }
  return count / RUN_SECONDS;
}

interface WalRun {
  readonly appendsPerSecond: number;
  readonly megabytesPerSecond: number;
  readonly batchesPerSecond: number;
  readonly entriesPerBatch: number;
}

async function walRun(dir: string, appenders: number): Promise<WalRun> {
  const { wal } = await Wal.open(new NodeFileSystem(), dir);
  let nextIndex = 1;
  let appends = 0;
  const deadline = performance.now() + RUN_SECONDS * 1000;
  const started = performance.now();
  const batchesBefore = wal.stats.batches;
  const appender = async (): Promise<void> => {
    while (performance.now() < deadline) {
      const index = nextIndex++;
      await wal.append(
        [
          {
            type: RecordType.Entry,
            entry: { index, term: 1, type: EntryType.Normal, data: payload },
          },
        ],
        { sync: true },
      );
      appends++;
    }
  };
  await Promise.all(Array.from({ length: appenders }, appender));
  const seconds = (performance.now() - started) / 1000;
  const batches = wal.stats.batches - batchesBefore;
  await wal.close();
  return {
    appendsPerSecond: appends / seconds,
    megabytesPerSecond: (appends * ENTRY_DATA_BYTES) / seconds / 1e6,
    batchesPerSecond: batches / seconds,
    entriesPerBatch: appends / batches,
  };
}

async function main(): Promise<void> {
  // As `blixard node start` does: records of a few hundred bytes and more are checksummed by zlib.
  const native = installNativeCrc32();
  const root = await mkdtemp(join(BASE_DIR, "blixard-bench-"));
  try {
    console.log(
      `storage bench: ${ENTRY_DATA_BYTES}-byte entries (${RECORD_BYTES} bytes on disk), ${RUN_SECONDS} s per run, in ${root}; CRC-32 ${native ? "zlib's (as node start)" : "the table loop (no zlib.crc32 in this Node)"}`,
    );
    console.log(
      "Each WAL run is followed by two raw runs (appending write + fdatasync, and O_DSYNC writes; no WAL)",
    );
    console.log(
      "writing the WAL's average batch size per call: the better is the physical limit for that batch size.",
    );
    console.log(
      "appenders | appends/s | MB/s   | batches/s | entries/batch | raw fdatasync/s | raw O_DSYNC/s | batches/s ÷ raw",
    );
    for (const appenders of CONCURRENCY) {
      const dir = join(root, `wal-${appenders}`);
      await new NodeFileSystem().mkdir(dir);
      const run = await walRun(dir, appenders);
      const blockBytes = Math.round(run.entriesPerBatch * RECORD_BYTES);
      const rawFdatasync = await rawSyncsPerSecond(root, blockBytes, false);
      const rawDsync = await rawSyncsPerSecond(root, blockBytes, true);
      const raw = Math.max(rawFdatasync, rawDsync);
      console.log(
        [
          String(appenders).padStart(9),
          run.appendsPerSecond.toFixed(0).padStart(9),
          run.megabytesPerSecond.toFixed(2).padStart(6),
          run.batchesPerSecond.toFixed(0).padStart(9),
          run.entriesPerBatch.toFixed(1).padStart(13),
          rawFdatasync.toFixed(0).padStart(15),
          rawDsync.toFixed(0).padStart(13),
          `${((run.batchesPerSecond / raw) * 100).toFixed(0)}%`.padStart(15),
        ].join(" | "),
      );
    }
  } finally {
    await rm(root, { recursive: true, force: true });
  }
}

await main();
