/** The result the model writes for an attempt that ended without its agent's report. */
import type { TaskResult } from "./types.js";

/**
 * A result with no exit code and no output, saying why in `error`: what the model writes for an
 * attempt that ended without its agent's report, and what an agent reports for a run that never
 * started. Throws nothing.
 */
export function syntheticResult(error: string, durationMs = 0): TaskResult {
  return Object.freeze({
    exitCode: null,
    stdout: "",
    stderr: "",
    stdoutTruncated: false,
    stderrTruncated: false,
    durationMs,
    error,
  });
}
