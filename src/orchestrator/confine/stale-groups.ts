/**
 * The cgroups of nodes that are gone. Each node process makes its own group, `blixard/node-<id>-
 * <pid>` (see `cgroups.ts`), with a group per task inside. A node that stops removes its own; a
 * node that was killed or crashed cannot, so every start first removes the groups whose process is
 * no longer running, as far as they are empty (a group that still holds a process is left alone:
 * rmdir refuses it). Without this, a host whose nodes restart often piles up thousands of them.
 */
import { readdir, rmdir } from "node:fs/promises";
import { join } from "node:path";

/** A node group's name: `node-<id>-<pid>`. */
const NODE_GROUP = /^node-[1-9][0-9]*-([1-9][0-9]*)$/;

/** True while a process with this pid exists (EPERM: it exists, not ours). */
function running(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === "EPERM";
  }
}

/**
 * Removes `dir` and the groups below it, deepest first; returns false when any of them could not
 * be removed (it holds a process, or it was gone already). Throws nothing.
 */
export async function removeGroupTree(dir: string): Promise<boolean> {
  let entries;
  try {
    entries = await readdir(dir, { withFileTypes: true });
  } catch {
    return false;
  }
  let all = true;
  for (const entry of entries) {
    if (entry.isDirectory() && !(await removeGroupTree(join(dir, entry.name)))) all = false;
  }
  try {
    await rmdir(dir);
  } catch {
    return false;
  }
  return all;
}

/**
 * Removes the node groups in `parentDir` (a `blixard` group) whose node process has exited,
 * except `ownName`. Returns how many were removed whole. Throws nothing.
 */
export async function pruneStaleNodeGroups(parentDir: string, ownName: string): Promise<number> {
  let names: string[];
  try {
    names = await readdir(parentDir);
  } catch {
    return 0;
  }
  let removed = 0;
  for (const name of names) {
    const pid = NODE_GROUP.exec(name)?.[1];
    if (pid === undefined || name === ownName || running(Number(pid))) continue;
    if (await removeGroupTree(join(parentDir, name))) removed++;
  }
  return removed;
}
