import { optionHelp } from "./option-defaults.js";
import { Command, CommanderError } from "commander";
import { ERROR_CODES, isBlixardError } from "../common/errors.js";
import { registerAclCommands } from "./commands/acl.js";
import { registerAgentCommands } from "./commands/agent.js";
import { registerClusterCommands } from "./commands/cluster.js";
import { registerCompletionCommand } from "./commands/completion.js";
import { registerCoordinationCommands } from "./commands/coord.js";
import { registerDevCommand } from "./commands/dev.js";
import { registerEventsCommand } from "./commands/events.js";
import { registerImageCommands } from "./commands/image.js";
import { registerKvCommands } from "./commands/kv.js";
import { registerNodeCommands } from "./commands/node.js";
import { registerOperatorCommands } from "./commands/operator.js";
import { registerTaskCommands } from "./commands/task.js";
import { registerTlsCommands } from "./commands/tls.js";
import { registerVmCommands } from "./commands/vm.js";
import { registerWorkerCommands } from "./commands/worker.js";
import { ExitStatus } from "./exit-status.js";
import { packageVersion } from "./version.js";

/** Exit code for a command line the CLI could not parse. */
export const USAGE_EXIT_CODE = 64;

/** Builds the `blixard` command tree: `node`, `dev`, `kv`, `cluster`, `worker`, `task`, `vm` and `tls`. */
export function buildProgram(): Command {
  const program = new Command("blixard")
    .description(
      "Blixard: a distributed orchestration platform for microVMs and tasks,\n" +
        "on its own Raft consensus engine.",
    )
    .version(packageVersion(), "-V, --version", "print the version and exit")
    .helpOption("-h, --help", "show help for a command")
    .showHelpAfterError("(run with --help for usage)")
    // Before any subcommand exists: subcommands copy the help configuration when created.
    .configureHelp({
      commandDescription: (cmd) => reflow(cmd.description()),
      optionDescription: (option) => optionHelp(option),
    })
    .exitOverride();
  registerNodeCommands(program);
  registerAgentCommands(program);
  registerDevCommand(program);
  registerKvCommands(program);
  registerClusterCommands(program);
  registerWorkerCommands(program);
  registerTaskCommands(program);
  registerVmCommands(program);
  registerTlsCommands(program);
  registerAclCommands(program);
  registerImageCommands(program);
  registerEventsCommand(program);
  registerCoordinationCommands(program);
  registerOperatorCommands(program);
  // Last: its script lists every command registered before it.
  registerCompletionCommand(program);
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
    if (error instanceof ExitStatus) return error.exitCode;
    if (isBlixardError(error)) {
      // A script that asked for JSON gets its error as JSON too (one line, on stderr).
      process.stderr.write(
        wantsJson(argv)
          ? `${JSON.stringify({ error: { code: error.code, message: error.message } })}\n`
          : `error: ${error.message} [${error.code}]\n`,
      );
      return ERROR_CODES[error.code].exitCode;
    }
    throw error;
  }
}

/** Whether `--json` was given as an option (not as an argument after `--`). */
function wantsJson(argv: readonly string[]): boolean {
  const end = argv.indexOf("--");
  return (end === -1 ? argv : argv.slice(0, end)).includes("--json");
}

/**
 * Joins a description's hard-wrapped lines into one line per paragraph so that the help
 * formatter wraps them to the terminal once (wrapping hard-wrapped text again broke lines
 * mid-sentence). Blank lines separate paragraphs; indented lines (examples) stay as written.
 */
export function reflow(text: string): string {
  return text
    .split("\n\n")
    .map((paragraph) => paragraph.replace(/\n(?! )/g, " "))
    .join("\n\n");
}
