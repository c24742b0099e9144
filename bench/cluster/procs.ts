/**
 * Processes and temporary directories the benchmark owns, and their cleanup. Every child is
 * spawned through {@link spawnLogged} and every directory made through {@link tempDir}; on a
 * normal end, an error, Ctrl-C or SIGTERM, {@link cleanupSync} kills exactly those pids (nothing
 * found by name) and removes exactly those directories.
 */
import { spawn, type ChildProcess } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";

/** A child process the benchmark started. */
export interface OwnedProcess {
  readonly pid: number;
  readonly child: ChildProcess;
  readonly logPath: string;
  /** Settles with the exit code or signal name once the process has exited. */
  readonly exited: Promise<number | string>;
  hasExited(): boolean;
}

const processes = new Set<OwnedProcess>();
const directories = new Set<string>();

/** A new directory under the OS temporary directory (a real disk on this machine). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  directories.add(dir);
  return dir;
}

/** Spawns `command args` with stdout and stderr appended to `logPath`. */
export function spawnLogged(
  command: string,
  args: readonly string[],
  logPath: string,
  env: NodeJS.ProcessEnv = process.env,
): OwnedProcess {
  const fd = openSync(logPath, "a");
  const child = spawn(command, args, { stdio: ["ignore", fd, fd], env });
  closeSync(fd);
  if (child.pid === undefined) throw new Error(`cannot start ${command}`);
  let done = false;
  const exited = new Promise<number | string>((resolve) => {
    child.once("exit", (code, signal) => {
      done = true;
      resolve(code ?? signal ?? "unknown");
    });
    child.once("error", () => {
      done = true;
      resolve("spawn failed");
    });
  });
  const owned: OwnedProcess = {
    pid: child.pid,
    child,
    logPath,
    exited,
    hasExited: () => done,
  };
  processes.add(owned);
  void exited.then(() => processes.delete(owned));
  return owned;
}

/** SIGKILLs one owned process and waits for it to be gone. */
export async function killHard(owned: OwnedProcess): Promise<void> {
  if (!owned.hasExited()) owned.child.kill("SIGKILL");
  await owned.exited;
}

/** SIGTERMs owned processes, SIGKILLs those still running after `graceMs`. */
export async function stopGracefully(
  owned: readonly OwnedProcess[],
  graceMs = 5000,
): Promise<void> {
  for (const p of owned) if (!p.hasExited()) p.child.kill("SIGTERM");
  let timer: NodeJS.Timeout | undefined;
  const all = Promise.all(owned.map((p) => p.exited));
  const late = new Promise<"late">(
    (resolve) => (timer = setTimeout(() => resolve("late"), graceMs)),
  );
  if ((await Promise.race([all, late])) === "late") {
    for (const p of owned) if (!p.hasExited()) p.child.kill("SIGKILL");
    await all;
  }
  clearTimeout(timer);
}

/** Kills every owned process still running and removes every owned directory. Synchronous. */
export function cleanupSync(): void {
  for (const p of processes) {
    if (!p.hasExited()) {
      try {
        process.kill(p.pid, "SIGKILL");
      } catch {
        // Already gone.
      }
    }
  }
  processes.clear();
  for (const dir of directories) rmSync(dir, { recursive: true, force: true });
  directories.clear();
}

/** The last lines of a log file, for error messages. */
export function logTail(path: string, lines = 15): string {
  try {
    return readFileSync(path, "utf8").trimEnd().split("\n").slice(-lines).join("\n");
  } catch {
    return "(no log)";
  }
}

export { freePorts } from "../../src/cli/dev/ports.js";

/** Resolves after `ms`. */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, ms));
}

/** Polls `condition` every 50 ms until it returns something other than undefined. */
export async function until<T>(
  condition: () => Promise<T | undefined> | T | undefined,
  what: string,
  deadlineMs = 30_000,
): Promise<T> {
  const end = performance.now() + deadlineMs;
  for (;;) {
    const value = await condition();
    if (value !== undefined) return value;
    if (performance.now() > end)
      throw new Error(`timed out after ${deadlineMs} ms waiting for ${what}`);
    await sleep(50);
  }
}

/** CPU seconds (user + system) a process has used so far, from /proc; 0 if unreadable. */
export function cpuSeconds(pid: number): number {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    // Fields after the command name (which may contain spaces) start after the last ')'.
    const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
    // utime and stime are fields 14 and 15 of the whole line: 12 and 13 after the name.
    return (Number(fields[11]) + Number(fields[12])) / CLOCK_TICKS;
  } catch {
    return 0;
  }
}

/** Busy and total CPU seconds of the whole machine (all cores) so far, from /proc/stat. */
export function machineCpuSeconds(): { busy: number; total: number } {
  try {
    const line = readFileSync("/proc/stat", "utf8").split("\n")[0] ?? "";
    const ticks = line.trim().split(/\s+/).slice(1).map(Number);
    const total = ticks.reduce((a, b) => a + b, 0);
    // idle and iowait are the 4th and 5th numbers.
    const idle = (ticks[3] ?? 0) + (ticks[4] ?? 0);
    return { busy: (total - idle) / CLOCK_TICKS, total: total / CLOCK_TICKS };
  } catch {
    return { busy: 0, total: 0 };
  }
}

/** USER_HZ on Linux. */
const CLOCK_TICKS = 100;

/**
 * Context switches of a process so far, summed over its threads (from each /proc/<pid>/task/<tid>/status)
 * and of its main thread alone: each voluntary switch of the main thread is one sleep of its
 * event loop, so the difference over a window counts its wake-ups. Zeros if unreadable.
 */
export function contextSwitches(pid: number): { mainThread: number; allThreads: number } {
  let mainThread = 0;
  let allThreads = 0;
  try {
    for (const tid of readdirSync(`/proc/${pid}/task`)) {
      const status = readFileSync(`/proc/${pid}/task/${tid}/status`, "utf8");
      const voluntary = Number(/^voluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      const involuntary = Number(/^nonvoluntary_ctxt_switches:\s+(\d+)/m.exec(status)?.[1] ?? 0);
      allThreads += voluntary + involuntary;
      if (tid === String(pid)) mainThread = voluntary + involuntary;
    }
  } catch {
    // Gone meanwhile: what was counted so far.
  }
  return { mainThread, allThreads };
}
