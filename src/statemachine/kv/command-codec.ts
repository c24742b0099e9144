/**
 * The key-value commands' binary encoding (big-endian; see `codec/binary.ts`). Values are raw
 * bytes, so a binary format avoids base64's third more bytes and its second parser.
 *
 * | field          | encoding                                                            |
 * | -------------- | ------------------------------------------------------------------- |
 * | format version | u8, {@link KV_COMMAND_FORMAT_VERSION}                               |
 * | op             | u8: 1 get, 2 put, 3 delete, 4 compare-and-set, 5 txn, 6 lease grant, 7 lease revoke |
 * | get            | key                                                                 |
 * | put            | flags u8 (bit 0: returnPrevious, bit 1: lease), key, value, lease u53 if bit 1 |
 * | delete         | flags u8 (bit 0: returnPrevious), key                               |
 * | compare-and-set| key, expectation u8 (0 absent, 1 modRevision + u53, 2 value + bytes), value |
 * | txn            | u16 count + compares, u16 count + success ops, u16 count + failure ops |
 * | lease grant    | ttlMs u53                                                           |
 * | lease revoke   | u16 count + lease ids (u53 each)                                    |
 *
 * A txn compare is key, target u8 (0 value, 1 version, 2 createRevision, 3 modRevision, 4 lease),
 * operator u8 (0 equal, 1 notEqual, 2 less, 3 greater), then the operand: bytes for a value, u53
 * otherwise. A txn op is kind u8 (1 get, 2 put, 3 delete), key, and for a put: value, flags u8
 * (bit 0: lease), lease u53 if set.
 *
 * Keys are u32 length + UTF-8; values are u32 length + bytes. Unknown versions, ops, flag bits or
 * expectation kinds, truncation, trailing bytes and invalid UTF-8 are malformed.
 */
import { InvalidArgumentError, TooLargeError } from "../../common/index.js";
import { ByteReader, ByteWriter } from "../codec/binary.js";
import { utf8ByteLength } from "../codec/utf8.js";
import {
  MAX_KEY_BYTES,
  MAX_LEASE_IDS_PER_REVOKE,
  MAX_LEASE_TTL_MS,
  MAX_TXN_COMPARES,
  MAX_TXN_OPS,
  MAX_VALUE_BYTES,
  MIN_LEASE_TTL_MS,
} from "./limits.js";
import type {
  KvCommand,
  KvCompare,
  KvCompareOperator,
  KvCompareTarget,
  KvExpectation,
  KvTxnOp,
} from "./types.js";

/** The command format this code writes and reads. */
export const KV_COMMAND_FORMAT_VERSION = 1;

const OP_GET = 1;
const OP_PUT = 2;
const OP_DELETE = 3;
const OP_CAS = 4;
const OP_TXN = 5;
const OP_LEASE_GRANT = 6;
const OP_LEASE_REVOKE = 7;
const FLAG_RETURN_PREVIOUS = 0b0000_0001;
const FLAG_LEASE = 0b0000_0010;
const TXN_OP_GET = 1;
const TXN_OP_PUT = 2;
const TXN_OP_DELETE = 3;
const TXN_FLAG_LEASE = 0b0000_0001;
const COMPARE_TARGETS: readonly KvCompareTarget[] = [
  "value",
  "version",
  "createRevision",
  "modRevision",
  "lease",
];
const COMPARE_OPERATORS: readonly KvCompareOperator[] = ["equal", "notEqual", "less", "greater"];
const EXPECT_ABSENT = 0;
const EXPECT_MOD_REVISION = 1;
const EXPECT_VALUE = 2;

/**
 * Checks a key: a non-empty, well-formed string of at most {@link MAX_KEY_BYTES} UTF-8 bytes.
 * Throws `InvalidArgumentError` (empty, not a string, lone surrogate) or `TooLargeError`.
 */
export function validateKey(key: string): void {
  if (typeof key !== "string") throw new InvalidArgumentError("key must be a string");
  const keyBytes = utf8ByteLength(key);
  if (keyBytes === undefined) throw new InvalidArgumentError("key is not well-formed Unicode");
  if (keyBytes === 0) throw new InvalidArgumentError("key must not be empty");
  if (keyBytes > MAX_KEY_BYTES) {
    throw new TooLargeError(`key is ${keyBytes} bytes; the limit is ${MAX_KEY_BYTES} bytes`);
  }
}

function validateValue(value: Uint8Array, what: string): void {
  if (!(value instanceof Uint8Array))
    throw new InvalidArgumentError(`${what} must be a Uint8Array`);
  if (value.length > MAX_VALUE_BYTES) {
    throw new TooLargeError(
      `${what} is ${value.length} bytes; the limit is ${MAX_VALUE_BYTES} bytes`,
    );
  }
}

function validateReturnPrevious(returnPrevious: unknown): void {
  if (returnPrevious !== undefined && typeof returnPrevious !== "boolean") {
    throw new InvalidArgumentError("returnPrevious must be a boolean");
  }
}

function validateExpectation(expected: KvExpectation): void {
  switch (expected.kind) {
    case "absent":
      return;
    case "modRevision":
      if (!Number.isSafeInteger(expected.modRevision) || expected.modRevision < 1) {
        throw new InvalidArgumentError(
          `expected modRevision must be a safe integer ≥ 1, got ${expected.modRevision}`,
        );
      }
      return;
    case "value":
      validateValue(expected.value, "expected value");
      return;
    default:
      throw new InvalidArgumentError(
        `unknown expectation kind ${String((expected as { kind: unknown }).kind)}`,
      );
  }
}

function validateLeaseId(id: unknown, what: string): void {
  if (typeof id !== "number" || !Number.isSafeInteger(id) || id < 1) {
    throw new InvalidArgumentError(`${what} must be a safe integer ≥ 1, got ${String(id)}`);
  }
}

function validateCompare(compare: KvCompare): void {
  validateKey(compare.key);
  if (!COMPARE_TARGETS.includes(compare.target)) {
    throw new InvalidArgumentError(`unknown compare target ${String(compare.target)}`);
  }
  if (!COMPARE_OPERATORS.includes(compare.operator)) {
    throw new InvalidArgumentError(`unknown compare operator ${String(compare.operator)}`);
  }
  if (compare.target === "value") {
    validateValue(compare.value, "compare value");
  } else if (!Number.isSafeInteger(compare.number) || compare.number < 0) {
    throw new InvalidArgumentError(
      `compare ${compare.target} must be a safe integer ≥ 0, got ${compare.number}`,
    );
  }
}

function validateTxnBranch(ops: readonly KvTxnOp[], branch: string): void {
  if (!Array.isArray(ops)) throw new InvalidArgumentError(`txn ${branch} must be a list of ops`);
  if (ops.length > MAX_TXN_OPS) {
    throw new TooLargeError(
      `txn ${branch} has ${ops.length} ops; the limit is ${MAX_TXN_OPS} per branch`,
    );
  }
  const written = new Set<string>();
  for (const op of ops) {
    validateKey(op.key);
    switch (op.op) {
      case "get":
        continue;
      case "put":
        validateValue(op.value, "value");
        if (op.lease !== undefined) validateLeaseId(op.lease, "lease");
        break;
      case "delete":
        break;
      default:
        throw new InvalidArgumentError(`unknown txn op ${String((op as { op: unknown }).op)}`);
    }
    if (written.has(op.key)) {
      throw new InvalidArgumentError(
        `txn ${branch} writes key ${JSON.stringify(op.key)} twice; write each key at most once`,
      );
    }
    written.add(op.key);
  }
}

function validateTxn(
  compare: readonly KvCompare[],
  success: readonly KvTxnOp[],
  failure: readonly KvTxnOp[],
): void {
  if (!Array.isArray(compare)) throw new InvalidArgumentError("txn compare must be a list");
  if (compare.length > MAX_TXN_COMPARES) {
    throw new TooLargeError(`txn has ${compare.length} compares; the limit is ${MAX_TXN_COMPARES}`);
  }
  for (const c of compare) validateCompare(c);
  validateTxnBranch(success, "success");
  validateTxnBranch(failure, "failure");
}

/**
 * Checks a command against the store's limits. Throws `InvalidArgumentError` (bad shape, empty
 * key, bad revision) or `TooLargeError` (key over {@link MAX_KEY_BYTES}, value over
 * {@link MAX_VALUE_BYTES}).
 */
export function validateKvCommand(command: KvCommand): void {
  switch (command.op) {
    case "get":
      validateKey(command.key);
      return;
    case "put":
      validateKey(command.key);
      validateValue(command.value, "value");
      validateReturnPrevious(command.returnPrevious);
      if (command.lease !== undefined) validateLeaseId(command.lease, "lease");
      return;
    case "txn":
      validateTxn(command.compare, command.success, command.failure);
      return;
    case "leaseGrant":
      if (
        !Number.isSafeInteger(command.ttlMs) ||
        command.ttlMs < MIN_LEASE_TTL_MS ||
        command.ttlMs > MAX_LEASE_TTL_MS
      ) {
        throw new InvalidArgumentError(
          `lease ttlMs must be an integer in ${MIN_LEASE_TTL_MS}..${MAX_LEASE_TTL_MS}, got ${command.ttlMs}`,
        );
      }
      return;
    case "leaseRevoke":
      if (!Array.isArray(command.ids) || command.ids.length === 0) {
        throw new InvalidArgumentError("a lease revoke names at least one lease id");
      }
      if (command.ids.length > MAX_LEASE_IDS_PER_REVOKE) {
        throw new TooLargeError(
          `a lease revoke names ${command.ids.length} leases; the limit is ${MAX_LEASE_IDS_PER_REVOKE}`,
        );
      }
      for (const id of command.ids) validateLeaseId(id, "lease id");
      return;
    case "delete":
      validateKey(command.key);
      validateReturnPrevious(command.returnPrevious);
      return;
    case "cas":
      validateKey(command.key);
      validateExpectation(command.expected);
      validateValue(command.value, "value");
      return;
    default:
      throw new InvalidArgumentError(`unknown kv op ${String((command as { op: unknown }).op)}`);
  }
}

/**
 * Encodes a command for a proposal (wrap it in a command envelope). Throws
 * `InvalidArgumentError` or `TooLargeError` if it fails {@link validateKvCommand}.
 */
export function encodeKvCommand(command: KvCommand): Uint8Array {
  const writer = new ByteWriter(measureKvCommand(command));
  writeKvCommand(writer, command);
  return writer.finish();
}

/**
 * Validates `command` as {@link encodeKvCommand} does (same errors) and returns the size of its
 * encoding: a put's exact size (version, op, flags, key, value, lease), so that the array it is
 * written into needs no copy at finish (the hot path of every write); others', an estimate.
 */
export function measureKvCommand(command: KvCommand): number {
  validateKvCommand(command);
  return command.op === "put"
    ? 3 +
        4 +
        (utf8ByteLength(command.key) ?? 0) +
        4 +
        command.value.length +
        (command.lease !== undefined ? 8 : 0)
    : 64 + ("value" in command ? command.value.length : 0);
}

/**
 * Appends the encoding of a command {@link measureKvCommand} accepted to `writer` (an envelope's,
 * so that a proposal's bytes are one array). Throws nothing for a validated command.
 */
export function writeKvCommand(writer: ByteWriter, command: KvCommand): void {
  writer.u8(KV_COMMAND_FORMAT_VERSION);
  switch (command.op) {
    case "get":
      writer.u8(OP_GET).string(command.key);
      break;
    case "put":
      writer
        .u8(OP_PUT)
        .u8(
          (command.returnPrevious === true ? FLAG_RETURN_PREVIOUS : 0) |
            (command.lease !== undefined ? FLAG_LEASE : 0),
        )
        .string(command.key)
        .bytes(command.value);
      if (command.lease !== undefined) writer.u53(command.lease);
      break;
    case "txn":
      writer.u8(OP_TXN).u16(command.compare.length);
      for (const c of command.compare) {
        writer
          .string(c.key)
          .u8(COMPARE_TARGETS.indexOf(c.target))
          .u8(COMPARE_OPERATORS.indexOf(c.operator));
        if (c.target === "value") writer.bytes(c.value);
        else writer.u53(c.number);
      }
      writeTxnOps(writer, command.success);
      writeTxnOps(writer, command.failure);
      break;
    case "leaseGrant":
      writer.u8(OP_LEASE_GRANT).u53(command.ttlMs);
      break;
    case "leaseRevoke":
      writer.u8(OP_LEASE_REVOKE).u16(command.ids.length);
      for (const id of command.ids) writer.u53(id);
      break;
    case "delete":
      writer
        .u8(OP_DELETE)
        .u8(command.returnPrevious === true ? FLAG_RETURN_PREVIOUS : 0)
        .string(command.key);
      break;
    case "cas":
      writer.u8(OP_CAS).string(command.key);
      switch (command.expected.kind) {
        case "absent":
          writer.u8(EXPECT_ABSENT);
          break;
        case "modRevision":
          writer.u8(EXPECT_MOD_REVISION).u53(command.expected.modRevision);
          break;
        case "value":
          writer.u8(EXPECT_VALUE).bytes(command.expected.value);
          break;
      }
      writer.bytes(command.value);
      break;
  }
}

function writeTxnOps(writer: ByteWriter, ops: readonly KvTxnOp[]): void {
  writer.u16(ops.length);
  for (const op of ops) {
    switch (op.op) {
      case "get":
        writer.u8(TXN_OP_GET).string(op.key);
        break;
      case "put":
        writer
          .u8(TXN_OP_PUT)
          .string(op.key)
          .bytes(op.value)
          .u8(op.lease === undefined ? 0 : TXN_FLAG_LEASE);
        if (op.lease !== undefined) writer.u53(op.lease);
        break;
      case "delete":
        writer.u8(TXN_OP_DELETE).string(op.key);
        break;
    }
  }
}

function readTxnOps(reader: ByteReader, values: KvValueMode): KvTxnOp[] {
  const count = reader.u16();
  if (count > MAX_TXN_OPS) throw reader.malformed(`${count} txn ops; the limit is ${MAX_TXN_OPS}`);
  const ops: KvTxnOp[] = [];
  for (let i = 0; i < count; i++) {
    const kind = reader.u8();
    switch (kind) {
      case TXN_OP_GET:
        ops.push({ op: "get", key: reader.string() });
        break;
      case TXN_OP_PUT: {
        const key = reader.string();
        const value = readValue(reader, values);
        const flags = reader.u8();
        if ((flags & ~TXN_FLAG_LEASE) !== 0) {
          throw reader.malformed(`unknown txn put flags 0x${flags.toString(16)}`);
        }
        ops.push(
          (flags & TXN_FLAG_LEASE) !== 0
            ? { op: "put", key, value, lease: reader.u53() }
            : { op: "put", key, value },
        );
        break;
      }
      case TXN_OP_DELETE:
        ops.push({ op: "delete", key: reader.string() });
        break;
      default:
        throw reader.malformed(`unknown txn op ${kind}`);
    }
  }
  return ops;
}

function readCompare(reader: ByteReader): KvCompare {
  const key = reader.string();
  const target = COMPARE_TARGETS[reader.u8()];
  if (target === undefined) throw reader.malformed("unknown compare target");
  const operator = COMPARE_OPERATORS[reader.u8()];
  if (operator === undefined) throw reader.malformed("unknown compare operator");
  return target === "value"
    ? { key, target, operator, value: reader.bytes() }
    : { key, target, operator, number: reader.u53() };
}

function readFlags(reader: ByteReader, allowed = FLAG_RETURN_PREVIOUS): number {
  const flags = reader.u8();
  if ((flags & ~allowed) !== 0) {
    throw reader.malformed(`unknown flags 0x${flags.toString(16)}`);
  }
  return flags;
}

function readExpectation(reader: ByteReader): KvExpectation {
  const kind = reader.u8();
  switch (kind) {
    case EXPECT_ABSENT:
      return { kind: "absent" };
    case EXPECT_MOD_REVISION:
      return { kind: "modRevision", modRevision: reader.u53() };
    case EXPECT_VALUE:
      return { kind: "value", value: reader.bytes() };
    default:
      throw reader.malformed(`unknown expectation kind ${kind}`);
  }
}

/**
 * How {@link decodeKvCommand} hands out the values of puts (alone or in a transaction):
 * - `copy`: fresh copies, for bytes that may change or that hold much else;
 * - `view`: views into the bytes, for bytes that never change and are kept anyway (a restarting
 *   node's log replayed from the segment files it read);
 * - `lean`: for bytes that never change (a log entry): a view where it keeps little else alive
 *   (the value is most of the bytes' buffer, as in an entry of its own), else a copy. A store of
 *   small entries then holds each value once, sharing the memory of the log entry while the log
 *   keeps it, instead of a copy with an allocation of its own.
 */
export type KvValueMode = "copy" | "view" | "lean";

/**
 * What a view may keep alive beyond its value's own bytes before `lean` copies instead: about
 * what a copy costs anyway in allocation overhead, or the value's own size when that is more (a
 * view keeps at most twice its value).
 */
const LEAN_VIEW_SLACK_BYTES = 256;

function readValue(reader: ByteReader, mode: KvValueMode): Uint8Array {
  if (mode === "copy") return reader.bytes();
  const view = reader.bytesView();
  if (mode === "view") return view;
  const kept = view.buffer.byteLength - view.byteLength;
  return kept <= Math.max(LEAN_VIEW_SLACK_BYTES, view.byteLength) ? view : new Uint8Array(view);
}

/**
 * Decodes and validates a command; its byte arrays are fresh copies, except the values of puts,
 * handed out as `options.values` says (default `copy`). A false `returnPrevious` is omitted.
 * Throws `InvalidArgumentError` on malformed bytes, `TooLargeError` on a key or value over its
 * limit.
 */
export function decodeKvCommand(
  bytes: Uint8Array,
  options: { readonly values?: KvValueMode } = {},
): KvCommand {
  const values = options.values ?? "copy";
  const reader = new ByteReader(bytes, "kv command");
  const version = reader.u8();
  if (version !== KV_COMMAND_FORMAT_VERSION) {
    throw reader.malformed(
      `unknown format version ${version}; this node reads version ${KV_COMMAND_FORMAT_VERSION}`,
    );
  }
  const op = reader.u8();
  let command: KvCommand;
  switch (op) {
    case OP_GET:
      command = { op: "get", key: reader.string() };
      break;
    case OP_PUT: {
      const flags = readFlags(reader, FLAG_RETURN_PREVIOUS | FLAG_LEASE);
      const key = reader.string();
      const value = readValue(reader, values);
      command = {
        op: "put",
        key,
        value,
        ...((flags & FLAG_RETURN_PREVIOUS) !== 0 ? { returnPrevious: true } : {}),
        ...((flags & FLAG_LEASE) !== 0 ? { lease: reader.u53() } : {}),
      };
      break;
    }
    case OP_TXN: {
      const compareCount = reader.u16();
      if (compareCount > MAX_TXN_COMPARES) {
        throw reader.malformed(`${compareCount} compares; the limit is ${MAX_TXN_COMPARES}`);
      }
      const compare: KvCompare[] = [];
      for (let i = 0; i < compareCount; i++) compare.push(readCompare(reader));
      const success = readTxnOps(reader, values);
      command = { op: "txn", compare, success, failure: readTxnOps(reader, values) };
      break;
    }
    case OP_LEASE_GRANT:
      command = { op: "leaseGrant", ttlMs: reader.u53() };
      break;
    case OP_LEASE_REVOKE: {
      const count = reader.u16();
      if (count > MAX_LEASE_IDS_PER_REVOKE) {
        throw reader.malformed(`${count} lease ids; the limit is ${MAX_LEASE_IDS_PER_REVOKE}`);
      }
      const ids: number[] = [];
      for (let i = 0; i < count; i++) ids.push(reader.u53());
      command = { op: "leaseRevoke", ids };
      break;
    }
    case OP_DELETE: {
      const returnPrevious = (readFlags(reader) & FLAG_RETURN_PREVIOUS) !== 0;
      const key = reader.string();
      command = returnPrevious ? { op: "delete", key, returnPrevious } : { op: "delete", key };
      break;
    }
    case OP_CAS: {
      const key = reader.string();
      const expected = readExpectation(reader);
      command = { op: "cas", key, expected, value: reader.bytes() };
      break;
    }
    default:
      throw reader.malformed(`unknown op ${op}`);
  }
  reader.expectEnd();
  validateKvCommand(command);
  return command;
}
