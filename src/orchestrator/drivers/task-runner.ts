/**
 * Runs one attempt of a task as a child process and reports how it ended (issue 7, item 4). The
 * agent calls it for each task assigned to its node and proposes the result.
 *
 * The command runs without a shell unless `spec.shell` (then `/bin/sh -c command sh args…`, so
 * the arguments are the script's `$1…`, never spliced into it). Its environment is PATH and HOME
 * plus `spec.env`; stdin is ignored; stdout and stderr are kept up to a cap each. It leads its own
 * process group: a timeout or a cancel sends SIGTERM to the whole group, then SIGKILL after a
 * grace period, and when the command exits anything it left running in its group is killed.
 */
import { findParentDeathHelper } from "./parent-death.js";
import { stat } from "node:fs/promises";
import { resolve } from "node:path";
import type { Clock } from "../../common/clock.js";
import { syntheticResult } from "../../statemachine/orchestrator/synthetic-result.js";
import type { TaskResult, TaskSpec, TaskStatus } from "../../statemachine/orchestrator/types.js";
import { minimalEnv } from "./child-env.js";
import {
  DEFAULT_KILL_GRACE_MS,
  DEFAULT_TASK_OUTPUT_CAP_BYTES,
  MAX_REPORTED_ERROR_BYTES,
  OUTPUT_DRAIN_TIMEOUT_MS,
} from "./limits.js";
import { CappedOutput, truncateUtf8 } from "./output-capture.js";
import type { TaskSandbox } from "../confine/task-sandbox.js";
import type { ProcessRegistry } from "./process-registry.js";
import {
  describeExit,
  spawnGroup,
  terminateGroup,
  type GroupProcess,
  type TerminateMethod,
} from "./process-group.js";
import { within } from "./timing.js";

/** How an attempt ended: the terminal statuses an agent can observe. */
export type TaskOutcome = Extract<TaskStatus, "succeeded" | "failed" | "timed_out" | "cancelled">;

/** An attempt's outcome and the result to report. */
export interface TaskRun {
  readonly outcome: TaskOutcome;
  readonly result: TaskResult;
}

/** The part of a task's spec that running it needs. */
export type RunnableTaskSpec = Pick<
  TaskSpec,
  "command" | "args" | "env" | "secretEnv" | "cwd" | "shell" | "timeoutMs"
>;

/** How to run a task. */
export interface RunTaskOptions {
  /** Time for the timeout, the kill grace period and the duration. */
  readonly clock: Clock;
  /** The working directory when the spec names none; a relative `spec.cwd` is resolved against it. */
  readonly defaultCwd: string;
  /** Cancels the attempt: its process group is stopped and the outcome is `cancelled`. */
  readonly signal?: AbortSignal;
  /**
   * Bytes of stdout and of stderr kept, each. Default and maximum
   * {@link DEFAULT_TASK_OUTPUT_CAP_BYTES} (the model refuses longer output).
   */
  readonly outputCapBytes?: number;
  /** Time between SIGTERM and SIGKILL. Default {@link DEFAULT_KILL_GRACE_MS}. */
  readonly killGraceMs?: number;
  /** The environment under `spec.env`. Default {@link minimalEnv}: the agent's PATH and HOME. */
  readonly baseEnv?: Readonly<Record<string, string>>;
  /** Called once the process runs, with its pid (the agent reports the task as running then). */
  readonly onStarted?: (pid: number) => void;
  /**
   * Records the process under `key` while it runs, so that an agent restarted after a crash can
   * kill it (`ProcessRegistry.reapOrphans`) rather than see it run twice.
   */
  readonly registration?: { readonly registry: ProcessRegistry; readonly key: string };
  /**
   * Run confined (see `confine/task-sandbox.ts`): in its directory (the default working directory
   * then), with its environment under `spec.env`, as its user, inside its cgroup. The caller
   * prepares and releases it.
   */
  readonly sandbox?: TaskSandbox;
  /** Each chunk of stdout and stderr as it is read, uncapped (`task logs --follow`). */
  readonly onOutput?: (stream: "stdout" | "stderr", chunk: Uint8Array) => void;
}

/**
 * Runs `spec` once and resolves with its outcome; never rejects. A command that cannot start
 * (missing, not executable, a bad working directory) is `failed` with exit code null and an error
 * saying why; exit 0 is `succeeded`, any other exit `failed` (a signal death has exit code null
 * and an error naming the signal); a timeout is `timed_out` and an abort `cancelled`, each after
 * the whole process group was stopped.
 */
export async function runTask(spec: RunnableTaskSpec, options: RunTaskOptions): Promise<TaskRun> {
  const { clock, signal } = options;
  const startedAtMs = clock.now();
  const elapsedMs = (): number => Math.max(0, Math.round(clock.now() - startedAtMs));
  const notRun = (outcome: TaskOutcome, error: string): TaskRun => ({
    outcome,
    result: syntheticResult(truncateUtf8(error, MAX_REPORTED_ERROR_BYTES), elapsedMs()),
  });

  if (isAborted(signal)) return notRun("cancelled", "cancelled before it started");
  if (spec.command === "") return notRun("failed", "the task has no command");
  if (!Number.isFinite(spec.timeoutMs) || spec.timeoutMs < 0) {
    return notRun("failed", `timeoutMs must be ≥ 0, got ${spec.timeoutMs}`);
  }
  const { sandbox } = options;
  const defaultCwd = sandbox?.dir ?? options.defaultCwd;
  const cwd = spec.cwd === "" ? defaultCwd : resolve(defaultCwd, spec.cwd);
  const cwdProblem = await directoryProblem(cwd);
  if (cwdProblem !== undefined) return notRun("failed", cwdProblem);
  // Checked again: the signal may have fired while the directory was looked at.
  if (isAborted(signal)) return notRun("cancelled", "cancelled before it started");

  const [command, args] = spec.shell
    ? ["/bin/sh", ["-c", spec.command, "sh", ...spec.args]]
    : [spec.command, spec.args];
  // Bound to this node: a task that outlived a killed node would run beside its retry elsewhere.
  const parentDeathHelper = await findParentDeathHelper();
  let proc: GroupProcess;
  try {
    proc = await spawnGroup(command, args, {
      cwd,
      env: {
        ...(sandbox?.env ?? options.baseEnv ?? minimalEnv()),
        ...spec.env,
        ...spec.secretEnv,
      },
      output: "pipe",
      ...(sandbox?.uid === undefined ? {} : { uid: sandbox.uid, gid: sandbox.gid }),
      // Held until it is in its cgroup: nothing of the task runs outside its limits.
      hold: sandbox?.cgroup !== undefined,
      ...(parentDeathHelper === null ? {} : { parentDeathHelper }),
    });
  } catch (error) {
    return notRun("failed", error instanceof Error ? error.message : String(error));
  }
  if (sandbox?.cgroup !== undefined) {
    try {
      await sandbox.cgroup.join(proc.pid);
    } catch (error) {
      await terminateGroup(proc, clock, 0);
      return notRun("failed", `could not put the task in its cgroup: ${(error as Error).message}`);
    }
    proc.release();
  }
  options.onStarted?.(proc.pid);
  const registration = options.registration;
  const recorded = registration?.registry.record(registration.key, proc.pid, spec.command).then(
    () => true,
    () => false,
  );

  const capBytes = Math.min(
    options.outputCapBytes ?? DEFAULT_TASK_OUTPUT_CAP_BYTES,
    DEFAULT_TASK_OUTPUT_CAP_BYTES,
  );
  const stdout = new CappedOutput(capBytes);
  const stderr = new CappedOutput(capBytes);
  const { onOutput } = options;
  proc.stdout?.on("data", (chunk: Uint8Array) => {
    stdout.push(chunk);
    onOutput?.("stdout", chunk);
  });
  proc.stderr?.on("data", (chunk: Uint8Array) => {
    stderr.push(chunk);
    onOutput?.("stderr", chunk);
  });

  // The first of timeout and cancel decides the outcome; the other is then ignored.
  const graceMs = options.killGraceMs ?? DEFAULT_KILL_GRACE_MS;
  let stoppedFor: "timed_out" | "cancelled" | undefined;
  let stopping: Promise<TerminateMethod> | undefined;
  const stop = (reason: "timed_out" | "cancelled"): void => {
    if (stoppedFor !== undefined) return;
    stoppedFor = reason;
    stopping = terminateGroup(proc, clock, graceMs);
  };
  const timer =
    spec.timeoutMs > 0 ? clock.setTimer(spec.timeoutMs, () => stop("timed_out")) : undefined;
  const onAbort = (): void => stop("cancelled");
  signal?.addEventListener("abort", onAbort, { once: true });
  // An abort while the process was being spawned.
  if (isAborted(signal)) stop("cancelled");

  const exit = await proc.exited;
  timer?.cancel();
  signal?.removeEventListener("abort", onAbort);
  const method = stopping === undefined ? undefined : await stopping;
  const durationMs = elapsedMs();
  if (!(await within(clock, proc.closed, OUTPUT_DRAIN_TIMEOUT_MS)).inTime) {
    proc.stdout?.destroy();
    proc.stderr?.destroy();
  }
  if (registration !== undefined && (await recorded) === true) {
    // A record that cannot be removed is harmless: the reap finds the process gone.
    await registration.registry.forget(registration.key).catch(() => undefined);
  }

  const outcome: TaskOutcome = stoppedFor ?? (exit.code === 0 ? "succeeded" : "failed");
  let error = "";
  if (stoppedFor !== undefined) {
    const what = stoppedFor === "timed_out" ? `timed out after ${spec.timeoutMs} ms` : "cancelled";
    error = `${what}; ${describeStop(method ?? "exited", graceMs, exit.signal)}`;
  } else if (exit.signal !== null) {
    error = describeExit(exit);
  }
  if (sandbox?.cgroup !== undefined && (await sandbox.cgroup.oomKilled())) {
    const oom = `killed by the kernel's OOM killer: the task went over its memory limit of ${sandbox.memoryMb} MB`;
    error = error === "" ? oom : `${oom}; ${error}`;
  }
  return {
    outcome,
    result: {
      exitCode: exit.code,
      stdout: stdout.text(),
      stderr: stderr.text(),
      stdoutTruncated: stdout.truncated,
      stderrTruncated: stderr.truncated,
      durationMs,
      error: truncateUtf8(error, MAX_REPORTED_ERROR_BYTES),
    },
  };
}

/** A function, not an inline check, so TypeScript does not narrow `aborted` across awaits. */
function isAborted(signal: AbortSignal | undefined): boolean {
  return signal?.aborted === true;
}

function describeStop(
  method: TerminateMethod,
  graceMs: number,
  signal: NodeJS.Signals | null,
): string {
  switch (method) {
    case "exited":
      return `it exited by itself${signal === null ? "" : ` (${signal})`}`;
    case "SIGTERM":
      return "its process group was stopped with SIGTERM";
    case "SIGKILL":
      return `it did not exit within ${graceMs} ms of SIGTERM and was killed with SIGKILL`;
  }
}

async function directoryProblem(path: string): Promise<string | undefined> {
  try {
    if (!(await stat(path)).isDirectory()) return `working directory ${path} is not a directory`;
    return undefined;
  } catch (error) {
    const code = (error as NodeJS.ErrnoException).code;
    return code === "ENOENT"
      ? `working directory ${path} does not exist`
      : `working directory ${path} cannot be used: ${(error as Error).message}`;
  }
}
