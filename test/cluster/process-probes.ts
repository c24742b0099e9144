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
