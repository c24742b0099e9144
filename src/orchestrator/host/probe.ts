/**
 * What this machine offers, measured: CPU, memory, disk under the data directory, and whether
 * KVM and QEMU are usable. The only impure part of host detection; `overrides.ts` is the pure one.
 */
import { constants } from "node:fs";
import { access, stat, statfs } from "node:fs/promises";
import { availableParallelism, totalmem } from "node:os";
import { delimiter, dirname, join, resolve } from "node:path";
import { QEMU_BINARY } from "../drivers/qemu-args.js";
import { probeKvmBoot } from "./kvm-boot-probe.js";

/** The KVM device. */
export const KVM_DEVICE = "/dev/kvm";

/** The measurements. */
export interface HostProbe {
  /** Logical CPUs this process may use, in millicores. */
  readonly cpuMillis: number;
  /** Total memory, in MiB (rounded down). */
  readonly memoryMb: number;
  /** Space available to us on the data directory's file system, in GiB (rounded down). */
  readonly diskGb: number;
  /**
   * Whether KVM runs guests here: the device is usable and the Blixard guest booted under it
   * (see `kvm-boot-probe.ts`). Without a guest to boot (`guest` option) it is not proven: false.
   */
  readonly kvm: boolean;
  /** Why `kvm` is what it is. */
  readonly kvmReason: string;
  /** The QEMU binary found on PATH, or null. */
  readonly qemuPath: string | null;
}

/** Where to look. */
export interface ProbeOptions {
  /** The node's data directory (it need not exist yet: its nearest existing parent is measured). */
  readonly dataDir: string;
  /** Default {@link KVM_DEVICE}. */
  readonly kvmDevice?: string;
  /** Default `qemu-system-x86_64`. */
  readonly qemuBinary?: string;
  /** The PATH searched for QEMU. Default: this process's. */
  readonly pathEnv?: string;
  /** The Blixard guest to boot under KVM to prove it works; omitted: KVM is not advertised. */
  readonly guest?: { readonly kernel: string; readonly initrd: string };
}

/** Measures this host. Never throws for a missing KVM or QEMU: they are then reported absent. */
export async function probeHost(options: ProbeOptions): Promise<HostProbe> {
  const [diskGb, kvmDevice, qemuPath] = await Promise.all([
    diskGbAvailable(options.dataDir),
    kvmUsable(options.kvmDevice ?? KVM_DEVICE),
    findOnPath(options.qemuBinary ?? QEMU_BINARY, options.pathEnv ?? process.env["PATH"] ?? ""),
  ]);
  let kvm = false;
  let kvmReason: string;
  if (!kvmDevice) kvmReason = "the KVM device is missing or not usable";
  else if (qemuPath === null) kvmReason = "QEMU is not installed";
  else if (options.guest === undefined) {
    kvmReason = "no guest to boot under KVM (give --vm-image-dir with the Blixard guest)";
  } else {
    const result = await probeKvmBoot({ binary: qemuPath, ...options.guest });
    kvm = result.ok;
    kvmReason = `${result.reason} (${result.elapsedMs} ms)`;
  }
  return {
    cpuMillis: availableParallelism() * 1000,
    memoryMb: Math.floor(totalmem() / 2 ** 20),
    diskGb,
    kvm,
    kvmReason,
    qemuPath,
  };
}

/**
 * Whether `device` is a character device we may open read-write. (That KVM then works inside this
 * machine, e.g. nested under another hypervisor, only QEMU can tell.)
 */
export async function kvmUsable(device: string = KVM_DEVICE): Promise<boolean> {
  try {
    if (!(await stat(device)).isCharacterDevice()) return false;
    await access(device, constants.R_OK | constants.W_OK);
    return true;
  } catch {
    return false;
  }
}

/**
 * The executable `binary` resolves to: itself when it names a path, else the first regular,
 * executable file of that name in `pathEnv`'s directories. Null when there is none.
 */
export async function findOnPath(binary: string, pathEnv: string): Promise<string | null> {
  const candidates = binary.includes("/")
    ? [resolve(binary)]
    : pathEnv
        .split(delimiter)
        .filter((dir) => dir !== "")
        .map((dir) => join(dir, binary));
  for (const candidate of candidates) {
    try {
      if (!(await stat(candidate)).isFile()) continue;
      await access(candidate, constants.X_OK);
      return candidate;
    } catch {
      // Not here; try the next directory.
    }
  }
  return null;
}

/**
 * GiB available to unprivileged users on the file system holding `dir` (or, while `dir` does
 * not exist yet, its nearest existing parent).
 */
export async function diskGbAvailable(dir: string): Promise<number> {
  let path = resolve(dir);
  for (;;) {
    try {
      const fs = await statfs(path);
      return Math.floor((fs.bavail * fs.bsize) / 2 ** 30);
    } catch (error) {
      const parent = dirname(path);
      if ((error as NodeJS.ErrnoException).code !== "ENOENT" || parent === path) throw error;
      path = parent;
    }
  }
}
