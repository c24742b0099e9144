/**
 * Opening a write-ahead log after a stop or a crash: find the segments, check that none is
 * missing, scan each one, replay the records, and cut a torn tail off the last segment (making
 * the cut durable) so that appends continue right after the last good record.
 */
import { StorageCorruptError } from "../common/errors.js";
import { joinPath, type FileSystem } from "./fs.js";
import { RecordType, type WalRecord } from "./wal-record.js";
import { WalReplay, type ReplayedLog } from "./wal-replay.js";
import { parseSegmentFileName, scanSegment, type SegmentId } from "./wal-segment.js";

/** A segment on disk and the largest log index its records mention (0 if none). */
export interface SegmentInfo {
  readonly id: SegmentId;
  readonly name: string;
  /** Largest entry or snapshot index recorded in it; compaction removes it once this is covered. */
  maxIndex: number;
}

/** What recovery found. */
export interface RecoveredWal {
  readonly log: ReplayedLog;
  /** The surviving segments, oldest first; the last one is where appends continue. */
  readonly segments: SegmentInfo[];
  /** Where appends continue in the last segment (undefined if there is no segment). */
  readonly appendOffsetBytes: number | undefined;
  /** Torn tail cut from the last segment, if there was one (for logs and tests). */
  readonly truncated?: {
    readonly file: string;
    readonly offsetBytes: number;
    readonly reason: string;
  };
}

/** Largest log index a record mentions (0 for a hard state). Never throws. */
export function recordMaxIndex(record: WalRecord): number {
  if (record.type === RecordType.Entry) return record.entry.index;
  if (record.type === RecordType.Snapshot) return record.index;
  return 0;
}

/** The WAL segments in `dir`, oldest first. Never throws beyond the file system's errors. */
export async function listSegments(
  fs: FileSystem,
  dir: string,
): Promise<{ id: SegmentId; name: string }[]> {
  const segments: { id: SegmentId; name: string }[] = [];
  for (const name of await fs.list(dir)) {
    const id = parseSegmentFileName(name);
    if (id !== undefined) segments.push({ id, name });
  }
  return segments.sort((a, b) => a.id.sequence - b.id.sequence);
}

/**
 * Scans and replays every segment in `dir`.
 * @throws StorageCorruptError for a missing segment, a damaged record anywhere but at the tail
 *   of the last segment, or records that do not form a log.
 */
export async function recoverWal(fs: FileSystem, dir: string): Promise<RecoveredWal> {
  const found = await listSegments(fs, dir);
  const replay = new WalReplay();
  const segments: SegmentInfo[] = [];
  let appendOffsetBytes: number | undefined;
  let truncated: RecoveredWal["truncated"];
  for (let i = 0; i < found.length; i++) {
    const { id, name } = found[i] as { id: SegmentId; name: string };
    const path = joinPath(dir, name);
    const previous = found[i - 1];
    if (previous !== undefined && id.sequence !== previous.id.sequence + 1) {
      throw new StorageCorruptError(
        path,
        0,
        `segment ${previous.id.sequence + 1} (between ${previous.name} and this one) is missing`,
      );
    }
    const isLast = i === found.length - 1;
    const scan = scanSegment(path, await fs.readFile(path), { id, isLast });
    if (scan.tornCreation) {
      // Nothing in it was ever acknowledged: its header had not even reached the disk.
      await fs.remove(path);
      await fs.syncDirectory(dir);
      truncated = { file: path, offsetBytes: 0, reason: "segment creation was torn" };
      break;
    }
    const info: SegmentInfo = { id, name, maxIndex: 0 };
    for (const { record, offsetBytes } of scan.records) {
      replay.apply(record, { file: path, offsetBytes });
      info.maxIndex = Math.max(info.maxIndex, recordMaxIndex(record));
    }
    segments.push(info);
    if (isLast) {
      appendOffsetBytes = scan.validEndBytes;
      if (scan.tornTail !== undefined) {
        const handle = await fs.open(path, "readWrite");
        try {
          await handle.truncate(scan.validEndBytes);
          await handle.sync();
        } finally {
          await handle.close();
        }
        truncated = { file: path, ...scan.tornTail };
      }
    }
  }
  if (appendOffsetBytes === undefined && segments.length > 0) {
    // The torn last segment was dropped: append to the one before it, whose end is intact.
    const last = segments[segments.length - 1] as SegmentInfo;
    appendOffsetBytes = (await fs.stat(joinPath(dir, last.name))).sizeBytes;
  }
  return {
    log: replay.result(),
    segments,
    appendOffsetBytes,
    ...(truncated === undefined ? {} : { truncated }),
  };
}
