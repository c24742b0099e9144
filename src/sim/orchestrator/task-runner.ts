/**
 * The simulated task runner: the agent's {@link TaskRunnerPort} on a simulated machine. An attempt
 * spawns after a few ms (a process in the {@link SimProcessTable}), runs for the duration its spec
 * asks for and exits with its exit code; a timeout or an abort kills it after a short grace. All
 * of it runs on the node's clock, so a crashed node's attempts never end (the machine is gone and
 * so are its processes) and a paused node's end only when it resumes.
 */
import type { Random } from "../../common/random.js";
import type { TaskRunnerPort } from "../../orchestrator/agent/ports.js";
import type { TaskOutcome, TaskRun } from "../../orchestrator/drivers/task-runner.js";
import type { NodeId } from "../../raft/types.js";
import type { OrchestratorQueries } from "../../statemachine/orchestrator/queries.js";
import type { TimerHandle } from "../../common/clock.js";
import { between } from "../rng.js";
import type { SimClock } from "../scheduler.js";
import type { SimProcess, SimProcessTable } from "./processes.js";
import { readSimTask } from "./task-spec.js";

/** What a simulated runner runs on. */
export interface SimTaskRunnerOptions {
  readonly nodeId: NodeId;
  readonly incarnation: number;
  readonly clock: SimClock;
  readonly random: Random;
  readonly processes: SimProcessTable;
  /** The node's applied model: the attempt being run, and whether an abort is a cancel. */
  readonly queries: Pick<OrchestratorQueries, "task">;
  /**
   * PLANTED BUG (test only): an attempt the agent abandons (the model moved it elsewhere) is
   * reported gone to the agent but its process is not killed; it runs to its natural end.
   */
  readonly leakAbandoned: boolean;
  /** Told of each process start and end, for the run's trace. */
  readonly onEvent: (line: string) => void;
}

/** Time from spawn to a running process, in ms. */
const SPAWN_MS = { min: 1, max: 10 } as const;
/** Time a killed process takes to go, in ms. */
const KILL_MS = { min: 1, max: 5 } as const;

/** A task runner for one incarnation of one simulated node. Throws nothing. */
export function simTaskRunner(options: SimTaskRunnerOptions): TaskRunnerPort {
  const { clock, random, processes, nodeId, incarnation, queries } = options;
  return (spec, { signal, onStarted }) =>
    new Promise<TaskRun>((resolve) => {
      const behaviour = readSimTask(spec);
      // The agent starts the attempt the model shows, synchronously from this same state.
      const attempt = queries.task(behaviour.id)?.attempts ?? 0;
      const startedAtMs = clock.now();
      const timers: TimerHandle[] = [];
      let process: SimProcess | undefined;
      let answered = false;
      const answer = (outcome: TaskOutcome, exitCode: number | null, error: string): void => {
        if (answered) return;
        answered = true;
        resolve({
          outcome,
          result: {
            exitCode,
            stdout: `${behaviour.id} attempt ${attempt} on node ${nodeId}\n`,
            stderr: "",
            stdoutTruncated: false,
            stderrTruncated: false,
            durationMs: clock.now() - startedAtMs,
            error,
          },
        });
      };
      const exit = (outcome: TaskOutcome, exitCode: number | null, error: string): void => {
        for (const timer of timers) timer.cancel();
        if (process !== undefined && processes.isRunning(process)) {
          processes.end(process);
          options.onEvent(`node ${nodeId}: task ${behaviour.id}#${attempt} exits (${outcome})`);
        }
        answer(outcome, exitCode, error);
      };
      const kill = (): void => {
        if (answered) return;
        const cancel = isCancel(queries, behaviour.id, nodeId, attempt);
        if (options.leakAbandoned && !cancel && process !== undefined) {
          // The planted bug: the agent is told the attempt is gone, but nothing was killed.
          options.onEvent(`node ${nodeId}: task ${behaviour.id}#${attempt} LEAKED`);
          answer("cancelled", null, "cancelled: killed (not really: planted bug)");
          return;
        }
        timers.push(
          clock.setTimer(between(random, KILL_MS.min, KILL_MS.max), () =>
            exit("cancelled", null, "cancelled: killed with SIGTERM"),
          ),
        );
      };
      if (signal.aborted) {
        answer("cancelled", null, "cancelled before it started");
        return;
      }
      signal.addEventListener("abort", kill, { once: true });
      timers.push(
        clock.setTimer(between(random, SPAWN_MS.min, SPAWN_MS.max), () => {
          if (answered) return;
          process = processes.start({
            kind: "task",
            name: behaviour.id,
            nodeId,
            incarnation,
            attempt,
            startedAtMs: clock.now(),
          });
          options.onEvent(`node ${nodeId}: task ${behaviour.id}#${attempt} starts`);
          onStarted();
          const timeoutMs = spec.timeoutMs;
          const timesOut = timeoutMs > 0 && timeoutMs < behaviour.durationMs;
          // Not in `timers`: a leaked process still exits by itself at its natural end.
          clock.setTimer(timesOut ? timeoutMs : behaviour.durationMs, () => {
            if (timesOut) exit("timed_out", null, `timed out after ${timeoutMs} ms`);
            else if (behaviour.exitCode === 0) exit("succeeded", 0, "");
            else exit("failed", behaviour.exitCode, `exited with code ${behaviour.exitCode}`);
          });
        }),
      );
    });
}

/** True if the node's model asks to cancel this very attempt (else the agent abandoned it). */
function isCancel(
  queries: Pick<OrchestratorQueries, "task">,
  id: string,
  nodeId: NodeId,
  attempt: number,
): boolean {
  const task = queries.task(id);
  return (
    task !== undefined &&
    task.cancelRequested &&
    task.nodeId === nodeId &&
    task.attempts === attempt &&
    (task.status === "assigned" || task.status === "running")
  );
}
