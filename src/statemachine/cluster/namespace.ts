/**
 * The namespaces of the cluster state machine: one Raft group holds the kv store and the
 * orchestrator model, and the first byte of each command payload says which one a command is for
 * and in which format. Each namespace's codec writes its own byte, so a kv command is exactly
 * what `encodeKvCommand` returns and an orchestrator command what `encodeOrchestratorCommand`
 * returns.
 *
 * | first byte  | what follows                                                   |
 * | ----------- | -------------------------------------------------------------- |
 * | 0x00        | refused (never a format)                                       |
 * | 0x01        | a kv command, binary format 1 (`kv/command-codec.ts`)          |
 * | 0x02 – 0x0f | reserved for later kv formats; refused today                   |
 * | 0x10        | an orchestrator command, JSON format 1 (`orchestrator/command-codec.ts`) |
 * | 0x11 – 0x1f | reserved for later orchestrator formats; refused today         |
 * | 0x20        | an ACL command, JSON format 1 (`acl/codec.ts`)                 |
 * | 0x21 – 0x2f | reserved for later ACL formats; refused today                  |
 * | 0x30 – 0xef | refused                                                        |
 * | 0xf0        | never seen here: the runtime's envelope of a proposal a follower forwarded, removed before `apply` (`node/forwarded-proposal.ts`) |
 * | 0xf1 – 0xff | refused                                                        |
 *
 * Results kept in client sessions and snapshots carry the same byte as a tag in front of the
 * namespace's own result encoding (kv results do not start with a format byte of their own).
 */
import { KV_COMMAND_FORMAT_VERSION } from "../kv/command-codec.js";
import { ORCHESTRATOR_COMMAND_FORMAT } from "../orchestrator/command-codec.js";
import { ACL_COMMAND_FORMAT } from "../acl/codec.js";

/** A namespace of the cluster state machine. */
export type ClusterNamespace = "kv" | "orchestrator" | "acl";

/** The first byte of kv commands and the tag of kv results. */
export const KV_NAMESPACE_BYTE = KV_COMMAND_FORMAT_VERSION;

/** The first byte of orchestrator commands and the tag of orchestrator results. */
export const ORCHESTRATOR_NAMESPACE_BYTE = ORCHESTRATOR_COMMAND_FORMAT;

/** The first byte of ACL commands and the tag of ACL results. */
export const ACL_NAMESPACE_BYTE = ACL_COMMAND_FORMAT;

/** The namespace a first byte names, or undefined for a refused byte. Throws nothing. */
export function namespaceOfByte(byte: number): ClusterNamespace | undefined {
  if (byte === KV_NAMESPACE_BYTE) return "kv";
  if (byte === ORCHESTRATOR_NAMESPACE_BYTE) return "orchestrator";
  if (byte === ACL_NAMESPACE_BYTE) return "acl";
  return undefined;
}

/** What an unknown first byte means, for the error message. Throws nothing. */
export function describeUnknownByte(byte: number): string {
  const hex = `0x${byte.toString(16).padStart(2, "0")}`;
  const known = `this node reads 0x01 (kv), 0x10 (orchestrator) and 0x20 (ACL)`;
  if (byte >= 0x02 && byte <= 0x0f)
    return `${hex} is a kv format this node does not know; ${known}`;
  if (byte >= 0x11 && byte <= 0x1f) {
    return `${hex} is an orchestrator format this node does not know; ${known}`;
  }
  if (byte >= 0x21 && byte <= 0x2f)
    return `${hex} is an ACL format this node does not know; ${known}`;
  return `${hex} names no namespace; ${known}`;
}
