/**
 * `blixard vm migrate NAME [--to NODE] [--no-wait]`: live-migrates a running qemu VM to another
 * node (see `statemachine/orchestrator/vm-migration.ts`). By default it waits for the outcome:
 * the VM running on the target (exit 0), or rolled back to its node with the reason (exit 1).
 */
import { Option, type Command } from "commander";
import type { VmJson } from "../../api/schema/orchestrator.js";
import { ExitStatus } from "../exit-status.js";
import { defaultShown } from "../option-defaults.js";
import { parsePositiveInt } from "../options.js";
import { clientFrom, printJson, withClientOptions, type ClientOptions } from "./client-options.js";

/** Flags of `vm migrate`. */
interface MigrateOptions extends ClientOptions {
  readonly to?: number;
  readonly wait: boolean;
  readonly timeoutMs: number;
}

/** How often `vm migrate` asks how the migration is going. */
const POLL_MS = 250;
/** How long `vm migrate` waits for the outcome by default (TCG guests on busy hosts are slow). */
export const DEFAULT_MIGRATE_WAIT_MS = 180_000;

/** Registers `migrate` on the `vm` command. */
export function registerVmMigrateCommand(vm: Command): void {
  withClientOptions(
    vm
      .command("migrate")
      .summary("live-migrate qemu VM NAME to another node")
      .description(
        "live-migrate running qemu VM NAME to node --to (default: one the scheduler picks). The " +
          "guest keeps running, its memory and uptime intact; VMs with a disk (--image or " +
          "--disk) cannot migrate. Waits for the outcome unless --no-wait: exit 0 once the VM " +
          "runs on the target, 1 if the migration failed and the VM runs on where it was.",
      )
      .argument("<name>")
      .addOption(new Option("--to <node>", "the target node's id").argParser(parsePositiveInt))
      .option("--no-wait", "return once the migration started")
      .addOption(
        defaultShown(
          new Option("--timeout-ms <ms>", "how long to wait for the outcome").argParser(
            parsePositiveInt,
          ),
          DEFAULT_MIGRATE_WAIT_MS,
        ),
      ),
  ).action(async (name: string, options: MigrateOptions) => {
    const orchestrator = clientFrom(options).orchestrator;
    const started = await orchestrator.migrateVm(name, {
      ...(options.to === undefined ? {} : { to: options.to }),
    });
    const from = started.nodeId;
    const to = started.migration?.targetNodeId;
    if (!options.wait) {
      if (options.json === true) printJson(started);
      else process.stdout.write(`vm ${name}: migrating from node ${from} to node ${to}\n`);
      return;
    }
    const deadline = Date.now() + (options.timeoutMs ?? DEFAULT_MIGRATE_WAIT_MS);
    let vm: VmJson = started;
    while (vm.status === "migrating" && Date.now() < deadline) {
      await new Promise((resolve) => setTimeout(resolve, POLL_MS));
      vm = await orchestrator.getVm(name);
    }
    if (options.json === true) printJson(vm);
    if (vm.status === "migrating") {
      if (options.json !== true) {
        process.stdout.write(
          `vm ${name}: still migrating from node ${from} to node ${to}; see vm get ${name}\n`,
        );
      }
      throw new ExitStatus(1);
    }
    const moved = vm.nodeId === to;
    if (options.json !== true) {
      process.stdout.write(
        moved
          ? `vm ${name}: migrated from node ${from} to node ${to}, ${vm.status}\n`
          : `vm ${name}: not migrated (${vm.lastError || vm.status}); on node ${vm.nodeId}, ${vm.status}\n`,
      );
    }
    if (!moved) throw new ExitStatus(1);
  });
}
