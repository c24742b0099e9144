/**
 * The exit code of `blixard task wait` and `task submit --wait`: the task's own exit code when it
 * ran to an exit, else a code that says how it ended, following shell conventions where one
 * exists. A task can itself exit with any of these codes; `--json` gives the status exactly.
 *
 * | how the task ended                         | exit code                              |
 * | ------------------------------------------ | -------------------------------------- |
 * | succeeded                                  | 0                                      |
 * | failed with exit code N                    | N (1 if a failure reported exit 0)     |
 * | timed out (killed after `timeoutMs`)       | 124, as GNU `timeout`                  |
 * | lost (its node died, no attempts left)     | 125                                    |
 * | failed to start (spawn failed)             | 127, as a shell's "command not found"  |
 * | killed by signal N (not by Blixard)        | 128 + N, as shells report it           |
 * | cancelled                                  | 130, as a shell reports an interrupt   |
 */
import { constants } from "node:os";
import type { Task } from "../../client/index.js";

/** A task that timed out. */
export const EXIT_TIMED_OUT = 124;
/** A task lost with its node, with no attempts left. */
export const EXIT_LOST = 125;
/** A task whose process could not be started. */
export const EXIT_FAILED_TO_START = 127;
/** Added to a signal's number for a task killed by that signal. */
export const EXIT_SIGNAL_BASE = 128;
/** A cancelled task. */
export const EXIT_CANCELLED = 130;

const SIGNAL_NAME = /\b(SIG[A-Z0-9]+)\b/;

/** The signal number named in `error` (e.g. "killed by SIGKILL"), if any. Throws nothing. */
function signalNumber(error: string): number | undefined {
  const name = SIGNAL_NAME.exec(error)?.[1];
  if (name === undefined) return undefined;
  return (constants.signals as Record<string, number | undefined>)[name];
}

/**
 * The exit code that reports how `task` ended (see the table above). A task that has not ended
 * yet has none: undefined. Throws nothing.
 */
export function taskExitCode(task: Task): number | undefined {
  const result = task.result;
  switch (task.status) {
    case "succeeded":
      return 0;
    case "timed_out":
      return EXIT_TIMED_OUT;
    case "lost":
      return EXIT_LOST;
    case "cancelled":
      return EXIT_CANCELLED;
    case "failed": {
      const exitCode = result?.exitCode ?? null;
      if (exitCode !== null) return exitCode >= 1 && exitCode <= 255 ? exitCode : 1;
      const signal = signalNumber(result?.error ?? "");
      return signal === undefined ? EXIT_FAILED_TO_START : EXIT_SIGNAL_BASE + signal;
    }
    default:
      return undefined;
  }
}
