/**
 * The process the crash test kills: it opens a WalLogStore in the directory given as argv[2],
 * then runs `APPENDERS` concurrent appenders that save one entry each with durability and print
 * `ack <index>` once the save resolves; now and then it snapshots and compacts. It never stops by
 * itself: the parent SIGKILLs it at a random moment.
 */
import { NodeFileSystem } from "../../src/storage/node-fs.js";
import { WalLogStore } from "../../src/storage/wal-log-store.js";
import { crashEntry, CRASH_SEGMENT_SIZE_BYTES, CRASH_VOTERS } from "./crash-entries.js";

const APPENDERS = 8;
const SNAPSHOT_EVERY_ACKS = 200;

async function main(): Promise<void> {
  const dir = process.argv[2];
  if (dir === undefined) throw new Error("usage: crash-child <dir>");
  const store = await WalLogStore.open(dir, {
    fs: new NodeFileSystem(),
    confState: CRASH_VOTERS,
    segmentSizeBytes: CRASH_SEGMENT_SIZE_BYTES,
  });
  process.stdout.write(`ready ${store.lastIndex()}\n`);
  let maxAcked = store.lastIndex();
  let acks = 0;
  let snapshotting = false;
  const appender = async (): Promise<void> => {
    for (;;) {
      const index = store.lastIndex() + 1;
      await store.save(
        { entries: [crashEntry(index)], hardState: { term: 1, vote: 1, commit: index } },
        { sync: true },
      );
      // Synchronous on a pipe: once written, the parent will read it even if we die next.
      process.stdout.write(`ack ${index}\n`);
      maxAcked = Math.max(maxAcked, index);
      if (++acks % SNAPSHOT_EVERY_ACKS === 0 && !snapshotting) {
        snapshotting = true;
        const at = maxAcked;
        await store.saveSnapshot(at, CRASH_VOTERS, new TextEncoder().encode(`state@${at}`));
        await store.compact(Math.max(1, at - 50));
        snapshotting = false;
      }
    }
  };
  await Promise.all(Array.from({ length: APPENDERS }, appender));
}

main().catch((error: unknown) => {
  process.stderr.write(`${String(error)}\n`);
  process.exit(1);
});
