/**
 * The ACL namespace's encodings. A command is one format byte, {@link ACL_COMMAND_FORMAT}
 * (0x20, also the namespace byte of the cluster state machine), then canonical JSON in UTF-8 (as
 * the orchestrator's: rare, small, readable in a log dump). A result is canonical JSON.
 */
import { TooLargeError } from "../../common/index.js";
import { ByteReader } from "../codec/binary.js";
import { asMalformed, decodeJson, encodeJson } from "../orchestrator/json-bytes.js";
import { MAX_ACL_COMMAND_BYTES } from "./limits.js";
import { readAclCommand, readAclResult } from "./reader.js";
import type { AclCommand, AclResult } from "./types.js";

/** The first byte of every ACL command: format 1 of the ACL namespace. */
export const ACL_COMMAND_FORMAT = 0x20;

/**
 * Encodes a command for a proposal (wrap it in a command envelope). Validates it first:
 * `InvalidArgumentError` or `TooLargeError` naming the field.
 */
export function encodeAclCommand(command: AclCommand): Uint8Array {
  const json = encodeJson(readAclCommand(command));
  if (json.length + 1 > MAX_ACL_COMMAND_BYTES) {
    throw new TooLargeError(
      `the ${command.type} command encodes to ${json.length + 1} bytes; the limit is ${MAX_ACL_COMMAND_BYTES} bytes`,
    );
  }
  const bytes = new Uint8Array(json.length + 1);
  bytes[0] = ACL_COMMAND_FORMAT;
  bytes.set(json, 1);
  return bytes;
}

/**
 * Decodes and validates a command. Throws `InvalidArgumentError` (wrong format byte, bad UTF-8
 * or JSON, any field wrong) or `TooLargeError`; never anything else.
 */
export function decodeAclCommand(bytes: Uint8Array): AclCommand {
  if (bytes.length > MAX_ACL_COMMAND_BYTES) {
    throw new TooLargeError(
      `ACL command is ${bytes.length} bytes; the limit is ${MAX_ACL_COMMAND_BYTES} bytes`,
    );
  }
  const reader = new ByteReader(bytes, "ACL command");
  const format = reader.u8();
  if (format !== ACL_COMMAND_FORMAT) {
    throw reader.malformed(
      `unknown format byte 0x${format.toString(16)}; this node reads 0x${ACL_COMMAND_FORMAT.toString(16)}`,
    );
  }
  return readAclCommand(decodeJson(reader.rest(), "ACL command"));
}

/** Encodes a result the state returned, canonically. Throws nothing for such a result. */
export function encodeAclResult(result: AclResult): Uint8Array {
  return encodeJson(readAclResult(result));
}

/** Decodes {@link encodeAclResult}'s bytes. Throws `InvalidArgumentError` if malformed. */
export function decodeAclResult(bytes: Uint8Array): AclResult {
  return asMalformed(() => readAclResult(decodeJson(bytes, "ACL result")));
}
