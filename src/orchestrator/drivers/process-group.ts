/**
 * Child processes as process groups. Every task and VM process is spawned `detached` (its own
 * session and process group, whose id is its pid), so a signal to `-pid` reaches everything it
 * started, grandchildren included, and nothing the agent itself started.
 *
 * When the leader exits, whatever is left of its group is killed at once (SIGKILL): a task or VM
 * owns its processes, and a background child left behind would run unaccounted for. A process
 * spawned with a `parentDeathHelper` is also killed when the node dies (see `parent-death.ts`).
 */
import { spawn, type ChildProcess, type StdioOptions } from "node:child_process";
import { constants } from "node:fs";
import { access, stat } from "node:fs/promises";
import { resolve as resolvePath } from "node:path";
import type { Readable } from "node:stream";
import type { Clock } from "../../common/clock.js";
import {
  InvalidArgumentError,
  NotFoundError,
  UnavailableError,
  type BlixardError,
} from "../../common/errors.js";
import { invariant } from "../../common/assert.js";
import { findOnPath } from "../host/probe.js";
import { dyingWithParent } from "./parent-death.js";
import { within } from "./timing.js";

/** How a process ended: an exit code, or the signal that killed it. */
export interface ExitStatus {
  /** The exit code, or null when a signal killed it. */
  readonly code: number | null;
  /** The signal that killed it, or null when it exited. */
  readonly signal: NodeJS.Signals | null;
}

/** A human description of an exit: `exited with code 3`, `killed by signal SIGSEGV`. */
export function describeExit(exit: ExitStatus): string {
  if (exit.signal !== null) return `killed by signal ${exit.signal}`;
  return `exited with code ${exit.code ?? "unknown"}`;
}

/** A running process that leads its own process group. */
export interface GroupProcess {
  /** Its pid, which is also its process group id. */
  readonly pid: number;
  /** Its stdout when spawned with `"pipe"`, else null. */
  readonly stdout: Readable | null;
  /** Its stderr when spawned with `"pipe"`, else null. */
  readonly stderr: Readable | null;
  /** Settles (never rejects) when the leader has exited and the rest of its group was killed. */
  readonly exited: Promise<ExitStatus>;
  /** Settles when the leader has exited and its stdout and stderr have closed. */
  readonly closed: Promise<void>;
  /** Whether `exited` has settled. */
  hasExited(): boolean;
  /**
   * For a process spawned with `hold`: lets it go on to exec the command. Until then it waits,
   * having run nothing of the command's. Throws nothing; a no-op without `hold`.
   */
  release(): void;
}

/** Where a group process runs and where its output goes. */
export interface SpawnGroupOptions {
  /** Working directory; it must exist. */
  readonly cwd: string;
  /** The whole environment of the process (nothing is inherited). */
  readonly env: Readonly<Record<string, string>>;
  /** `"pipe"` to read the stream, `"ignore"` to discard it. */
  readonly output: "pipe" | "ignore";
  /** Run as this user and group (the agent must be root); default: the agent's own. */
  readonly uid?: number;
  readonly gid?: number;
  /**
   * Start held: a `/bin/sh` that waits on its stdin and then `exec`s the command (stdin
   * `/dev/null` then), so the caller can put its pid in a cgroup before the command runs anything.
   * {@link GroupProcess.release} lets it go; if the caller dies first, the shell sees end of file
   * and exits 125 without running the command.
   */
  readonly hold?: boolean;
  /**
   * The `setpriv` binary (see `parent-death.ts`): the process is then killed (SIGKILL) when this
   * node process exits, however it exits, instead of running on unaccounted for. Omitted: it
   * outlives a killed node (until the process registry reaps it).
   */
  readonly parentDeathHelper?: string;
}

/** The shell script of a held start: wait for one line on stdin, then become the command. */
const HOLD_SCRIPT = 'read -r go || exit 125; exec "$@" </dev/null';

/** The program and arguments that run `command args` as `options` ask (held, bound to us). */
function launchLine(
  command: string,
  args: readonly string[],
  options: SpawnGroupOptions,
): [string, readonly string[]] {
  const hold = options.hold === true;
  // The shell sets PWD in the environment it passes on: the command gets exactly `env`.
  const script = `${"PWD" in options.env ? "" : "unset PWD; "}${hold ? HOLD_SCRIPT : 'exec "$@"'}`;
  if (options.parentDeathHelper !== undefined) {
    return dyingWithParent(options.parentDeathHelper, process.pid, script, [command, ...args]);
  }
  return hold ? ["/bin/sh", ["-c", script, "blixard-hold", command, ...args]] : [command, args];
}

/** Where a program is looked up when the environment has no PATH (as libuv's spawn does). */
const DEFAULT_PATH = "/usr/bin:/bin";

/**
 * Why `command` cannot be started from `cwd` with `env`'s PATH, as spawning it directly would
 * say (ENOENT, EACCES), or undefined when it can. A start through a shell (held, or bound to the
 * node) would otherwise run, and end with exit code 127 and a shell's message in the task's
 * output instead of an error saying what is wrong. Throws nothing.
 */
async function commandProblem(
  command: string,
  cwd: string,
  env: Readonly<Record<string, string>>,
): Promise<BlixardError | undefined> {
  const enoent = Object.assign(new Error(`spawn ${command} ENOENT`), { code: "ENOENT" });
  if (!command.includes("/")) {
    const found = await findOnPath(command, env["PATH"] ?? DEFAULT_PATH).catch(() => null);
    return found === null ? spawnError(command, enoent) : undefined;
  }
  const path = resolvePath(cwd, command);
  try {
    if (!(await stat(path)).isFile()) throw enoent;
  } catch {
    return spawnError(command, enoent);
  }
  try {
    await access(path, constants.X_OK);
    return undefined;
  } catch (error) {
    return spawnError(command, Object.assign(error as Error, { code: "EACCES" }));
  }
}

/**
 * Spawns `command args` (no shell) as the leader of a new process group, with stdin ignored.
 * Resolves once the program is running.
 * @throws NotFoundError when the command (or an interpreter it names) does not exist (ENOENT).
 * @throws InvalidArgumentError when it is not executable (EACCES) or an argument is malformed.
 * @throws UnavailableError when the system refuses for another reason (EAGAIN, ENOMEM, …).
 */
export async function spawnGroup(
  command: string,
  args: readonly string[],
  options: SpawnGroupOptions,
): Promise<GroupProcess> {
  const hold = options.hold === true;
  if (hold || options.parentDeathHelper !== undefined) {
    const problem = await commandProblem(command, options.cwd, options.env);
    if (problem !== undefined) throw problem;
  }
  const stdio: StdioOptions = [hold ? "pipe" : "ignore", options.output, options.output];
  const [file, argv] = launchLine(command, args, options);
  let child: ChildProcess;
  try {
    child = spawn(file, argv, {
      cwd: options.cwd,
      env: options.env,
      stdio,
      detached: true,
      ...(options.uid === undefined ? {} : { uid: options.uid }),
      ...(options.gid === undefined ? {} : { gid: options.gid }),
    });
  } catch (error) {
    // Node validates arguments synchronously (a NUL byte in an argument, a bad env value).
    throw new InvalidArgumentError(`cannot start "${command}": ${errorMessage(error)}`, {
      cause: error,
    });
  }
  return new Promise((resolve, reject) => {
    let spawned = false;
    let exitedFlag = false;
    let resolveExit!: (status: ExitStatus) => void;
    const exited = new Promise<ExitStatus>((r) => (resolveExit = r));
    const closed = new Promise<void>((r) => child.once("close", () => r()));
    child.once("exit", (code, signal) => {
      exitedFlag = true;
      if (child.pid !== undefined) signalGroup(child.pid, "SIGKILL");
      resolveExit({ code, signal });
    });
    child.once("error", (error: NodeJS.ErrnoException) => {
      // After a successful spawn, 'error' only reports a failed kill(), which signalGroup avoids.
      if (!spawned) reject(spawnError(command, error));
    });
    child.once("spawn", () => {
      spawned = true;
      // The pid is known once 'spawn' fired.
      const pid = child.pid as number;
      resolve({
        pid,
        stdout: child.stdout,
        stderr: child.stderr,
        exited,
        closed,
        hasExited: () => exitedFlag,
        release: () => {
          // EPIPE when it already died: nothing to release.
          child.stdin?.on("error", () => undefined);
          child.stdin?.end("go\n");
        },
      });
    });
  });
}

/**
 * Sends `signal` to the whole process group `pgid`. Returns false when no process of the group is
 * left (ESRCH); other failures (EPERM) are not expected for our own children and are thrown.
 * @throws InternalError when `pgid` is not a plausible child's group id (≤ 1).
 */
export function signalGroup(pgid: number, signal: NodeJS.Signals): boolean {
  // kill(-1) signals every process we may signal and kill(-0) our own group: never by accident.
  invariant(Number.isInteger(pgid) && pgid > 1, () => `not a child's process group id: ${pgid}`);
  try {
    process.kill(-pgid, signal);
    return true;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ESRCH") return false;
    throw error;
  }
}

/** How a group was stopped: it had already exited, SIGTERM sufficed, or SIGKILL was needed. */
export type TerminateMethod = "exited" | "SIGTERM" | "SIGKILL";

/**
 * Stops a group process: SIGTERM (and SIGCONT, so a stopped process can act on it) to the whole
 * group, then SIGKILL if the leader has not exited after `graceMs`. Resolves once it has exited.
 */
export async function terminateGroup(
  proc: GroupProcess,
  clock: Clock,
  graceMs: number,
): Promise<TerminateMethod> {
  if (proc.hasExited()) return "exited";
  signalGroup(proc.pid, "SIGTERM");
  signalGroup(proc.pid, "SIGCONT");
  if ((await within(clock, proc.exited, graceMs)).inTime) return "SIGTERM";
  signalGroup(proc.pid, "SIGKILL");
  await proc.exited;
  return "SIGKILL";
}

function spawnError(command: string, error: NodeJS.ErrnoException): BlixardError {
  switch (error.code) {
    case "ENOENT":
      return new NotFoundError(
        `cannot start "${command}": no such file or command on PATH (ENOENT); check the command, the PATH it runs with and the interpreter named on its #! line`,
        { cause: error },
      );
    case "EACCES":
      return new InvalidArgumentError(
        `cannot start "${command}": permission denied (EACCES); the file must be executable by the agent's user`,
        { cause: error },
      );
    default:
      return new UnavailableError(`cannot start "${command}": ${error.message}`, { cause: error });
  }
}

function errorMessage(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
