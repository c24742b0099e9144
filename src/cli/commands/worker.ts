/** `blixard worker list|get|drain|undrain`: the cluster's nodes as places to run work. */
import { InvalidArgumentError, Option, type Command } from "commander";
import type { DrainedWorker } from "../../client/index.js";
import { MAX_DRAIN_DEADLINE_MS } from "../../statemachine/orchestrator/limits.js";
import { parseDuration, parsePositiveInt } from "../options.js";
import { waitForDrain } from "./drain-progress.js";
import { clientFrom, printJson, withClientOptions, type ClientOptions } from "./client-options.js";
import { consistencyOption, readFlags, type ReadCommandOptions } from "./orchestrator-flags.js";
import { formatDuration, formatTime, workerDetails, workersTable } from "./orchestrator-format.js";

/** Parsed options of `worker drain`. */
interface DrainCommandOptions extends ClientOptions {
  readonly deadline: number;
  readonly detach?: boolean;
}

/** A `--deadline` in ms, at most the model's bound. */
function parseDrainDeadline(value: string): number {
  const ms = parseDuration(value);
  if (ms > MAX_DRAIN_DEADLINE_MS) {
    throw new InvalidArgumentError(
      `"${value}" is longer than the longest drain deadline, ${formatDuration(MAX_DRAIN_DEADLINE_MS)}`,
    );
  }
  return ms;
}

function plural(count: number, what: string): string {
  return `${count} ${what}${count === 1 ? "" : "s"}`;
}

/** What a drain did, in one line. */
function drainSummary(drained: DrainedWorker): string {
  const { tasks, vms } = drained.moved;
  const moved = `moved ${plural(tasks, "task")} and ${plural(vms, "VM")} to other workers`;
  const deadline = drained.drainDeadlineMs;
  const rest =
    deadline === undefined
      ? ""
      : `; running tasks may finish here until ${formatTime(deadline)}, then they move`;
  return `worker ${drained.nodeId} is ${drained.status}; ${moved}${rest}`;
}

/** Registers the `worker` commands on `program`. */
export function registerWorkerCommands(program: Command): void {
  const worker = program
    .command("worker")
    .description("list the workers (every node is one) and drain them for maintenance");

  withClientOptions(
    worker.command("list").description("workers: status, allocated/capacity, features"),
  )
    .addOption(consistencyOption())
    .action(async (options: ReadCommandOptions) => {
      const workers = await clientFrom(options).orchestrator.listWorkers(readFlags(options));
      if (options.json === true) printJson({ workers });
      else process.stdout.write(workersTable(workers));
    });

  withClientOptions(worker.command("get").description("one worker (exit 3 if unknown)"))
    .argument("<node>", "the worker's node id", parsePositiveInt)
    .addOption(consistencyOption())
    .action(async (nodeId: number, options: ReadCommandOptions) => {
      const found = await clientFrom(options).orchestrator.getWorker(nodeId, readFlags(options));
      if (options.json === true) printJson(found);
      else process.stdout.write(workerDetails(found));
    });

  withClientOptions(
    worker
      .command("drain")
      .description(
        "place nothing new on node NODE and move its work elsewhere: VMs and tasks not yet " +
          "running now, running tasks now or, with --deadline, when they finish or the deadline " +
          "passes (no attempt spent); waits until NODE holds nothing (drained), showing progress",
      ),
  )
    .argument("<node>", "the worker's node id", parsePositiveInt)
    .addOption(
      new Option(
        "--deadline <duration>",
        "let running tasks finish on NODE for this long (30s, 5m, 1h30m), then move them",
      )
        .argParser(parseDrainDeadline)
        .default(0, "0: move them now"),
    )
    .option("--detach", "return once the drain is applied; do not wait for NODE to be drained")
    .action(async (nodeId: number, options: DrainCommandOptions) => {
      const client = clientFrom(options);
      const drained = await client.orchestrator.drainWorker(nodeId, {
        deadlineMs: options.deadline,
      });
      const { moved } = drained;
      if (options.detach === true || drained.status !== "draining") {
        if (options.json === true) printJson(drained);
        else process.stdout.write(`${drainSummary(drained)}\n`);
        return;
      }
      if (options.json !== true) process.stdout.write(`${drainSummary(drained)}\n`);
      const final = await waitForDrain(client, nodeId);
      if (options.json === true) printJson({ ...final, moved });
      else process.stdout.write(`worker ${nodeId} is ${final.status}\n`);
    });

  withClientOptions(
    worker.command("undrain").description("put a drained node NODE back in service"),
  )
    .argument("<node>", "the worker's node id", parsePositiveInt)
    .action(async (nodeId: number, options: ClientOptions) => {
      const undrained = await clientFrom(options).orchestrator.undrainWorker(nodeId);
      if (options.json === true) printJson(undrained);
      else process.stdout.write(`worker ${nodeId} is ${undrained.status}\n`);
    });
}
