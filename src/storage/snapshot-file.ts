/**
 * Snapshot files: one checksummed file per snapshot, `snap-<index hex16>-<term hex16>.snap`,
 * written to a temporary name, fsynced, renamed into place and made durable with a directory
 * fsync, so a crash leaves either the whole snapshot or none of it. Verified when loaded; the
 * oldest are pruned.
 */
import { invariant } from "../common/assert.js";
import { isBlixardError, StorageCorruptError, UnavailableError } from "../common/errors.js";
import type { ConfState, NodeId, Snapshot, SnapshotMetadata } from "../raft/types.js";
import { hex16, readUint64, viewOf, writeUint64 } from "./binary.js";
import { crc32 } from "../common/crc32.js";
import { hasErrorCode, joinPath, type FileHandle, type FileSystem } from "./fs.js";
import { storageIoError } from "./io-error.js";

/** "BLXSNP\r\n". */
const SNAPSHOT_MAGIC = new Uint8Array([0x42, 0x4c, 0x58, 0x53, 0x4e, 0x50, 0x0d, 0x0a]);
/** The snapshot file format this code writes and reads. */
export const SNAPSHOT_FORMAT_VERSION = 1;
/** magic 8, version u32, reserved u32, index u64, term u64, confState length u32, data length u64. */
const SNAPSHOT_HEADER_BYTES = 44;
const SNAPSHOT_TRAILER_BYTES = 4;
/**
 * `writeSnapshotFile` writes (and checksums) the data in pieces of this size, each its own write,
 * so a large snapshot is never copied whole nor checksummed in one pass on the event loop: 1 MiB.
 */
const SNAPSHOT_WRITE_PIECE_BYTES = 1024 * 1024;
/** The suffix of a snapshot being written; a leftover one is removed at open. */
export const TEMPORARY_SUFFIX = ".tmp";

const SNAPSHOT_NAME = /^snap-([0-9a-f]{16})-([0-9a-f]{16})\.snap$/;

/** The file name of the snapshot at `index` and `term`. Never throws. */
export function snapshotFileName(index: number, term: number): string {
  return `snap-${hex16(index)}-${hex16(term)}.snap`;
}

/** Index and term a snapshot file name encodes, or undefined if `name` is not a snapshot's. */
export function parseSnapshotFileName(name: string): { index: number; term: number } | undefined {
  const match = SNAPSHOT_NAME.exec(name);
  if (match === null) return undefined;
  const index = Number.parseInt(match[1] as string, 16);
  const term = Number.parseInt(match[2] as string, 16);
  if (!Number.isSafeInteger(index) || !Number.isSafeInteger(term)) return undefined;
  return { index, term };
}

const CONF_LISTS = ["voters", "learners", "votersOutgoing", "learnersNext"] as const;

function encodeConfState(confState: ConfState): Uint8Array {
  let count = 0;
  for (const list of CONF_LISTS) count += confState[list].length;
  const bytes = new Uint8Array(CONF_LISTS.length * 4 + count * 8 + 1);
  const view = viewOf(bytes);
  let offset = 0;
  for (const list of CONF_LISTS) {
    view.setUint32(offset, confState[list].length, true);
    offset += 4;
    for (const id of confState[list]) {
      writeUint64(view, offset, id);
      offset += 8;
    }
  }
  view.setUint8(offset, confState.autoLeave ? 1 : 0);
  return bytes;
}

function decodeConfState(bytes: Uint8Array): ConfState | string {
  const view = viewOf(bytes);
  let offset = 0;
  const lists: NodeId[][] = [];
  for (let list = 0; list < CONF_LISTS.length; list++) {
    if (offset + 4 > bytes.byteLength) return "configuration truncated";
    const length = view.getUint32(offset, true);
    offset += 4;
    if (offset + length * 8 > bytes.byteLength) return "configuration truncated";
    const ids: NodeId[] = [];
    for (let i = 0; i < length; i++) {
      const id = readUint64(view, offset);
      if (id === undefined) return "node id out of range";
      ids.push(id);
      offset += 8;
    }
    lists.push(ids);
  }
  if (offset + 1 !== bytes.byteLength) return "configuration has trailing bytes";
  const autoLeave = view.getUint8(offset);
  if (autoLeave > 1) return "configuration autoLeave flag is not 0 or 1";
  const [voters, learners, votersOutgoing, learnersNext] = lists as [
    NodeId[],
    NodeId[],
    NodeId[],
    NodeId[],
  ];
  return { voters, learners, votersOutgoing, learnersNext, autoLeave: autoLeave === 1 };
}

/** The bytes of a snapshot file before its data: the header and the configuration. */
function encodeSnapshotHead(metadata: SnapshotMetadata, dataBytes: number): Uint8Array {
  const conf = encodeConfState(metadata.confState);
  const bytes = new Uint8Array(SNAPSHOT_HEADER_BYTES + conf.byteLength);
  const view = viewOf(bytes);
  bytes.set(SNAPSHOT_MAGIC, 0);
  view.setUint32(8, SNAPSHOT_FORMAT_VERSION, true);
  writeUint64(view, 16, metadata.index);
  writeUint64(view, 24, metadata.term);
  view.setUint32(32, conf.byteLength, true);
  writeUint64(view, 36, dataBytes);
  bytes.set(conf, SNAPSHOT_HEADER_BYTES);
  return bytes;
}

/** The bytes of a snapshot file. Never throws for valid input. */
export function encodeSnapshotFile(snapshot: Snapshot): Uint8Array {
  const head = encodeSnapshotHead(snapshot.metadata, snapshot.data.byteLength);
  const checked = head.byteLength + snapshot.data.byteLength;
  const bytes = new Uint8Array(checked + SNAPSHOT_TRAILER_BYTES);
  bytes.set(head, 0);
  bytes.set(snapshot.data, head.byteLength);
  viewOf(bytes).setUint32(checked, crc32(bytes.subarray(0, checked)), true);
  return bytes;
}

/**
 * Decodes and verifies a snapshot file's bytes.
 * @throws StorageCorruptError naming `file` if the checksum, the layout or the name disagree.
 */
export function decodeSnapshotFile(
  file: string,
  bytes: Uint8Array,
  expected?: { readonly index: number; readonly term: number },
): Snapshot {
  const checked = Math.max(0, bytes.byteLength - SNAPSHOT_TRAILER_BYTES);
  return decodeCheckedSnapshotFile(file, bytes, crc32(bytes.subarray(0, checked)), expected);
}

/**
 * {@link decodeSnapshotFile} given the checksum of everything before the trailer, computed by the
 * caller (piece by piece as it read the file). The data is a view into `bytes`, not a copy: a
 * restart holds the file once, not twice.
 */
function decodeCheckedSnapshotFile(
  file: string,
  bytes: Uint8Array,
  crc: number,
  expected?: { readonly index: number; readonly term: number },
): Snapshot {
  const fail = (offset: number, reason: string): never => {
    throw new StorageCorruptError(file, offset, reason);
  };
  if (bytes.byteLength < SNAPSHOT_HEADER_BYTES + SNAPSHOT_TRAILER_BYTES) {
    fail(0, "snapshot file is too short");
  }
  const view = viewOf(bytes);
  const checked = bytes.byteLength - SNAPSHOT_TRAILER_BYTES;
  if (crc !== view.getUint32(checked, true)) {
    fail(checked, "snapshot checksum mismatch");
  }
  for (let i = 0; i < SNAPSHOT_MAGIC.length; i++) {
    if (bytes[i] !== SNAPSHOT_MAGIC[i]) fail(0, "not a Blixard snapshot file (bad magic)");
  }
  const version = view.getUint32(8, true);
  if (version !== SNAPSHOT_FORMAT_VERSION)
    fail(8, `snapshot format version ${version} is not supported`);
  const index = readUint64(view, 16);
  const term = readUint64(view, 24);
  const confBytes = view.getUint32(32, true);
  const dataBytes = readUint64(view, 36);
  if (index === undefined || term === undefined || dataBytes === undefined) {
    return fail(16, "snapshot index, term or size out of range");
  }
  if (SNAPSHOT_HEADER_BYTES + confBytes + dataBytes !== checked) {
    fail(32, "snapshot sizes do not add up to the file size");
  }
  if (expected !== undefined && (expected.index !== index || expected.term !== term)) {
    fail(
      16,
      `snapshot holds index ${index} term ${term}, its name says ${expected.index}/${expected.term}`,
    );
  }
  const confState = decodeConfState(
    bytes.subarray(SNAPSHOT_HEADER_BYTES, SNAPSHOT_HEADER_BYTES + confBytes),
  );
  if (typeof confState === "string") return fail(SNAPSHOT_HEADER_BYTES, confState);
  const data = bytes.subarray(SNAPSHOT_HEADER_BYTES + confBytes, checked);
  return { metadata: { index, term, confState }, data };
}

/** The error of a failed read of a snapshot file; a typed error passes through. Never throws. */
function readBackError(error: unknown, path: string): Error {
  if (isBlixardError(error)) return error;
  const code = (error as { code?: unknown } | null)?.code ?? (error as Error).message;
  return new UnavailableError(
    `could not read snapshot file ${path} (${String(code)}): check the disk and the file's ` +
      "permissions",
    { cause: error },
  );
}

/**
 * Reads of a snapshot file kept in flight at once. The kernel's copy into fresh memory (page
 * faults, slow on virtual machines) runs on the thread pool's threads: with several in flight it
 * uses every core, and the event loop only checksums pieces as they arrive.
 */
const SNAPSHOT_READS_IN_FLIGHT = 4;

/**
 * Reads and verifies the snapshot file of `index`/`term` in `dir` a piece at a time
 * ({@link SNAPSHOT_WRITE_PIECE_BYTES}, {@link SNAPSHOT_READS_IN_FLIGHT} pieces read at once),
 * checksumming the pieces in order as they arrive, so the event loop runs between pieces: a
 * leader that loads a large snapshot to send it to a follower keeps its heartbeats going.
 * @throws StorageCorruptError if it fails verification; UnavailableError if it cannot be read.
 */
export async function readSnapshotFile(
  fs: FileSystem,
  dir: string,
  expected: { readonly index: number; readonly term: number },
): Promise<Snapshot> {
  const path = joinPath(dir, snapshotFileName(expected.index, expected.term));
  let handle: FileHandle;
  try {
    handle = await fs.open(path, "read");
  } catch (error) {
    throw readBackError(error, path);
  }
  const reads: Promise<void>[] = [];
  try {
    const size = await handle.sizeBytes();
    const bytes = new Uint8Array(size);
    const checked = Math.max(0, size - SNAPSHOT_TRAILER_BYTES);
    const pieces = Math.ceil(size / SNAPSHOT_WRITE_PIECE_BYTES);
    const readPiece = (k: number): Promise<void> => {
      const start = k * SNAPSHOT_WRITE_PIECE_BYTES;
      const read = readFully(
        handle,
        path,
        bytes.subarray(start, start + SNAPSHOT_WRITE_PIECE_BYTES),
        start,
      );
      // Awaited in order below; a later piece failing first must not count as unhandled.
      read.catch(() => undefined);
      return read;
    };
    for (let k = 0; k < Math.min(pieces, SNAPSHOT_READS_IN_FLIGHT); k++) reads.push(readPiece(k));
    let crc = 0;
    for (let k = 0; k < pieces; k++) {
      await reads[k];
      if (k + SNAPSHOT_READS_IN_FLIGHT < pieces)
        reads.push(readPiece(k + SNAPSHOT_READS_IN_FLIGHT));
      const start = k * SNAPSHOT_WRITE_PIECE_BYTES;
      const end = Math.min(checked, start + SNAPSHOT_WRITE_PIECE_BYTES);
      if (start < end) crc = crc32(bytes.subarray(start, end), crc);
    }
    return decodeCheckedSnapshotFile(path, bytes, crc, expected);
  } catch (error) {
    throw readBackError(error, path);
  } finally {
    // No read may still be writing into the buffer, or use the handle, once this returns.
    await Promise.allSettled(reads);
    await handle.close().catch(() => undefined);
  }
}

/** Fills `piece` from `position` of the file, over as many reads as it takes. */
async function readFully(
  handle: FileHandle,
  path: string,
  piece: Uint8Array,
  position: number,
): Promise<void> {
  for (let done = 0; done < piece.length;) {
    const read = await handle.read(piece.subarray(done), position + done);
    if (read <= 0) {
      throw new StorageCorruptError(path, position + done, "snapshot file ended early");
    }
    done += read;
  }
}

/**
 * A snapshot file being written: its data arrives in pieces ({@link write}), checksummed as they
 * come, into a temporary file that {@link commit} makes durable under its real name (fsync,
 * rename, directory fsync), so a crash leaves either the whole snapshot or none of it.
 */
export class SnapshotFileWriter {
  readonly #fs: FileSystem;
  readonly #dir: string;
  readonly #name: string;
  readonly #temporary: string;
  readonly #handle: FileHandle;
  readonly #dataBytes: number;
  #position: number;
  #crc: number;
  #writtenDataBytes = 0;
  #done = false;

  private constructor(
    fs: FileSystem,
    dir: string,
    name: string,
    handle: FileHandle,
    head: Uint8Array,
    dataBytes: number,
  ) {
    this.#fs = fs;
    this.#dir = dir;
    this.#name = name;
    this.#temporary = joinPath(dir, `${name}${TEMPORARY_SUFFIX}`);
    this.#handle = handle;
    this.#dataBytes = dataBytes;
    this.#position = head.byteLength;
    this.#crc = crc32(head);
  }

  /**
   * Creates the temporary file of the snapshot `metadata` names, holding `dataBytes` of data,
   * and writes its header.
   * @throws StorageFullError if the disk is full; UnavailableError for another disk failure.
   */
  static async create(
    fs: FileSystem,
    dir: string,
    metadata: SnapshotMetadata,
    dataBytes: number,
  ): Promise<SnapshotFileWriter> {
    const name = snapshotFileName(metadata.index, metadata.term);
    const temporary = joinPath(dir, `${name}${TEMPORARY_SUFFIX}`);
    if (await fs.exists(temporary)) await fs.remove(temporary);
    let handle: FileHandle;
    try {
      handle = await fs.open(temporary, "createExclusive");
    } catch (error) {
      throw storageIoError(error, "create", temporary);
    }
    const head = encodeSnapshotHead(metadata, dataBytes);
    const writer = new SnapshotFileWriter(fs, dir, name, handle, head, dataBytes);
    await writer.#guarded(() => handle.write(head, 0));
    return writer;
  }

  /**
   * Appends `piece` (written before this resolves; the caller may reuse its buffer after).
   * @throws StorageFullError / UnavailableError as {@link create}; the file is then removed.
   */
  async write(piece: Uint8Array): Promise<void> {
    invariant(!this.#done, "a snapshot file written after commit or abort");
    invariant(
      this.#writtenDataBytes + piece.byteLength <= this.#dataBytes,
      () => `a snapshot file of ${this.#dataBytes} data bytes given more`,
    );
    this.#crc = crc32(piece, this.#crc);
    const position = this.#position;
    this.#position += piece.byteLength;
    this.#writtenDataBytes += piece.byteLength;
    await this.#guarded(() => this.#handle.write(piece, position));
  }

  /**
   * Writes the checksum and makes the file durable under its name; returns the name.
   * @throws StorageFullError / UnavailableError as {@link create}.
   */
  async commit(): Promise<string> {
    invariant(
      this.#writtenDataBytes === this.#dataBytes,
      () =>
        `a snapshot file of ${this.#dataBytes} data bytes committed at ${this.#writtenDataBytes}`,
    );
    const trailer = new Uint8Array(SNAPSHOT_TRAILER_BYTES);
    viewOf(trailer).setUint32(0, this.#crc, true);
    await this.#guarded(() => this.#handle.write(trailer, this.#position));
    this.#done = true;
    try {
      await this.#handle.sync();
    } catch (error) {
      await this.#handle.close().catch(() => undefined);
      throw storageIoError(error, "fsync", this.#temporary);
    }
    await this.#handle.close();
    await this.#fs.rename(this.#temporary, joinPath(this.#dir, this.#name));
    try {
      await this.#fs.syncDirectory(this.#dir);
    } catch (error) {
      throw storageIoError(error, "fsync", this.#dir);
    }
    return this.#name;
  }

  /** Drops the temporary file (the snapshot is no longer wanted). Idempotent; never throws. */
  async abort(): Promise<void> {
    if (this.#done) return;
    this.#done = true;
    await this.#handle.close().catch(() => undefined);
    await this.#fs.remove(this.#temporary).catch(() => undefined);
  }

  /** Runs a write; on failure (a full disk, most likely) drops the partial file and says so. */
  async #guarded(write: () => Promise<unknown>): Promise<void> {
    try {
      await write();
    } catch (error) {
      await this.abort();
      throw storageIoError(error, "write", this.#temporary);
    }
  }
}

/**
 * Writes `snapshot` durably into `dir` (see {@link SnapshotFileWriter}), straight from its data
 * a piece at a time, the event loop running between pieces. Returns the file name.
 * @throws StorageFullError if the disk is full (the temporary file is removed: retry later).
 * @throws UnavailableError naming the file for any other disk failure.
 */
export async function writeSnapshotFile(
  fs: FileSystem,
  dir: string,
  snapshot: Snapshot,
): Promise<string> {
  const data = snapshot.data;
  const writer = await SnapshotFileWriter.create(fs, dir, snapshot.metadata, data.byteLength);
  await writeInPieces(writer, data);
  return writer.commit();
}

/**
 * Hands `data` to `sink` a piece ({@link SNAPSHOT_WRITE_PIECE_BYTES}) at a time, each write
 * awaited: a large snapshot is never copied whole nor checksummed in one pass.
 */
export async function writeInPieces(
  sink: { write(piece: Uint8Array): Promise<void> },
  data: Uint8Array,
): Promise<void> {
  for (let offset = 0; offset < data.byteLength; offset += SNAPSHOT_WRITE_PIECE_BYTES) {
    await sink.write(data.subarray(offset, offset + SNAPSHOT_WRITE_PIECE_BYTES));
  }
}

/** The snapshot files in `dir`, newest (highest index) first. */
export async function listSnapshotFiles(
  fs: FileSystem,
  dir: string,
): Promise<{ name: string; index: number; term: number }[]> {
  const found: { name: string; index: number; term: number }[] = [];
  for (const name of await fs.list(dir)) {
    const parsed = parseSnapshotFileName(name);
    if (parsed !== undefined) found.push({ name, ...parsed });
  }
  return found.sort((a, b) => b.index - a.index || b.term - a.term);
}

/**
 * Loads and verifies the newest snapshot in `dir`; undefined if there is none. A damaged newest
 * snapshot is an error, not a reason to quietly fall back to an older one.
 * @throws StorageCorruptError if it fails verification.
 */
export async function loadNewestSnapshot(
  fs: FileSystem,
  dir: string,
): Promise<Snapshot | undefined> {
  const newest = (await listSnapshotFiles(fs, dir))[0];
  if (newest === undefined) return undefined;
  return readSnapshotFile(fs, dir, newest);
}

/** Removes all but the newest `keep` snapshot files of `dir`. Returns how many were removed. */
export async function pruneSnapshotFiles(
  fs: FileSystem,
  dir: string,
  keep: number,
): Promise<number> {
  const old = (await listSnapshotFiles(fs, dir)).slice(keep);
  for (const { name } of old) {
    try {
      await fs.remove(joinPath(dir, name));
    } catch (error) {
      if (!hasErrorCode(error, "ENOENT")) throw error;
    }
  }
  if (old.length > 0) await fs.syncDirectory(dir);
  return old.length;
}

/** Removes temporary files a crash left behind in `dir` (snapshots being written). */
export async function removeTemporaryFiles(fs: FileSystem, dir: string): Promise<void> {
  const leftovers = (await fs.list(dir)).filter((name) => name.endsWith(TEMPORARY_SUFFIX));
  for (const name of leftovers) await fs.remove(joinPath(dir, name));
  if (leftovers.length > 0) await fs.syncDirectory(dir);
}
