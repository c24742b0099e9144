import { optionHelp } from "./option-defaults.js";
import { Command, CommanderError } from "commander";
import { ERROR_CODES, isBlixardError } from "../common/errors.js";
import { ExitStatus } from "./exit-status.js";
import { packageVersion } from "./version.js";

/** Exit code for a command line the CLI could not parse. */
export const USAGE_EXIT_CODE = 64;

/** A module that registers top-level commands, loaded only when one of them may run. */
interface CommandModule {
  /** The top-level commands (names and aliases) it registers. */
  readonly names: readonly string[];
  readonly load: () => Promise<(program: Command) => void>;
}

/**
 * Every top-level command's module, in the order of the help's list. Each is imported when
 * needed: loading them all (the client, the API's schemas, the dev cluster, TLS issuing…) cost
 * a `blixard node start` tens of milliseconds of its start-up, and a client command such as
 * `blixard kv get` twice its own start (0.55 s instead of 0.2 s on this machine kind).
 */
export const COMMAND_MODULES: readonly CommandModule[] = [
  { names: ["node"], load: async () => (await import("./commands/node.js")).registerNodeCommands },
  {
    names: ["agent"],
    load: async () => (await import("./commands/agent.js")).registerAgentCommands,
  },
  { names: ["dev"], load: async () => (await import("./commands/dev.js")).registerDevCommand },
  { names: ["kv"], load: async () => (await import("./commands/kv.js")).registerKvCommands },
  {
    names: ["cluster"],
    load: async () => (await import("./commands/cluster.js")).registerClusterCommands,
  },
  {
    names: ["worker"],
    load: async () => (await import("./commands/worker.js")).registerWorkerCommands,
  },
  { names: ["task"], load: async () => (await import("./commands/task.js")).registerTaskCommands },
  { names: ["vm"], load: async () => (await import("./commands/vm.js")).registerVmCommands },
  { names: ["tls"], load: async () => (await import("./commands/tls.js")).registerTlsCommands },
  { names: ["acl"], load: async () => (await import("./commands/acl.js")).registerAclCommands },
  {
    names: ["image"],
    load: async () => (await import("./commands/image.js")).registerImageCommands,
  },
  {
    names: ["events"],
    load: async () => (await import("./commands/events.js")).registerEventsCommand,
  },
  {
    names: ["lock", "elect", "lease"],
    load: async () => (await import("./commands/coord.js")).registerCoordinationCommands,
  },
  {
    names: ["operator"],
    load: async () => (await import("./commands/operator.js")).registerOperatorCommands,
  },
];

/**
 * Builds the `blixard` command tree: `node`, `dev`, `kv`, `cluster`, `worker`, `task`, `vm`,
 * `tls` and the rest. With `command` naming a top-level command, only that command's module is
 * loaded and registered: running it, its help and its usage errors mention no other command, so
 * they read exactly as with the whole tree. Anything else (no command, an option first, `help`,
 * `completion`, an unknown name) gets the whole tree.
 */
export async function buildProgram(command?: string): Promise<Command> {
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
  const only = COMMAND_MODULES.find((m) => command !== undefined && m.names.includes(command));
  // Imported together, registered in the help's order.
  const registrars = await Promise.all(
    (only === undefined ? COMMAND_MODULES : [only]).map((m) => m.load()),
  );
  for (const register of registrars) register(program);
  if (only === undefined) {
    // Last: its script lists every command registered before it.
    const { registerCompletionCommand } = await import("./commands/completion.js");
    registerCompletionCommand(program);
  }
  return program;
}

/**
 * Runs the CLI with `argv` (as `process.argv`) and resolves with the process exit code: 0 on
 * success, the error code's exit code for a Blixard error, {@link USAGE_EXIT_CODE} for bad usage.
 */
export async function main(argv: readonly string[]): Promise<number> {
  // argv[2] is the command when one is given first (the program itself has only -h and -V).
  const program = await buildProgram(argv[2]);
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
