/**
 * An exit status a command chose on purpose that is not an error's code: `task submit --wait`
 * and `task wait` exit with the task's own exit code. `main` returns it as the process's exit
 * code without printing anything (the command has said what needed saying).
 */
export class ExitStatus extends Error {
  /** @param exitCode the process exit code, 1..255. */
  constructor(readonly exitCode: number) {
    super(`exit status ${exitCode}`);
    this.name = "ExitStatus";
  }
}

/** `node start`'s exit code when the node was removed from the cluster (and stopped). */
export const REMOVED_EXIT_CODE = 20;

/** The node stopped because it is not a member any more: `node start` exits with {@link REMOVED_EXIT_CODE}. */
export class RemovedFromClusterExit extends ExitStatus {
  constructor(readonly how: string) {
    super(REMOVED_EXIT_CODE);
    this.name = "RemovedFromClusterExit";
    this.message = `removed from the cluster (${how})`;
  }
}
