/**
 * The command namespaces a proposer can write to, as data the command port (`node/command-port.ts`)
 * takes: each names itself (the `namespace` label of the proposal metrics), encodes its commands
 * (the first byte is the namespace byte of `namespace.ts`) and types the value its `apply` answers
 * with. Adding a namespace to the cluster state machine adds one descriptor here.
 */
import { encodeAclCommand } from "../acl/codec.js";
import type { AclCommand, AclResult } from "../acl/types.js";
import type { ByteWriter } from "../codec/binary.js";
import { encodeKvCommand, measureKvCommand, writeKvCommand } from "../kv/command-codec.js";
import type { KvCommand, KvResult } from "../kv/types.js";
import { encodeOrchestratorCommand } from "../orchestrator/command-codec.js";
import type { OrchestratorCommand, OrchestratorResult } from "../orchestrator/commands.js";

/** How a proposer writes commands of type `C` whose applied results are of type `R`. */
export interface CommandNamespace<C, R> {
  /** Its name in metrics and messages (`kv`, `orchestrator`, …): a label, never on the wire. */
  readonly name: string;
  /**
   * The command's payload bytes, namespace byte first. Validates the command: throws
   * `InvalidArgumentError` or `TooLargeError`, so bad input never reaches the log.
   */
  encode(command: C): Uint8Array;
  /**
   * The same encoding written into a writer of the proposer's (the envelope's), for the
   * namespaces whose commands are many and large (kv): a proposal is then one array, not a
   * payload array copied into an envelope array. Without it the proposer copies `encode`'s.
   */
  readonly payload?: PayloadWriter<C>;
  /**
   * The applied value as this namespace's result. The state machine answers a command of a
   * namespace with that namespace's result, so this only names the type. Throws nothing.
   */
  result(value: unknown): R;
}

/** Writes a namespace's payloads into a writer of the caller's; see {@link CommandNamespace.payload}. */
export interface PayloadWriter<C> {
  /**
   * Validates `command` as `encode` does (same errors) and returns its encoding's size in bytes:
   * exact where it matters (the writer is then the entry, uncopied), else an estimate.
   */
  measure(command: C): number;
  /** Appends the encoding of a command `measure` accepted. Throws nothing. */
  write(writer: ByteWriter, command: C): void;
}

/** Key-value commands (namespace byte 0x01). */
export const KV_COMMANDS: CommandNamespace<KvCommand, KvResult> = Object.freeze({
  name: "kv",
  encode: encodeKvCommand,
  payload: Object.freeze({ measure: measureKvCommand, write: writeKvCommand }),
  result: (value: unknown) => value as KvResult,
});

/**
 * Lease commands (grant, revoke): kv commands on the wire (byte 0x01), counted apart in the
 * metrics because their load and failures are the lessor's and the lock clients', not the kv
 * users'.
 */
export const LEASE_COMMANDS: CommandNamespace<KvCommand, KvResult> = Object.freeze({
  ...KV_COMMANDS,
  name: "lease",
});

/** Multi-key transactions: kv commands on the wire (byte 0x01), counted apart in the metrics. */
export const TXN_COMMANDS: CommandNamespace<KvCommand, KvResult> = Object.freeze({
  ...KV_COMMANDS,
  name: "txn",
});

/** Orchestrator commands (namespace byte 0x10). */
export const ORCHESTRATOR_COMMANDS: CommandNamespace<OrchestratorCommand, OrchestratorResult> =
  Object.freeze({
    name: "orchestrator",
    encode: encodeOrchestratorCommand,
    result: (value: unknown) => value as OrchestratorResult,
  });

/** ACL commands (namespace byte 0x20). */
export const ACL_COMMANDS: CommandNamespace<AclCommand, AclResult> = Object.freeze({
  name: "acl",
  encode: encodeAclCommand,
  result: (value: unknown) => value as AclResult,
});
