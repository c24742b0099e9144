/**
 * The key-value results' binary encoding, used to keep results in client sessions and in
 * snapshots (versioned by the snapshot format). Big-endian, see `codec/binary.ts`:
 *
 * | result | encoding                                                           |
 * | ------ | ------------------------------------------------------------------ |
 * | (all)  | op u8: 1 get, 2 put, 3 delete, 4 compare-and-set                   |
 * | get    | revision u53, has-entry bool, entry?                               |
 * | put    | revision u53, has-previous bool, entry?                            |
 * | delete | deleted bool, revision u53, has-previous bool, entry?              |
 * | cas    | succeeded bool, revision u53; if it failed: has-current bool, entry? |
 *
 * An entry is its key (u32 length + UTF-8), value (u32 length + bytes), createRevision,
 * modRevision and version (u53 each).
 */
import { ByteReader, ByteWriter } from "../codec/binary.js";
import { validateKey } from "./command-codec.js";
import { MAX_VALUE_BYTES } from "./limits.js";
import type { KvEntry, KvResult } from "./types.js";

const OP_GET = 1;
const OP_PUT = 2;
const OP_DELETE = 3;
const OP_CAS = 4;

/** Writes an entry: key, value, createRevision, modRevision, version. Throws nothing for a valid entry. */
export function writeEntry(writer: ByteWriter, entry: KvEntry): void {
  writer
    .string(entry.key)
    .bytes(entry.value)
    .u53(entry.createRevision)
    .u53(entry.modRevision)
    .u53(entry.version);
}

function writeOptionalEntry(writer: ByteWriter, entry: KvEntry | null | undefined): void {
  writer.bool(entry !== null && entry !== undefined);
  if (entry !== null && entry !== undefined) writeEntry(writer, entry);
}

/**
 * Reads an entry and checks it is plausible: a valid key, a value within limits, and
 * `1 ≤ createRevision ≤ modRevision`, `version ≥ 1`. Throws `InvalidArgumentError` if not.
 */
export function readEntry(reader: ByteReader): KvEntry {
  const key = reader.string();
  try {
    validateKey(key);
  } catch (error) {
    throw reader.malformed(`bad key: ${(error as Error).message}`);
  }
  const value = reader.bytes();
  if (value.length > MAX_VALUE_BYTES) throw reader.malformed(`value of ${value.length} bytes`);
  const createRevision = reader.u53();
  const modRevision = reader.u53();
  const version = reader.u53();
  if (createRevision < 1 || modRevision < createRevision || version < 1) {
    throw reader.malformed(
      `entry ${key} has createRevision ${createRevision}, modRevision ${modRevision}, version ${version}`,
    );
  }
  return { key, value, createRevision, modRevision, version };
}

function readOptionalEntry(reader: ByteReader): KvEntry | null {
  return reader.bool() ? readEntry(reader) : null;
}

/** Encodes a result deterministically. Throws nothing for a result the store produced. */
export function encodeKvResult(result: KvResult): Uint8Array {
  const writer = new ByteWriter(64);
  switch (result.op) {
    case "get":
      writer.u8(OP_GET).u53(result.revision);
      writeOptionalEntry(writer, result.entry);
      break;
    case "put":
      writer.u8(OP_PUT).u53(result.revision);
      writeOptionalEntry(writer, result.previous);
      break;
    case "delete":
      writer.u8(OP_DELETE).bool(result.deleted).u53(result.revision);
      writeOptionalEntry(writer, result.previous);
      break;
    case "cas":
      writer.u8(OP_CAS).bool(result.succeeded).u53(result.revision);
      if (!result.succeeded) writeOptionalEntry(writer, result.current);
      break;
  }
  return writer.finish();
}

/** Decodes {@link encodeKvResult}'s bytes into an equal result. Throws `InvalidArgumentError` if malformed. */
export function decodeKvResult(bytes: Uint8Array): KvResult {
  const reader = new ByteReader(bytes, "kv result");
  const op = reader.u8();
  let result: KvResult;
  switch (op) {
    case OP_GET: {
      const revision = reader.u53();
      result = { op: "get", revision, entry: readOptionalEntry(reader) };
      break;
    }
    case OP_PUT: {
      const revision = reader.u53();
      const previous = readOptionalEntry(reader);
      result = previous === null ? { op: "put", revision } : { op: "put", revision, previous };
      break;
    }
    case OP_DELETE: {
      const deleted = reader.bool();
      const revision = reader.u53();
      const previous = readOptionalEntry(reader);
      result =
        previous === null
          ? { op: "delete", deleted, revision }
          : { op: "delete", deleted, revision, previous };
      break;
    }
    case OP_CAS: {
      const succeeded = reader.bool();
      const revision = reader.u53();
      result = succeeded
        ? { op: "cas", succeeded, revision }
        : { op: "cas", succeeded, revision, current: readOptionalEntry(reader) };
      break;
    }
    default:
      throw reader.malformed(`unknown op ${op}`);
  }
  reader.expectEnd();
  return result;
}
