/**
 * The kv store's entries as they stood at a snapshot's capture, written a slice at a time while
 * the store keeps changing (private to the kv folder; `KvStore.captureSnapshot` makes one).
 *
 * Records are replaced on every write, never changed in place, so the view needs only the key
 * list as it was (a copy of the sorted array: one pointer per key) and the live record map; the
 * store hands the view the record a key had before its first change after the capture
 * ({@link KvSnapshotView.preserve}), and the view reads that one instead of the live map's.
 * Only keys the view has not written yet are preserved, so what it holds is bounded by the
 * writes that land ahead of it.
 */
import type { ByteWriter } from "../codec/binary.js";
import type { SnapshotPart } from "../snapshot-encoding.js";
import type { KvRecord } from "./record.js";
import { compareKeys } from "./sorted-keys.js";

/** Writes one entry as a kv snapshot holds it (format 2): key, value, three revisions, lease. */
export function writeSnapshotEntry(writer: ByteWriter, key: string, record: KvRecord): void {
  writer
    .string(key)
    .bytes(record.value)
    .u53(record.createRevision)
    .u53(record.modRevision)
    .u53(record.version)
    .u53(record.lease);
}

/** The entries part of a captured kv snapshot. */
export class KvSnapshotView implements SnapshotPart {
  readonly sizeBytes: number;
  #records: ReadonlyMap<string, KvRecord>;
  #keys: readonly string[];
  /** Records as they were at the capture, of keys changed since and not yet written. */
  readonly #preserved = new Map<string, KvRecord>();
  /** The position of the next key to write. */
  #next = 0;
  readonly #onRelease: (view: KvSnapshotView) => void;
  #released = false;

  /**
   * @param records The store's live record map (read at each slice).
   * @param keys The keys at the capture, in order (a copy the view owns).
   * @param sizeBytes The bytes the entries take.
   * @param onRelease Called once on release, so the store stops preserving records for the view.
   */
  constructor(
    records: ReadonlyMap<string, KvRecord>,
    keys: readonly string[],
    sizeBytes: number,
    onRelease: (view: KvSnapshotView) => void,
  ) {
    this.#records = records;
    this.#keys = keys;
    this.sizeBytes = sizeBytes;
    this.#onRelease = onRelease;
  }

  /** @inheritdoc Its size is known at the capture. */
  get prepared(): boolean {
    return true;
  }

  /** @inheritdoc */
  prepare(): number {
    return 0;
  }

  /**
   * Called by the store before it replaces or deletes `key`'s record `previous` (undefined: the
   * key is absent now, so it was absent at the capture or is preserved already).
   */
  preserve(key: string, previous: KvRecord | undefined): void {
    if (previous === undefined || this.#preserved.has(key)) return;
    const lastWritten = this.#keys[this.#next - 1];
    if (lastWritten !== undefined && compareKeys(key, lastWritten) <= 0) return;
    this.#preserved.set(key, previous);
  }

  /** @inheritdoc */
  writeSlice(writer: ByteWriter, budgetBytes: number): boolean {
    const keys = this.#keys;
    const records = this.#records;
    const preserved = this.#preserved;
    const start = writer.lengthBytes;
    let next = this.#next;
    while (next < keys.length && writer.lengthBytes - start < budgetBytes) {
      const key = keys[next] as string;
      let record: KvRecord | undefined;
      if (preserved.size > 0) {
        record = preserved.get(key);
        if (record !== undefined) preserved.delete(key);
      }
      // Every key of the copy was in the map at the capture; if it changed since, it is preserved.
      writeSnapshotEntry(writer, key, record ?? (records.get(key) as KvRecord));
      next++;
    }
    this.#next = next;
    return next === keys.length;
  }

  /** @inheritdoc */
  release(): void {
    if (this.#released) return;
    this.#released = true;
    this.#preserved.clear();
    this.#records = new Map();
    this.#keys = [];
    this.#onRelease(this);
  }
}
