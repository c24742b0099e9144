/**
 * `blixard vm exec NAME [--command-timeout-ms N] -- COMMAND...`: runs a command in a qemu VM's guest
 * through the Blixard guest agent (a virtio-serial channel, see
 * `orchestrator/drivers/guest-agent-protocol.ts`), on the node that runs the VM, reached through
 * any node. The words after `--` are joined by spaces into one shell command line (`sh -c` in the
 * guest), as `ssh HOST COMMAND` does. Prints the output (stdout and stderr together) and exits
 * with the command's exit code.
 */
import { Option, type Command } from "commander";
import { DEFAULT_VM_EXEC_TIMEOUT_MS } from "../../api/schema/orchestrator.js";
import { ExitStatus } from "../exit-status.js";
import { defaultShown } from "../option-defaults.js";
import { parsePositiveInt } from "../options.js";
import { clientFrom, printJson, withClientOptions, type ClientOptions } from "./client-options.js";

/** Flags of `vm exec`. */
interface ExecOptions extends ClientOptions {
  readonly commandTimeoutMs?: number;
}

/** Registers `exec` on the `vm` command. */
export function registerVmExecCommand(vm: Command): void {
  withClientOptions(
    vm
      .command("exec")
      .summary("run a command in VM NAME's guest (qemu, Blixard guest agent)")
      .description(
        "run COMMAND in qemu VM NAME's guest through the Blixard guest agent, on the node that " +
          "runs it (through any node); put -- before the command. Prints its output (stdout and " +
          "stderr together, the first 64 KiB) and exits with its exit code (143: killed at the " +
          "timeout). Runs once: never retried.",
      )
      .argument("<name>")
      .argument("<command...>", "the command line, run with sh -c in the guest")
      .addOption(
        defaultShown(
          new Option(
            "--command-timeout-ms <ms>",
            "the guest kills the command after this (at most what the node's request deadline leaves)",
          ).argParser(parsePositiveInt),
          DEFAULT_VM_EXEC_TIMEOUT_MS,
        ),
      ),
  ).action(async (name: string, words: string[], options: ExecOptions) => {
    const result = await clientFrom(options).orchestrator.execInVm(name, words.join(" "), {
      ...(options.commandTimeoutMs === undefined
        ? {}
        : { commandTimeoutMs: options.commandTimeoutMs }),
    });
    if (options.json === true) printJson(result);
    else {
      process.stdout.write(result.output);
      if (result.truncated) {
        process.stderr.write("[output cut: only the first 64 KiB is kept]\n");
      }
    }
    // A shell's exit codes are 0..255; anything else still means failure.
    if (result.exitCode !== 0) {
      throw new ExitStatus(result.exitCode > 0 && result.exitCode <= 255 ? result.exitCode : 1);
    }
  });
}
