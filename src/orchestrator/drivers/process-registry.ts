/**
 * A record, on disk, of the process groups the drivers started, so that an agent restarted after
 * a crash can kill what its previous incarnation left running (see `vm-driver.ts` for why
 * orphans are reaped rather than adopted).
 *
 * One JSON file per running process: `<dir>/<key>.json` with its pid and its start time (field 22
 * of `/proc/<pid>/stat`, in clock ticks since boot). The start time is what makes reaping safe:
 * a pid reused by an unrelated process has another start time and is left alone. Where `/proc`
 * is not available nothing can be verified, and nothing is killed.
 *
 * A process started in the instant before its record is written and the agent dies is missed;
 * the window is one file write.
 */
import { mkdir, readdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { signalGroup } from "./process-group.js";

/** One recorded process. */
export interface RegisteredProcess {
  /** What it is to the agent, e.g. `vm-web1`, `task-42`. */
  readonly key: string;
  /** Its pid, which is also its process group id. */
  readonly pid: number;
  /** Its start time in clock ticks since boot, or null where it could not be read. */
  readonly startTicks: string | null;
  /** Its command, for the operator reading the report. */
  readonly command: string;
}

/** What {@link ProcessRegistry.reapOrphans} found for one record. */
export interface ReapedProcess {
  readonly record: RegisteredProcess;
  /** `killed`: it still ran and its group was killed; `gone`: it no longer ran (or the pid is someone else's now); `unverifiable`: no start time to compare, left alone. */
  readonly action: "killed" | "gone" | "unverifiable";
}

/** Files in the registry directory that are records. */
const RECORD_SUFFIX = ".json";

/** The registry of one agent's process groups, in one directory. */
export class ProcessRegistry {
  /** @param dir the directory of the records; created when the first record is written. */
  constructor(readonly dir: string) {}

  /** Records that `pid` (a group leader) runs as `key`; replaces an older record of `key`. */
  async record(key: string, pid: number, command: string): Promise<void> {
    const entry: RegisteredProcess = { key, pid, startTicks: await startTicksOf(pid), command };
    await mkdir(this.dir, { recursive: true, mode: 0o700 });
    const path = this.pathOf(key);
    // Write then rename: a crash leaves the old record or the new one, never half of one.
    await writeFile(`${path}.tmp`, JSON.stringify(entry), { mode: 0o600 });
    await rename(`${path}.tmp`, path);
  }

  /** Forgets `key` (its process has exited); a missing record is fine. */
  async forget(key: string): Promise<void> {
    await rm(this.pathOf(key), { force: true });
  }

  /** The records on disk; damaged ones are skipped. */
  async list(): Promise<RegisteredProcess[]> {
    const records: RegisteredProcess[] = [];
    for (const { record } of await this.files()) if (record !== undefined) records.push(record);
    return records;
  }

  /**
   * Kills (SIGKILL, whole group) every recorded process that is still the process recorded, and
   * removes every record, damaged ones included. Call it when an agent starts, before it starts
   * anything.
   */
  async reapOrphans(): Promise<ReapedProcess[]> {
    const reaped: ReapedProcess[] = [];
    for (const { name, record } of await this.files()) {
      if (record !== undefined) {
        let action: ReapedProcess["action"];
        if (record.startTicks === null) action = "unverifiable";
        else if ((await startTicksOf(record.pid)) !== record.startTicks) action = "gone";
        else action = signalGroup(record.pid, "SIGKILL") ? "killed" : "gone";
        reaped.push({ record, action });
      }
      await rm(join(this.dir, name), { force: true });
    }
    return reaped;
  }

  private async files(): Promise<{ name: string; record: RegisteredProcess | undefined }[]> {
    let names: string[];
    try {
      names = await readdir(this.dir);
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === "ENOENT") return [];
      throw error;
    }
    const files = [];
    for (const name of names.filter((n) => n.endsWith(RECORD_SUFFIX)).sort()) {
      const text = await readFile(join(this.dir, name), "utf8").catch(() => "");
      files.push({ name, record: parseRecord(text) });
    }
    return files;
  }

  private pathOf(key: string): string {
    return join(this.dir, `${fileSafe(key)}${RECORD_SUFFIX}`);
  }
}

/** The start time of `pid` from `/proc/<pid>/stat`, or null if it does not run (or no /proc). */
export async function startTicksOf(pid: number): Promise<string | null> {
  let stat: string;
  try {
    stat = await readFile(`/proc/${pid}/stat`, "utf8");
  } catch {
    return null;
  }
  // Fields after the command name, which is in parentheses and may hold spaces and parentheses:
  // state is field 3, so starttime (field 22) is index 19 after it.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  if (fields[0] === "Z" || fields[0] === "X") return null;
  return fields[19] ?? null;
}

/** `key` with every character but letters, digits, `.`, `_` and `-` as `%XX`. */
function fileSafe(key: string): string {
  return key.replace(
    /[^A-Za-z0-9._-]/g,
    (c) => `%${c.charCodeAt(0).toString(16).padStart(2, "0")}`,
  );
}

function parseRecord(text: string): RegisteredProcess | undefined {
  try {
    const value = JSON.parse(text) as Partial<RegisteredProcess>;
    if (
      typeof value.key === "string" &&
      typeof value.pid === "number" &&
      Number.isInteger(value.pid) &&
      value.pid > 1 &&
      (typeof value.startTicks === "string" || value.startTicks === null) &&
      typeof value.command === "string"
    ) {
      return {
        key: value.key,
        pid: value.pid,
        startTicks: value.startTicks,
        command: value.command,
      };
    }
  } catch {
    // Fall through: a damaged record is skipped; its process (if any) cannot be identified.
  }
  return undefined;
}
