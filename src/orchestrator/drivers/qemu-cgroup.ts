/**
 * Each QEMU in a cgroup of its own (`vm-<name>` under the node's groups, see
 * `confine/cgroups.ts`), with the VM's reservation as hard limits: its vCPUs as CPU quota (the
 * scheduler reserved `vcpus × 1000` millicores) and its guest memory plus QEMU's own overhead as
 * memory limit. A runaway guest or QEMU then cannot take more of the host than was placed, and
 * what QEMU leaves behind (a helper that left its process group) is killed with the group.
 *
 * The overhead is QEMU's own memory beside the guest's RAM: its binary, device models and, under
 * TCG, the translation cache, which grows with the code the guest runs. Measured on this machine
 * kind (Debian 12, QEMU 7.2, TCG, the Debian 6.1 cloud kernel booting the busybox guest, 3 s after
 * readiness): QEMU's RSS was 218 MB with a 128 MB guest and 216 MB with a 256 MB one (the guest
 * had not touched all of its RAM), the group's peak usage 195 and 193 MB: about 90 MB beyond a
 * fully used small guest. The constant leaves room for a busier guest's translation cache.
 */
import type { VmSpec } from "../../statemachine/orchestrator/types.js";
import { TaskCgroup, type CgroupDetection, type TaskLimits } from "../confine/cgroups.js";

/** Memory a QEMU process uses beyond its guest's RAM, allowed on top of the VM's memory. */
export const QEMU_MEMORY_OVERHEAD_MB = 256;

/** The hard limits of VM `spec`'s QEMU. Pure. */
export function qemuLimits(spec: VmSpec): TaskLimits {
  return { cpuMillis: spec.vcpus * 1000, memoryMb: spec.memoryMb + QEMU_MEMORY_OVERHEAD_MB };
}

/** The group name of VM `name` (VM names are file-name safe, see `checkVmName`). */
export function qemuGroupName(name: string): string {
  return `vm-${name}`;
}

/**
 * Creates VM `name`'s group with its limits, or undefined where the host does not enforce limits.
 * A group left by an earlier run of the same VM in this node process (a run whose removal failed)
 * is removed first, killing what is left in it.
 * @throws the file system's error when the group cannot be made.
 */
export async function createQemuCgroup(
  cgroups: CgroupDetection | undefined,
  name: string,
  spec: VmSpec,
): Promise<TaskCgroup | undefined> {
  if (cgroups === undefined || !cgroups.enforced) return undefined;
  const group = qemuGroupName(name);
  const limits = qemuLimits(spec);
  try {
    return await TaskCgroup.create(cgroups.layout, group, limits);
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code !== "EEXIST") throw error;
    await TaskCgroup.at(cgroups.layout, group).remove();
    return TaskCgroup.create(cgroups.layout, group, limits);
  }
}
