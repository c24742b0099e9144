/**
 * Whether a node keeps what a driver stored for a VM (its disk), by one rule for both kinds of
 * workers: a server's agent applies it to its own applied model; a server applies it for an
 * agent-only worker, whose view holds only the VMs placed on it (`POST /v1/agent/disks`).
 *
 * - `deleted`: the cluster has no such VM.
 * - `elsewhere`: the VM's current disk is on another node (`diskNodeId`; for a VM that never
 *   reported one, the node it is placed on), so this copy is stale and never used again: a VM
 *   placed back here boots on a fresh disk.
 * - `keep`: the VM is placed here, is arriving here (a migration's target), or its current disk
 *   is here.
 */
import type { NodeId } from "../../raft/types.js";
import type { Vm } from "../../statemachine/orchestrator/types.js";

/** Most VM names one disk lookup asks about (`POST /v1/agent/disks`). */
export const MAX_DISK_LOOKUP_NAMES = 256;

/** What a node does with its stored disk of a VM. */
export type DiskVerdict = "keep" | "deleted" | "elsewhere";

/** The verdict on node `nodeId`'s stored disk of `vm` (undefined: no such VM). Throws nothing. */
export function diskVerdict(vm: Vm | undefined, nodeId: NodeId): DiskVerdict {
  if (vm === undefined) return "deleted";
  if (vm.nodeId === nodeId || vm.migration?.targetNodeId === nodeId) return "keep";
  const home = vm.diskNodeId ?? vm.nodeId ?? null;
  return home !== null && home !== nodeId ? "elsewhere" : "keep";
}
