/** The result the model writes for an attempt that ended without its agent's report. */
import type { TaskResult } from "./types.js";

/** A result with no exit code and no output, saying why in `error`. Throws nothing. */
export function syntheticResult(error: string): TaskResult {
  return Object.freeze({
    exitCode: null,
    stdout: "",
    stderr: "",
    stdoutTruncated: false,
    stderrTruncated: false,
    durationMs: 0,
    error,
  });
}
