/** `blixard worker list|get|drain|undrain`: the cluster's nodes as places to run work. */
import type { Command } from "commander";
import { parsePositiveInt } from "../options.js";
import { clientFrom, printJson, withClientOptions, type ClientOptions } from "./client-options.js";
import { consistencyOption, readFlags, type ReadCommandOptions } from "./orchestrator-flags.js";
import { workerDetails, workersTable } from "./orchestrator-format.js";

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
        "place nothing new on node NODE and move its tasks (no attempt spent) and VMs elsewhere now",
      ),
  )
    .argument("<node>", "the worker's node id", parsePositiveInt)
    .action(async (nodeId: number, options: ClientOptions) => {
      const drained = await clientFrom(options).orchestrator.drainWorker(nodeId);
      if (options.json === true) printJson(drained);
      else {
        const { tasks, vms } = drained.moved;
        process.stdout.write(
          `worker ${nodeId} is ${drained.status}; moved ${tasks} task${tasks === 1 ? "" : "s"} ` +
            `and ${vms} VM${vms === 1 ? "" : "s"} to other workers\n`,
        );
      }
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
