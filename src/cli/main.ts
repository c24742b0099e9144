import { Command, CommanderError } from "commander";
import { ERROR_CODES, isBlixardError } from "../common/errors.js";
import { packageVersion } from "./version.js";

/** Exit code for a command line the CLI could not parse. */
export const USAGE_EXIT_CODE = 64;

/** Builds the `blixard` command tree. Later commands register themselves here. */
export function buildProgram(): Command {
  const program = new Command("blixard")
    .description(
      "Blixard: a distributed orchestration platform for microVMs and tasks,\n" +
        "on its own Raft consensus engine.",
    )
    .version(packageVersion(), "-V, --version", "print the version and exit")
    .helpOption("-h, --help", "show help for a command")
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  return program;
}

/**
 * Runs the CLI with `argv` (as `process.argv`) and resolves with the process exit code: 0 on
 * success, the error code's exit code for a Blixard error, {@link USAGE_EXIT_CODE} for bad usage.
 */
export async function main(argv: readonly string[]): Promise<number> {
  const program = buildProgram();
  try {
    if (argv.length <= 2) {
      program.outputHelp();
      return 0;
    }
    await program.parseAsync([...argv]);
    return 0;
  } catch (error) {
    if (error instanceof CommanderError) {
      // --help and --version end through here with exit code 0.
      return error.exitCode === 0 ? 0 : USAGE_EXIT_CODE;
    }
    if (isBlixardError(error)) {
      process.stderr.write(`error: ${error.message} [${error.code}]\n`);
      return ERROR_CODES[error.code].exitCode;
    }
    throw error;
  }
}
