/**
 * `blixard task submit|list|get|wait|cancel|logs`. `submit` prints the new task's id; with
 * `--wait` it waits for the task to end, prints its stdout and stderr, and exits with the exit
 * code `task-exit-codes.ts` documents (the task's own when it exited).
 */
import { defaultShown } from "../option-defaults.js";
import {
  DEFAULT_TASK_PAGE,
  DEFAULT_TASK_RESOURCES,
  MAX_TASK_PAGE,
  TASK_SPEC_DEFAULTS,
} from "../../api/schema/orchestrator.js";
import { Option, type Command } from "commander";
import {
  TASK_STATUS_VALUES,
  type BlixardClient,
  type Task,
  type TaskSpecInput,
  type TaskStatus,
} from "../../client/index.js";
import { InternalError } from "../../common/errors.js";
import { ExitStatus } from "../exit-status.js";
import { parsePositiveInt } from "../options.js";
import { clientFrom, printJson, withClientOptions, type ClientOptions } from "./client-options.js";
import {
  collectEnv,
  collectFeatures,
  consistencyOption,
  parseCpu,
  parseNonNegativeInt,
  readFlags,
  type ReadCommandOptions,
} from "./orchestrator-flags.js";
import { formatDuration, taskDetails, tasksTable } from "./orchestrator-format.js";
import { Spinner } from "./spinner.js";
import { taskExitCode } from "./task-exit-codes.js";

/** Flags of `task submit`. */
interface SubmitOptions extends ClientOptions {
  readonly cpu?: number;
  readonly memory?: number;
  readonly disk?: number;
  readonly feature?: string[];
  readonly env?: Record<string, string>;
  readonly secretEnv?: Record<string, string>;
  readonly cwd?: string;
  readonly killAfter?: number;
  readonly maxAttempts?: number;
  readonly shell?: boolean;
  readonly wait?: boolean;
}

/** Flags of `task list`. */
interface ListOptions extends ReadCommandOptions {
  readonly status?: TaskStatus;
  readonly node?: number;
  readonly after?: string;
  readonly limit?: number;
}

const EXIT_CODES_HELP = `
Exit codes of --wait and \`task wait\`: the task's own exit code when it exited;
0 succeeded, 124 timed out, 125 lost (no attempts left), 127 failed to start,
128+N killed by signal N, 130 cancelled. Errors of Blixard itself keep their codes
(e.g. 3 no such task, 11 the wait's --timeout ran out).`;

/**
 * The task spec `submit`'s flags and operands describe. Only what was given is sent; the node
 * fills in the documented defaults.
 */
export function specFromFlags(
  command: string,
  args: readonly string[],
  options: SubmitOptions,
): TaskSpecInput {
  const resources = {
    ...(options.cpu === undefined ? {} : { cpuMillis: options.cpu }),
    ...(options.memory === undefined ? {} : { memoryMb: options.memory }),
    ...(options.disk === undefined ? {} : { diskGb: options.disk }),
  };
  // With --shell the operands form one script, as `ssh host cmd args` joins them.
  const shell = options.shell === true;
  return {
    command: shell ? [command, ...args].join(" ") : command,
    ...(shell ? { shell: true } : args.length === 0 ? {} : { args: [...args] }),
    ...(options.env === undefined && options.secretEnv === undefined
      ? {}
      : {
          env: {
            ...options.env,
            ...Object.fromEntries(
              Object.entries(options.secretEnv ?? {}).map(([name, value]) => [
                name,
                { value, secret: true },
              ]),
            ),
          },
        }),
    ...(options.cwd === undefined ? {} : { cwd: options.cwd }),
    ...(Object.keys(resources).length === 0 ? {} : { resources }),
    ...(options.feature === undefined ? {} : { requiredFeatures: options.feature }),
    ...(options.killAfter === undefined ? {} : { timeoutMs: options.killAfter }),
    ...(options.maxAttempts === undefined ? {} : { maxAttempts: options.maxAttempts }),
  };
}

/** Registers the `task` commands on `program`. */
export function registerTaskCommands(program: Command): void {
  const task = program
    .command("task")
    .description("run commands on the cluster: submit, watch, cancel, read their output");

  withClientOptions(
    task
      .command("submit")
      .summary("run COMMAND on a worker; prints the task id")
      .description(
        "run COMMAND ARGS... on a worker that fits; prints the task id. Put -- before the " +
          "command when it has options of its own: blixard task submit --cpu 1 -- ls -la",
      )
      .argument("<command>", "the program (looked up in the worker's PATH)")
      .argument("[args...]", "its arguments")
      .addOption(
        defaultShown(
          new Option("--cpu <cores>", "CPU: cores (0.5) or millicores (500m)").argParser(parseCpu),
          DEFAULT_TASK_RESOURCES.cpuMillis / 1000,
        ),
      )
      .addOption(
        defaultShown(
          new Option("--memory <mb>", "memory in MB").argParser(parseNonNegativeInt),
          DEFAULT_TASK_RESOURCES.memoryMb,
        ),
      )
      .addOption(
        defaultShown(
          new Option("--disk <gb>", "disk in GB").argParser(parseNonNegativeInt),
          DEFAULT_TASK_RESOURCES.diskGb,
        ),
      )
      .option("--feature <name>", "a feature the worker must have (repeatable)", collectFeatures)
      .option("--env <NAME=VALUE>", "an environment variable (repeatable)", collectEnv)
      .option(
        "--secret-env <NAME=VALUE>",
        "a secret environment variable: never shown by the API nor logged (repeatable)",
        collectEnv,
      )
      .addOption(
        defaultShown(new Option("--cwd <dir>", "working directory on the worker"), "the agent's"),
      )
      .addOption(
        defaultShown(
          new Option(
            "--kill-after <ms>",
            "kill the task after it has run this long (--timeout is the call's)",
          ).argParser(parseNonNegativeInt),
          `${TASK_SPEC_DEFAULTS.timeoutMs}: never`,
        ),
      )
      .addOption(
        defaultShown(
          new Option("--max-attempts <n>", "attempts in all when its node is lost").argParser(
            parsePositiveInt,
          ),
          TASK_SPEC_DEFAULTS.maxAttempts,
        ),
      )
      .option("--shell", "run the command line through /bin/sh -c")
      .option("--wait", "wait for the task, print its output, exit with its exit code")
      .addHelpText("after", EXIT_CODES_HELP),
  ).action(async (command: string, args: string[], options: SubmitOptions) => {
    const client = clientFrom(options);
    const submitted = await client.orchestrator.submitTask(specFromFlags(command, args, options));
    if (options.wait !== true) {
      if (options.json === true) printJson(submitted);
      else process.stdout.write(`${submitted.id}\n`);
      return;
    }
    await waitAndReport(client, submitted.id, options);
  });

  withClientOptions(
    task
      .command("list")
      .description("tasks in id order, one page (--limit, then --after the last id)")
      .addOption(
        new Option("--status <status>", "only tasks with this status").choices(TASK_STATUS_VALUES),
      )
      .option("--node <id>", "only tasks of this node", parsePositiveInt)
      .option("--after <id>", "tasks after this id (the next page)")
      .addOption(
        defaultShown(
          new Option("--limit <n>", `at most this many (at most ${MAX_TASK_PAGE})`).argParser(
            parsePositiveInt,
          ),
          DEFAULT_TASK_PAGE,
        ),
      )
      .addOption(consistencyOption()),
  ).action(async (options: ListOptions) => {
    const page = await clientFrom(options).orchestrator.listTasks({
      ...readFlags(options),
      ...(options.status === undefined ? {} : { status: options.status }),
      ...(options.node === undefined ? {} : { nodeId: options.node }),
      ...(options.after === undefined ? {} : { after: options.after }),
      ...(options.limit === undefined ? {} : { limit: options.limit }),
    });
    if (options.json === true) {
      printJson(page);
      return;
    }
    process.stdout.write(tasksTable(page.tasks));
    if (page.nextAfter !== undefined) {
      process.stderr.write(`(more: --after ${page.nextAfter})\n`);
    }
  });

  withClientOptions(
    task
      .command("get")
      .description("one task: status, node, attempts, result (exit 3 if unknown)")
      .argument("<id>")
      .addOption(consistencyOption()),
  ).action(async (id: string, options: ReadCommandOptions) => {
    const found = await clientFrom(options).orchestrator.getTask(id, readFlags(options));
    if (options.json === true) printJson(found);
    else process.stdout.write(taskDetails(found));
  });

  withClientOptions(
    task
      .command("wait")
      .summary("wait for a task; print its output; exit with its exit code")
      .description(
        "wait for task ID to end, print its stdout and stderr, and exit with its exit code " +
          "(within --timeout when given, else as long as it takes)",
      )
      .argument("<id>")
      .addHelpText("after", EXIT_CODES_HELP),
    "none: as long as the task takes",
  ).action(async (id: string, options: ClientOptions) => {
    await waitAndReport(clientFrom(options), id, options);
  });

  withClientOptions(
    task
      .command("cancel")
      .description("cancel a task: a pending one ends at once, a running one is killed")
      .argument("<id>"),
  ).action(async (id: string, options: ClientOptions) => {
    const cancelled = await clientFrom(options).orchestrator.cancelTask(id);
    if (options.json === true) printJson(cancelled);
    else if (cancelled.status === "cancelled") process.stdout.write(`task ${id} is cancelled\n`);
    else {
      // Assigned or running: its node's agent kills it and reports it cancelled.
      process.stdout.write(
        `task ${id}: cancel requested; node ${cancelled.nodeId ?? "?"} stops it (it is ${cancelled.status})\n`,
      );
    }
  });

  withClientOptions(
    task
      .command("logs")
      .description(
        "print the stdout and stderr captured from the task's last ended attempt; with --follow, its output as it is written until it ends",
      )
      .argument("<id>")
      .addOption(consistencyOption())
      .option(
        "-f, --follow",
        "stream the output as it is written (from the node that runs the task) until the task ends; exit with its exit code",
      ),
  ).action(async (id: string, options: ReadCommandOptions & { readonly follow?: boolean }) => {
    if (options.follow === true) {
      await followTaskOutput(clientFrom(options), id, options);
      return;
    }
    const logs = await clientFrom(options).orchestrator.taskLogs(id, readFlags(options));
    if (options.json === true) {
      printJson(logs);
      return;
    }
    if (!logs.available) {
      process.stderr.write(`task ${id} is ${logs.status} and has no output yet\n`);
      return;
    }
    writeOutput(logs.stdout, logs.stderr);
    noteTruncation(logs.stdoutTruncated, logs.stderrTruncated);
  });
}

/**
 * Prints task `id`'s output as it is written until it ends (one JSON line per message with
 * `--json`), then how it ended; throws {@link ExitStatus} with its exit code unless it succeeded.
 */
async function followTaskOutput(
  client: BlixardClient,
  id: string,
  options: ClientOptions,
): Promise<void> {
  for await (const event of client.orchestrator.followTaskLogs(id)) {
    if (options.json === true) process.stdout.write(`${JSON.stringify(event)}\n`);
    else if (event.type === "output") {
      (event.stream === "stdout" ? process.stdout : process.stderr).write(event.text);
    } else if (event.type === "attempt" && event.attempt > 1) {
      process.stderr.write(`[task ${id}: attempt ${event.attempt}]\n`);
    }
    if (event.type !== "end") continue;
    const ended = await client.orchestrator.getTask(id);
    if (options.json !== true && ended.status !== "succeeded") {
      process.stderr.write(`task ${id} ${howItEnded(ended)}\n`);
    }
    const exitCode = taskExitCode(ended) ?? 0;
    if (exitCode !== 0) throw new ExitStatus(exitCode);
    return;
  }
}

/**
 * Waits for task `id` with a spinner on a terminal, prints how it ended, and throws
 * {@link ExitStatus} with its exit code unless it succeeded.
 */
async function waitAndReport(
  client: BlixardClient,
  id: string,
  options: ClientOptions,
): Promise<void> {
  const spinner = new Spinner();
  spinner.update(`waiting for task ${id}`);
  let ended: Task;
  try {
    ended = await client.orchestrator.waitTask(id, {
      ...(options.timeout === undefined ? {} : { timeoutMs: options.timeout }),
      onProgress: (task) => spinner.update(`task ${id}: ${progress(task)}`),
    });
  } finally {
    spinner.stop();
  }
  const exitCode = taskExitCode(ended);
  if (exitCode === undefined) {
    throw new InternalError(`the wait for task ${id} ended while it is ${ended.status}`);
  }
  if (options.json === true) {
    printJson(ended);
  } else {
    const result = ended.result;
    if (result !== null) {
      writeOutput(result.stdout, result.stderr);
      noteTruncation(result.stdoutTruncated, result.stderrTruncated);
    }
    if (ended.status !== "succeeded") process.stderr.write(`task ${id} ${howItEnded(ended)}\n`);
  }
  if (exitCode !== 0) throw new ExitStatus(exitCode);
}

function progress(task: Task): string {
  if (task.status === "pending") {
    return task.pendingReason === "" ? "pending" : `pending: ${task.pendingReason}`;
  }
  return task.nodeId === null ? task.status : `${task.status} on node ${task.nodeId}`;
}

/** How a task ended, for people: "failed with exit code 2", "timed out after 5.0 s: …". */
export function howItEnded(task: Task): string {
  const result = task.result;
  const why = result === null || result.error === "" ? "" : `: ${result.error}`;
  switch (task.status) {
    case "succeeded":
      return "succeeded";
    case "failed":
      return result?.exitCode === null || result === null
        ? `failed${why || ": it did not start"}`
        : `failed with exit code ${result.exitCode}${why}`;
    case "timed_out":
      return task.spec.timeoutMs > 0
        ? `timed out after ${formatDuration(task.spec.timeoutMs)}${why}`
        : `timed out${why}`;
    case "cancelled":
      return `was cancelled${why}`;
    case "lost":
      return `was lost with its node after ${task.attempts} attempt(s)${why}`;
    default:
      return `is ${task.status}`;
  }
}

function writeOutput(stdout: string, stderr: string): void {
  if (stdout !== "") process.stdout.write(stdout);
  if (stderr !== "") process.stderr.write(stderr);
}

function noteTruncation(stdoutTruncated: boolean, stderrTruncated: boolean): void {
  const truncated = [stdoutTruncated ? "stdout" : "", stderrTruncated ? "stderr" : ""].filter(
    (s) => s !== "",
  );
  if (truncated.length > 0) {
    process.stderr.write(`(${truncated.join(" and ")} truncated: over the node's output cap)\n`);
  }
}
