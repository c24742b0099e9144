/**
 * The orchestrator commands' encoding: one format byte, {@link ORCHESTRATOR_COMMAND_FORMAT}
 * (0x10), then the command as canonical JSON in UTF-8. JSON because these commands are small and
 * rare next to kv writes, and readable in a log dump; canonical because the reader rebuilds every
 * command with its keys in one fixed order (environment names sorted) before `JSON.stringify`.
 *
 * The format byte doubles as the namespace byte of the cluster state machine (see
 * `src/statemachine/cluster/namespace.ts`): kv commands start with their own format byte 0x01.
 */
import { TooLargeError } from "../../common/index.js";
import { ByteReader } from "../codec/binary.js";
import { readOrchestratorCommand } from "./command-reader.js";
import type { OrchestratorCommand } from "./commands.js";
import { decodeJson, encodeJson } from "./json-bytes.js";
import { MAX_COMMAND_BYTES } from "./limits.js";

/** The first byte of every orchestrator command: format 1 of the orchestrator namespace. */
export const ORCHESTRATOR_COMMAND_FORMAT = 0x10;

/**
 * Encodes a command for a proposal (wrap it in a command envelope). Validates it first: throws
 * `InvalidArgumentError` or `TooLargeError` as {@link readOrchestratorCommand} does, and
 * `TooLargeError` if the encoding exceeds {@link MAX_COMMAND_BYTES}.
 */
export function encodeOrchestratorCommand(command: OrchestratorCommand): Uint8Array {
  const json = encodeJson(readOrchestratorCommand(command));
  if (json.length + 1 > MAX_COMMAND_BYTES) {
    throw new TooLargeError(
      `the ${command.type} command encodes to ${json.length + 1} bytes; the limit is ${MAX_COMMAND_BYTES} bytes`,
    );
  }
  const bytes = new Uint8Array(json.length + 1);
  bytes[0] = ORCHESTRATOR_COMMAND_FORMAT;
  bytes.set(json, 1);
  return bytes;
}

/**
 * Decodes and validates a command. Throws `InvalidArgumentError` (wrong format byte, bad UTF-8
 * or JSON, any field wrong) or `TooLargeError` (over {@link MAX_COMMAND_BYTES} or a field over
 * its limit); never anything else.
 */
export function decodeOrchestratorCommand(bytes: Uint8Array): OrchestratorCommand {
  if (bytes.length > MAX_COMMAND_BYTES) {
    throw new TooLargeError(
      `orchestrator command is ${bytes.length} bytes; the limit is ${MAX_COMMAND_BYTES} bytes`,
    );
  }
  const reader = new ByteReader(bytes, "orchestrator command");
  const format = reader.u8();
  if (format !== ORCHESTRATOR_COMMAND_FORMAT) {
    throw reader.malformed(
      `unknown format byte 0x${format.toString(16)}; this node reads 0x${ORCHESTRATOR_COMMAND_FORMAT.toString(16)}`,
    );
  }
  return readOrchestratorCommand(decodeJson(reader.rest(), "orchestrator command"));
}
