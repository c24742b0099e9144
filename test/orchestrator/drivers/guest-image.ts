/**
 * Builds the Blixard guest (kernel + initramfs) for real-QEMU tests with `guest/build-image.sh`,
 * from the Debian packages installed here (linux-image-cloud-amd64, busybox-static, cpio).
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

/** The script that builds the guest. */
export const BUILD_SCRIPT = fileURLToPath(
  new URL("../../../guest/build-image.sh", import.meta.url),
);

/** Whether this machine has a kernel and a static busybox to build a guest from. */
export function guestBuildable(): boolean {
  const kernels = existsSync("/lib/modules") ? readdirSync("/lib/modules") : [];
  return kernels.length > 0 && existsSync("/bin/busybox") && existsSync("/usr/bin/cpio");
}

/** The built guest's files. */
export interface GuestImage {
  readonly kernel: string;
  readonly initrd: string;
}

/** Builds the guest into `dir` (about 3 s). Throws with the script's output when it fails. */
export function buildGuest(dir: string): GuestImage {
  execFileSync(BUILD_SCRIPT, [dir], { stdio: "pipe" });
  return { kernel: join(dir, "vmlinuz"), initrd: join(dir, "initramfs.cpio.gz") };
}
