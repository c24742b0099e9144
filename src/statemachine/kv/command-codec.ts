/**
 * The key-value commands' binary encoding (big-endian; see `codec/binary.ts`). Values are raw
 * bytes, so a binary format avoids base64's third more bytes and its second parser.
 *
 * | field          | encoding                                                            |
 * | -------------- | ------------------------------------------------------------------- |
 * | format version | u8, {@link KV_COMMAND_FORMAT_VERSION}                               |
 * | op             | u8: 1 get, 2 put, 3 delete, 4 compare-and-set                       |
 * | get            | key                                                                 |
 * | put            | flags u8 (bit 0: returnPrevious), key, value                        |
 * | delete         | flags u8 (bit 0: returnPrevious), key                               |
 * | compare-and-set| key, expectation u8 (0 absent, 1 modRevision + u53, 2 value + bytes), value |
 *
 * Keys are u32 length + UTF-8; values are u32 length + bytes. Unknown versions, ops, flag bits or
 * expectation kinds, truncation, trailing bytes and invalid UTF-8 are malformed.
 */
import { InvalidArgumentError, TooLargeError } from "../../common/index.js";
import { ByteReader, ByteWriter } from "../codec/binary.js";
import { utf8ByteLength } from "../codec/utf8.js";
import { MAX_KEY_BYTES, MAX_VALUE_BYTES } from "./limits.js";
import type { KvCommand, KvExpectation } from "./types.js";

/** The command format this code writes and reads. */
export const KV_COMMAND_FORMAT_VERSION = 1;

const OP_GET = 1;
const OP_PUT = 2;
const OP_DELETE = 3;
const OP_CAS = 4;
const FLAG_RETURN_PREVIOUS = 0b0000_0001;
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

/**
 * Checks a command against the store's limits. Throws `InvalidArgumentError` (bad shape, empty
 * key, bad revision) or `TooLargeError` (key over {@link MAX_KEY_BYTES}, value over
 * {@link MAX_VALUE_BYTES}).
 */
export function validateKvCommand(command: KvCommand): void {
  validateKey(command.key);
  switch (command.op) {
    case "get":
      return;
    case "put":
      validateValue(command.value, "value");
      validateReturnPrevious(command.returnPrevious);
      return;
    case "delete":
      validateReturnPrevious(command.returnPrevious);
      return;
    case "cas":
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
  validateKvCommand(command);
  const writer = new ByteWriter(64 + ("value" in command ? command.value.length : 0));
  writer.u8(KV_COMMAND_FORMAT_VERSION);
  switch (command.op) {
    case "get":
      writer.u8(OP_GET).string(command.key);
      break;
    case "put":
      writer
        .u8(OP_PUT)
        .u8(command.returnPrevious === true ? FLAG_RETURN_PREVIOUS : 0)
        .string(command.key)
        .bytes(command.value);
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
  return writer.finish();
}

function readFlags(reader: ByteReader): boolean {
  const flags = reader.u8();
  if ((flags & ~FLAG_RETURN_PREVIOUS) !== 0) {
    throw reader.malformed(`unknown flags 0x${flags.toString(16)}`);
  }
  return (flags & FLAG_RETURN_PREVIOUS) !== 0;
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
 * Decodes and validates a command; its byte arrays are fresh copies. A false `returnPrevious`
 * is omitted. Throws `InvalidArgumentError` on malformed bytes, `TooLargeError` on a key or
 * value over its limit.
 */
export function decodeKvCommand(bytes: Uint8Array): KvCommand {
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
      const returnPrevious = readFlags(reader);
      const key = reader.string();
      const value = reader.bytes();
      command = returnPrevious
        ? { op: "put", key, value, returnPrevious }
        : { op: "put", key, value };
      break;
    }
    case OP_DELETE: {
      const returnPrevious = readFlags(reader);
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
