/**
 * Simulated tasks carry their behaviour in their spec, so that every attempt of a task behaves
 * alike wherever it runs (as a real command would): command `sim-task`, arguments
 * `[id, durationMs, exitCode]`. The id lets the simulated runner name its process (the agent's
 * runner port is given only the spec).
 */
import type { TaskSpec } from "../../statemachine/orchestrator/types.js";

/** The command of every simulated task. */
export const SIM_TASK_COMMAND = "sim-task";

/** What a simulated task does when it runs. */
export interface SimTaskBehaviour {
  readonly id: string;
  /** How long it runs before exiting by itself. */
  readonly durationMs: number;
  /** Its exit code then. */
  readonly exitCode: number;
}

/** The arguments of a task with `behaviour`. Throws nothing. */
export function simTaskArgs(behaviour: SimTaskBehaviour): string[] {
  return [behaviour.id, String(behaviour.durationMs), String(behaviour.exitCode)];
}

/**
 * The behaviour a spec asks for.
 * @throws Error if the spec is not a simulated task's (the simulator built it wrong: a bug).
 */
export function readSimTask(spec: Pick<TaskSpec, "command" | "args">): SimTaskBehaviour {
  const [id, duration, exit] = spec.args;
  const durationMs = Number(duration);
  const exitCode = Number(exit);
  if (
    spec.command !== SIM_TASK_COMMAND ||
    id === undefined ||
    !Number.isSafeInteger(durationMs) ||
    !Number.isSafeInteger(exitCode)
  ) {
    throw new Error(`not a simulated task spec: ${spec.command} ${spec.args.join(" ")}`);
  }
  return { id, durationMs, exitCode };
}
