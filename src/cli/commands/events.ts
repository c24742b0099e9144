/** `blixard events`: the cluster's event stream, one line per applied change. */
import { defaultShown } from "../option-defaults.js";
import { Command, Option } from "commander";
import type { ClusterEvent, EventTopic } from "../../client/index.js";
import { parsePositiveInt } from "../options.js";
import { clientFrom, printJson, withClientOptions, type ClientOptions } from "./client-options.js";

interface EventsCliOptions extends ClientOptions {
  readonly topic?: EventTopic[];
  readonly from?: number;
  readonly only?: string;
}

/** One line for people: index, topic, type, key and the entity's headline. */
function describe(event: ClusterEvent): string {
  const detail =
    event.task !== undefined
      ? ` ${event.task.status}${event.task.nodeId === null ? "" : ` on node ${event.task.nodeId}`}`
      : event.vm !== undefined
        ? ` ${event.vm.status} (desired ${event.vm.desired})`
        : event.worker !== undefined
          ? ` ${event.worker.status}`
          : event.kv?.value !== undefined
            ? ` ${event.kv.value}`
            : "";
  return `${event.index} ${event.topic} ${event.type} ${event.key}${detail}`;
}

/** Registers `events` on `program`. */
export function registerEventsCommand(program: Command): void {
  withClientOptions(
    program
      .command("events")
      .description(
        "print every change the cluster applies, in log order, as it happens; resumes by\n" +
          "itself across reconnects (exit 21 GONE if --from is no longer kept)",
      ),
  )
    .addOption(
      new Option("--topic <topic...>", "only these topics")
        .default(undefined, "all")
        .choices(["kv", "task", "vm", "worker", "cluster"]),
    )
    .addOption(
      defaultShown(
        new Option("--from <index>", "start at this raft index").argParser(parsePositiveInt),
        "now",
      ),
    )
    .option("--only <key>", "only events of this kv key, task id, VM name or node id")
    .action(async (options: EventsCliOptions) => {
      const controller = new AbortController();
      process.once("SIGINT", () => controller.abort());
      process.once("SIGTERM", () => controller.abort());
      for await (const event of clientFrom(options).events({
        ...(options.topic === undefined ? {} : { topics: options.topic }),
        ...(options.from === undefined ? {} : { from: options.from }),
        ...(options.only === undefined ? {} : { key: options.only }),
        signal: controller.signal,
      })) {
        if (options.json === true) printJson(event);
        else process.stdout.write(`${describe(event)}\n`);
      }
    });
}
