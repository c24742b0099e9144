/**
 * The backup file of `blixard operator snapshot save`: a consistent copy of the whole replicated
 * state with what is needed to check it and to build a new cluster from it.
 *
 * Layout (integers big-endian):
 *
 *     "BLIXSNAP"            8 bytes, the magic
 *     format                u32, {@link BACKUP_FORMAT_VERSION}
 *     header length         u32, at most {@link MAX_HEADER_BYTES}
 *     header                UTF-8 JSON ({@link BackupHeader})
 *     data                  the state machine's snapshot bytes (`header.dataBytes` of them)
 *     trailer               32 bytes: SHA-256 of everything before it
 *
 * The header repeats the data's own SHA-256 (the one the node computed), so a file is checked
 * twice: the trailer catches damage anywhere, the data digest ties the bytes to the node's.
 */
import { createHash } from "node:crypto";
import { open, readFile, rename, rm } from "node:fs/promises";
import { InvalidArgumentError } from "../../common/errors.js";

/** The magic that starts every backup file. */
export const BACKUP_MAGIC = "BLIXSNAP";
/** The format this version writes and reads. */
export const BACKUP_FORMAT_VERSION = 1;
/** Largest header accepted (a cluster's member list is small). */
export const MAX_HEADER_BYTES = 1024 * 1024;
const SHA256_BYTES = 32;
const PREAMBLE_BYTES = BACKUP_MAGIC.length + 8;

/** What a backup file says about its data. */
export interface BackupHeader {
  readonly format: typeof BACKUP_FORMAT_VERSION;
  readonly clusterId: string;
  /** The raft log index the state is at. */
  readonly index: number;
  readonly term: number;
  /** The node that took it and its software version. */
  readonly takenBy: number;
  readonly version: string;
  /** When the file was written (ISO 8601, the saving host's clock; for people only). */
  readonly createdAt: string;
  readonly members: readonly {
    readonly id: number;
    readonly suffrage: "voter" | "learner";
    readonly raftAddress?: string;
    readonly apiAddress?: string;
  }[];
  readonly dataBytes: number;
  /** Hex SHA-256 of the data. */
  readonly dataSha256: string;
}

/** A backup: its header and data. */
export interface Backup {
  readonly header: BackupHeader;
  readonly data: Uint8Array;
}

/** The file's bytes for `header` and `data`. Throws nothing. */
export function encodeBackup(backup: Backup): Uint8Array {
  const header = Buffer.from(JSON.stringify(backup.header), "utf8");
  const preamble = Buffer.alloc(PREAMBLE_BYTES);
  preamble.write(BACKUP_MAGIC, 0, "ascii");
  preamble.writeUInt32BE(BACKUP_FORMAT_VERSION, BACKUP_MAGIC.length);
  preamble.writeUInt32BE(header.byteLength, BACKUP_MAGIC.length + 4);
  const body = Buffer.concat([preamble, header, backup.data]);
  const trailer = createHash("sha256").update(body).digest();
  return Buffer.concat([body, trailer]);
}

/**
 * Parses and checks a backup file's bytes.
 * @throws InvalidArgumentError naming what is wrong (not a backup, another format, damaged).
 */
export function decodeBackup(bytes: Uint8Array, name = "the file"): Backup {
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (why: string): InvalidArgumentError =>
    new InvalidArgumentError(`${name} is not a usable Blixard backup: ${why}`);
  if (
    buffer.byteLength < PREAMBLE_BYTES + SHA256_BYTES ||
    buffer.toString("ascii", 0, BACKUP_MAGIC.length) !== BACKUP_MAGIC
  ) {
    throw bad("it does not start with the backup magic");
  }
  const format = buffer.readUInt32BE(BACKUP_MAGIC.length);
  if (format !== BACKUP_FORMAT_VERSION) {
    throw bad(`format ${format}; this version reads format ${BACKUP_FORMAT_VERSION}`);
  }
  const headerBytes = buffer.readUInt32BE(BACKUP_MAGIC.length + 4);
  if (
    headerBytes > MAX_HEADER_BYTES ||
    PREAMBLE_BYTES + headerBytes + SHA256_BYTES > buffer.byteLength
  ) {
    throw bad(`a header of ${headerBytes} bytes does not fit (the file is cut short?)`);
  }
  const bodyEnd = buffer.byteLength - SHA256_BYTES;
  const trailer = createHash("sha256").update(buffer.subarray(0, bodyEnd)).digest();
  if (!trailer.equals(buffer.subarray(bodyEnd))) {
    throw bad("its checksum does not match (the file is damaged or cut short)");
  }
  let header: BackupHeader;
  try {
    header = JSON.parse(
      buffer.toString("utf8", PREAMBLE_BYTES, PREAMBLE_BYTES + headerBytes),
    ) as BackupHeader;
  } catch {
    throw bad("its header is not JSON");
  }
  checkHeader(header, bad);
  const data = buffer.subarray(PREAMBLE_BYTES + headerBytes, bodyEnd);
  if (data.byteLength !== header.dataBytes) {
    throw bad(`it holds ${data.byteLength} bytes of data, its header says ${header.dataBytes}`);
  }
  if (createHash("sha256").update(data).digest("hex") !== header.dataSha256) {
    throw bad("the data's SHA-256 differs from the one its header records");
  }
  return { header, data: new Uint8Array(data) };
}

function checkHeader(
  header: BackupHeader,
  bad: (why: string) => InvalidArgumentError,
): asserts header is BackupHeader {
  const h: Readonly<Record<string, unknown>> = { ...header };
  const counts = ["index", "term", "takenBy", "dataBytes"] as const;
  for (const field of counts) {
    if (!Number.isSafeInteger(h[field]) || (h[field] as number) < 0) {
      throw bad(`header field ${field} is not a non-negative integer`);
    }
  }
  for (const field of ["clusterId", "version", "createdAt", "dataSha256"] as const) {
    if (typeof h[field] !== "string") throw bad(`header field ${field} is not a string`);
  }
  if (!Array.isArray(h["members"])) throw bad("header field members is not a list");
}

/**
 * Writes a backup to `path` atomically: a temporary file beside it, flushed, then renamed, with
 * mode 0600 (it holds every key and every token's hash).
 */
export async function writeBackupFile(path: string, backup: Backup): Promise<number> {
  const bytes = encodeBackup(backup);
  const temporary = `${path}.partial`;
  const file = await open(temporary, "w", 0o600);
  try {
    await file.writeFile(bytes);
    await file.sync();
  } catch (error) {
    await file.close();
    await rm(temporary, { force: true });
    throw error;
  }
  await file.close();
  await rename(temporary, path);
  return bytes.byteLength;
}

/** Reads and checks the backup at `path`. @throws InvalidArgumentError (see {@link decodeBackup}). */
export async function readBackupFile(path: string): Promise<Backup> {
  let bytes: Uint8Array;
  try {
    bytes = await readFile(path);
  } catch (error) {
    throw new InvalidArgumentError(
      `cannot read ${path}: ${(error as NodeJS.ErrnoException).code ?? (error as Error).message}`,
    );
  }
  return decodeBackup(bytes, path);
}
