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
