/**
 * The environment a task starts with: a fixed allow-list set by the node, then the spec's `env`
 * and `secretEnv` (whose names the model already checked: no `PATH`, `LD_*` or loader and
 * interpreter start-up variables, see `statemachine/orchestrator/env-names.ts`). Nothing else of
 * the node's own environment reaches a task.
 *
 * | variable            | value                                                    |
 * | ------------------- | -------------------------------------------------------- |
 * | `PATH`              | the node's `PATH` (the operator's), else {@link FALLBACK_PATH} |
 * | `HOME`, `TMPDIR`    | the task's own working directory                         |
 * | `USER`, `LOGNAME`   | the task user's name                                     |
 * | `LANG`, `LC_ALL`, `TZ` | the node's, when set                                  |
 */
import { FALLBACK_PATH } from "../drivers/child-env.js";

/** Variables passed from the node's environment when set there. */
export const PASSED_ENV_NAMES: readonly string[] = ["LANG", "LC_ALL", "TZ"];

/** The node-set part of a task's environment. Throws nothing. */
export function taskBaseEnv(options: {
  /** The task's working directory. */
  readonly dir: string;
  /** The task user's name. */
  readonly userName: string;
  /** The node's environment (default `process.env`). */
  readonly nodeEnv?: Readonly<Record<string, string | undefined>>;
}): Record<string, string> {
  const nodeEnv = options.nodeEnv ?? process.env;
  const env: Record<string, string> = {
    PATH: nodeEnv["PATH"] ?? FALLBACK_PATH,
    HOME: options.dir,
    TMPDIR: options.dir,
    USER: options.userName,
    LOGNAME: options.userName,
  };
  for (const name of PASSED_ENV_NAMES) {
    const value = nodeEnv[name];
    if (value !== undefined) env[name] = value;
  }
  return env;
}
