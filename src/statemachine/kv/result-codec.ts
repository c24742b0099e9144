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
 * | txn    | succeeded bool, revision u53, u16 count + op results                |
 * | lease grant  | id u53, ttlMs u53                                             |
 * | lease revoke | revoked u32, deletedKeys u32, revision u53                    |
 *
 * A txn op result is kind u8 (1 get: has-entry bool, entry?; 2 put: revision u53; 3 delete:
 * deleted bool).
 *
 * An entry is its key (u32 length + UTF-8), value (u32 length + bytes), createRevision,
 * modRevision and version (u53 each).
 */
import { ByteReader, ByteWriter } from "../codec/binary.js";
import { validateKey } from "./command-codec.js";
import { MAX_VALUE_BYTES } from "./limits.js";
import type { KvEntry, KvResult, KvTxnOpResult } from "./types.js";

const OP_GET = 1;
const OP_PUT = 2;
const OP_DELETE = 3;
const OP_CAS = 4;
const OP_TXN = 5;
const OP_LEASE_GRANT = 6;
const OP_LEASE_REVOKE = 7;

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
 * The value is a copy unless `value` is `"view"` (see {@link ByteReader.bytesView}).
 */
export function readEntry(reader: ByteReader, value: "copy" | "view" = "copy"): KvEntry {
  const key = reader.string();
  try {
    validateKey(key);
  } catch (error) {
    throw reader.malformed(`bad key: ${(error as Error).message}`);
  }
  const bytes = value === "view" ? reader.bytesView() : reader.bytes();
  if (bytes.length > MAX_VALUE_BYTES) throw reader.malformed(`value of ${bytes.length} bytes`);
  const createRevision = reader.u53();
  const modRevision = reader.u53();
  const version = reader.u53();
  if (createRevision < 1 || modRevision < createRevision || version < 1) {
    throw reader.malformed(
      `entry ${key} has createRevision ${createRevision}, modRevision ${modRevision}, version ${version}`,
    );
  }
  return { key, value: bytes, createRevision, modRevision, version };
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
    case "txn":
      writer.u8(OP_TXN).bool(result.succeeded).u53(result.revision).u16(result.results.length);
      for (const r of result.results) {
        switch (r.op) {
          case "get":
            writer.u8(OP_GET);
            writeOptionalEntry(writer, r.entry);
            break;
          case "put":
            writer.u8(OP_PUT).u53(r.revision);
            break;
          case "delete":
            writer.u8(OP_DELETE).bool(r.deleted);
            break;
        }
      }
      break;
    case "leaseGrant":
      writer.u8(OP_LEASE_GRANT).u53(result.id).u53(result.ttlMs);
      break;
    case "leaseRevoke":
      writer.u8(OP_LEASE_REVOKE).u32(result.revoked).u32(result.deletedKeys).u53(result.revision);
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
    case OP_TXN: {
      const succeeded = reader.bool();
      const revision = reader.u53();
      const count = reader.u16();
      const results: KvTxnOpResult[] = [];
      for (let i = 0; i < count; i++) results.push(readTxnOpResult(reader));
      result = { op: "txn", succeeded, revision, results };
      break;
    }
    case OP_LEASE_GRANT: {
      const id = reader.u53();
      result = { op: "leaseGrant", id, ttlMs: reader.u53() };
      break;
    }
    case OP_LEASE_REVOKE: {
      const revoked = reader.u32();
      const deletedKeys = reader.u32();
      result = { op: "leaseRevoke", revoked, deletedKeys, revision: reader.u53() };
      break;
    }
    default:
      throw reader.malformed(`unknown op ${op}`);
  }
  reader.expectEnd();
  return result;
}

function readTxnOpResult(reader: ByteReader): KvTxnOpResult {
  const kind = reader.u8();
  switch (kind) {
    case OP_GET:
      return { op: "get", entry: readOptionalEntry(reader) };
    case OP_PUT:
      return { op: "put", revision: reader.u53() };
    case OP_DELETE:
      return { op: "delete", deleted: reader.bool() };
    default:
      throw reader.malformed(`unknown txn op result ${kind}`);
  }
}
