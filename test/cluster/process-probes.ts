/** What the tests of real nodes look up in /proc about the processes the nodes run. */
import { readdirSync, readFileSync } from "node:fs";

/** Live `sleep` processes whose arguments include `marker` (zombies excluded), from /proc. */
export function sleepProcessesWith(marker: string): number[] {
  const found: number[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const args = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      const state = /\) (\S)/.exec(readFileSync(`/proc/${entry}/stat`, "utf8"))?.[1];
      if (state !== "Z" && args[0] === "sleep" && args.includes(marker)) found.push(Number(entry));
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}

/** One live QEMU process and its arguments. */
export interface QemuProcess {
  readonly pid: number;
  /** Its arguments (after the binary), joined by spaces. */
  readonly args: string;
}

/**
 * Live QEMU processes (zombies excluded) of VM `vmName` whose arguments mention `under` (e.g. a
 * cluster's root directory, where every node keeps the QMP socket of each VM it runs), from /proc.
 */
export function qemuProcessesOf(vmName: string, under: string): QemuProcess[] {
  const found: QemuProcess[] = [];
  for (const entry of readdirSync("/proc")) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const [binary = "", ...args] = readFileSync(`/proc/${entry}/cmdline`, "utf8").split("\0");
      const state = /\) (\S)/.exec(readFileSync(`/proc/${entry}/stat`, "utf8"))?.[1];
      if (state === "Z" || !binary.endsWith("qemu-system-x86_64")) continue;
      const joined = args.join(" ");
      if (args.includes(`guest=${vmName}`) && joined.includes(under)) {
        found.push({ pid: Number(entry), args: joined });
      }
    } catch {
      // the process ended while we looked
    }
  }
  return found;
}
