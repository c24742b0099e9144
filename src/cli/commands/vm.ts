/**
 * `blixard vm create|start|stop|delete|list|get|logs|exec|migrate`: long-running VMs. `create` records the VM and
 * its desired state; the node it is placed on starts it, and restarts it by its policy.
 */
import { defaultShown } from "../option-defaults.js";
import {
  DEFAULT_RESTART_POLICY,
  DEFAULT_VM_HEALTH,
  VM_SPEC_DEFAULTS,
} from "../../api/schema/orchestrator.js";
import { DEFAULT_VM_LOG_TAIL_LINES } from "../../orchestrator/drivers/vm-log-reader.js";
import {
  InvalidArgumentError as InvalidOptionArgumentError,
  Option,
  type Command,
} from "commander";
import type { VmSpecInput } from "../../client/index.js";
import { parsePositiveInt } from "../options.js";
import { clientFrom, printJson, withClientOptions, type ClientOptions } from "./client-options.js";
import {
  collectFeatures,
  consistencyOption,
  parseNonNegativeInt,
  readFlags,
  type ReadCommandOptions,
} from "./orchestrator-flags.js";
import { vmDetails, vmsTable } from "./orchestrator-format.js";
import { registerVmExecCommand } from "./vm-exec.js";
import { registerVmMigrateCommand } from "./vm-migrate.js";

/** Flags of `vm create`. */
interface CreateOptions extends ClientOptions {
  readonly driver: "process" | "qemu";
  readonly vcpus?: number;
  readonly memory?: number;
  readonly disk?: number;
  readonly feature?: string[];
  readonly antiAffinity?: string;
  readonly kernel?: string;
  readonly initrd?: string;
  readonly image?: string;
  readonly cmdline?: string;
  readonly restart?: "on-failure" | "never";
  readonly maxRestarts?: number;
  readonly backoffMs?: number;
  readonly stopped?: boolean;
  readonly publish?: PublishedPortInput[];
  readonly healthTcp?: number;
  readonly healthCmd?: string;
  readonly healthIntervalMs?: number;
  readonly healthTimeoutMs?: number;
  readonly healthFailures?: number;
}

/** Flags of `vm logs`. */
interface LogsOptions extends ClientOptions {
  readonly tail?: number;
  readonly follow?: boolean;
}

/** How often `vm logs --follow` asks for new console output. */

/** One `--publish HOSTPORT:GUESTPORT`. */
interface PublishedPortInput {
  readonly hostPort: number;
  readonly guestPort: number;
}

/**
 * Parses `--publish HOSTPORT:GUESTPORT` (or `PORT`, the same port on both sides) and collects
 * repeated flags.
 * @throws commander's InvalidArgumentError for anything else.
 */
export function collectPublish(
  value: string,
  previous: readonly PublishedPortInput[] = [],
): PublishedPortInput[] {
  const match = /^(\d{1,5})(?::(\d{1,5}))?$/.exec(value.trim());
  const hostPort = Number(match?.[1]);
  const guestPort = Number(match?.[2] ?? match?.[1]);
  if (match === null || !validPort(hostPort) || !validPort(guestPort)) {
    throw new InvalidOptionArgumentError(
      `"${value}" is not HOSTPORT:GUESTPORT (ports 1 to 65535), e.g. 8080:80`,
    );
  }
  return [...previous, { hostPort, guestPort }];
}

function validPort(port: number): boolean {
  return Number.isInteger(port) && port >= 1 && port <= 65_535;
}

/**
 * The VM spec `create`'s flags and operands describe. Only what was given is sent; the node
 * fills in the documented defaults and says which fields the driver needs.
 */
export function vmSpecFromFlags(command: readonly string[], options: CreateOptions): VmSpecInput {
  const [program, ...args] = command;
  const restart = {
    ...(options.restart === undefined ? {} : { mode: options.restart }),
    ...(options.maxRestarts === undefined ? {} : { maxRestarts: options.maxRestarts }),
    ...(options.backoffMs === undefined ? {} : { backoffMs: options.backoffMs }),
  };
  return {
    driver: options.driver,
    ...(options.vcpus === undefined ? {} : { vcpus: options.vcpus }),
    ...(options.memory === undefined ? {} : { memoryMb: options.memory }),
    ...(options.disk === undefined ? {} : { diskGb: options.disk }),
    ...(program === undefined ? {} : { command: program }),
    ...(args.length === 0 ? {} : { args }),
    ...(options.kernel === undefined ? {} : { kernel: options.kernel }),
    ...(options.initrd === undefined ? {} : { initrd: options.initrd }),
    ...(options.image === undefined ? {} : { image: options.image }),
    ...(options.cmdline === undefined ? {} : { cmdline: options.cmdline }),
    ...(options.feature === undefined ? {} : { requiredFeatures: options.feature }),
    ...(options.antiAffinity === undefined ? {} : { antiAffinityGroup: options.antiAffinity }),
    ...(Object.keys(restart).length === 0 ? {} : { restart }),
    ...(options.publish === undefined ? {} : { publish: options.publish }),
    ...healthFromFlags(options),
  };
}

/**
 * The health check of `--health-tcp` or `--health-cmd` with its timings, or nothing. The timing
 * flags alone make no check (the server refuses a check with neither probe, saying so).
 */
function healthFromFlags(options: CreateOptions): Pick<VmSpecInput, "health"> {
  const probe = {
    ...(options.healthTcp === undefined ? {} : { tcpPort: options.healthTcp }),
    ...(options.healthCmd === undefined ? {} : { command: options.healthCmd }),
  };
  const timing = {
    ...(options.healthIntervalMs === undefined ? {} : { intervalMs: options.healthIntervalMs }),
    ...(options.healthTimeoutMs === undefined ? {} : { timeoutMs: options.healthTimeoutMs }),
    ...(options.healthFailures === undefined ? {} : { failureThreshold: options.healthFailures }),
  };
  if (Object.keys(probe).length === 0 && Object.keys(timing).length === 0) return {};
  return { health: { ...probe, ...timing } };
}

/** Registers the `vm` commands on `program`. */
export function registerVmCommands(program: Command): void {
  const vm = program.command("vm").description("create and run long-lived VMs on the cluster");

  withClientOptions(
    vm
      .command("create")
      .summary("create VM NAME (running unless --stopped)")
      .description(
        "create VM NAME. The process driver runs COMMAND ARGS... as a supervised process " +
          "(put -- before a command with options of its own); the qemu driver boots --kernel " +
          "(with --initrd and --cmdline) or --image in a microvm.",
      )
      .argument("<name>", "lowercase letters, digits and -, at most 63")
      .argument("[command...]", "process driver: the program and its arguments")
      .addOption(
        new Option("--driver <driver>", "how to run it")
          .choices(["process", "qemu"])
          .makeOptionMandatory(),
      )
      .addOption(
        defaultShown(
          new Option("--vcpus <n>", "virtual CPUs").argParser(parsePositiveInt),
          VM_SPEC_DEFAULTS.vcpus,
        ),
      )
      .addOption(
        defaultShown(
          new Option("--memory <mb>", "memory in MB").argParser(parseNonNegativeInt),
          VM_SPEC_DEFAULTS.memoryMb,
        ),
      )
      .addOption(
        defaultShown(
          new Option("--disk <gb>", "disk in GB").argParser(parseNonNegativeInt),
          VM_SPEC_DEFAULTS.diskGb,
        ),
      )
      .option("--feature <name>", "a feature the worker must have (repeatable)", collectFeatures)
      .option("--anti-affinity <group>", "never share a worker with another VM of this group")
      .option("--kernel <path>", "qemu: the kernel's path on the worker")
      .option("--initrd <path>", "qemu: an initrd's path on the worker")
      .option("--image <path>", "qemu: a disk image's path on the worker")
      .option("--cmdline <text>", "qemu: the kernel command line")
      .option(
        "--publish <host:guest>",
        "qemu: forward TCP HOSTPORT on the VM's node to GUESTPORT in the guest (repeatable)",
        collectPublish,
      )
      .addOption(
        new Option(
          "--health-tcp <port>",
          "qemu: healthy while this guest TCP port accepts connections (probed by the VM's node)",
        ).argParser(parsePositiveInt),
      )
      .option(
        "--health-cmd <command>",
        "qemu: healthy while this shell command exits 0 in the guest (through the guest agent)",
      )
      .addOption(
        defaultShown(
          new Option("--health-interval-ms <ms>", "between health probes").argParser(
            parsePositiveInt,
          ),
          DEFAULT_VM_HEALTH.intervalMs,
        ),
      )
      .addOption(
        defaultShown(
          new Option("--health-timeout-ms <ms>", "one health probe's limit").argParser(
            parsePositiveInt,
          ),
          DEFAULT_VM_HEALTH.timeoutMs,
        ),
      )
      .addOption(
        defaultShown(
          new Option(
            "--health-failures <n>",
            "failed probes in a row before the VM is unhealthy",
          ).argParser(parsePositiveInt),
          DEFAULT_VM_HEALTH.failureThreshold,
        ),
      )
      .addOption(
        defaultShown(
          new Option("--restart <mode>", "restart policy").choices(["on-failure", "never"]),
          DEFAULT_RESTART_POLICY.mode,
        ),
      )
      .addOption(
        defaultShown(
          new Option("--max-restarts <n>", "restarts before giving up").argParser(
            parseNonNegativeInt,
          ),
          DEFAULT_RESTART_POLICY.maxRestarts,
        ),
      )
      .addOption(
        defaultShown(
          new Option("--backoff-ms <ms>", "first restart delay, doubling").argParser(
            parseNonNegativeInt,
          ),
          DEFAULT_RESTART_POLICY.backoffMs,
        ),
      )
      .option("--stopped", "create it with desired state stopped"),
  ).action(async (name: string, command: string[], options: CreateOptions) => {
    const created = await clientFrom(options).orchestrator.createVm(
      name,
      vmSpecFromFlags(command, options),
      { desired: options.stopped === true ? "stopped" : "running" },
    );
    if (options.json === true) printJson(created);
    else
      process.stdout.write(`vm ${name} created: desired ${created.desired}, ${created.status}\n`);
  });

  for (const [verb, description] of [
    ["start", "set VM NAME's desired state to running"],
    ["stop", "set VM NAME's desired state to stopped"],
  ] as const) {
    withClientOptions(vm.command(verb).description(description).argument("<name>")).action(
      async (name: string, options: ClientOptions) => {
        const orchestrator = clientFrom(options).orchestrator;
        const changed =
          verb === "start" ? await orchestrator.startVm(name) : await orchestrator.stopVm(name);
        if (options.json === true) printJson(changed);
        else process.stdout.write(`vm ${name}: desired ${changed.desired}, ${changed.status}\n`);
      },
    );
  }

  withClientOptions(
    vm.command("delete").description("delete VM NAME; its node stops it").argument("<name>"),
  ).action(async (name: string, options: ClientOptions) => {
    await clientFrom(options).orchestrator.deleteVm(name);
    if (options.json === true) printJson({ deleted: true, name });
    else process.stdout.write(`vm ${name} deleted\n`);
  });

  withClientOptions(vm.command("list").description("every VM: desired and observed state, node"))
    .addOption(consistencyOption())
    .action(async (options: ReadCommandOptions) => {
      const vms = await clientFrom(options).orchestrator.listVms(readFlags(options));
      if (options.json === true) printJson({ vms });
      else process.stdout.write(vmsTable(vms));
    });

  withClientOptions(
    vm
      .command("logs")
      .description(
        "VM NAME's serial console, from the node that runs it (through any node): the last lines, and with --follow what comes next",
      )
      .argument("<name>")
      .addOption(
        defaultShown(
          new Option("--tail <n>", "the last N lines").argParser(parseNonNegativeInt),
          DEFAULT_VM_LOG_TAIL_LINES,
        ),
      )
      .option("-f, --follow", "keep printing new console output until interrupted"),
  ).action(async (name: string, options: LogsOptions) => {
    const orchestrator = clientFrom(options).orchestrator;
    if (options.follow !== true) {
      const answer = await orchestrator.vmLogs(name, {
        ...(options.tail === undefined ? {} : { tail: options.tail }),
      });
      process.stdout.write(answer.text);
      return;
    }
    // Streamed by the node that runs the VM as it is written (no polling), until it is deleted.
    for await (const event of orchestrator.followVmLogs(name, {
      ...(options.tail === undefined ? {} : { tail: options.tail }),
    })) {
      if (event.type === "output") process.stdout.write(event.text);
      else if (event.type === "rotated") {
        process.stderr.write(`[the console log of vm ${name} was rotated]\n`);
      } else if (event.type === "moved") {
        process.stderr.write(`[vm ${name} now runs on node ${event.nodeId}]\n`);
      } else process.stderr.write(`[vm ${name} was deleted]\n`);
    }
  });

  registerVmExecCommand(vm);
  registerVmMigrateCommand(vm);

  withClientOptions(vm.command("get").description("one VM (exit 3 if unknown)").argument("<name>"))
    .addOption(consistencyOption())
    .action(async (name: string, options: ReadCommandOptions) => {
      const client = clientFrom(options);
      const found = await client.orchestrator.getVm(name, readFlags(options));
      if (options.json === true) printJson(found);
      else process.stdout.write(vmDetails(found, await nodeHost(client, found.nodeId)));
    });
}

/**
 * The host name of node `nodeId`'s API address (where its published ports listen), or
 * undefined when unknown or not readable with this credential. Throws nothing.
 */
async function nodeHost(
  client: ReturnType<typeof clientFrom>,
  nodeId: number | null,
): Promise<string | undefined> {
  if (nodeId === null) return undefined;
  try {
    const { members } = await client.members();
    const address = members.find((m) => m.id === nodeId)?.apiAddress;
    return address === undefined ? undefined : new URL(address).hostname;
  } catch {
    return undefined;
  }
}
