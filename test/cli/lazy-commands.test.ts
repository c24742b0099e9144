/**
 * The CLI loads only the module of the command it runs (`buildProgram(name)`): that command's
 * tree, help and errors must read exactly as in the whole tree, and the table that says which
 * module registers which top-level command must stay true.
 */
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { buildProgram, COMMAND_MODULES } from "../../src/cli/main.js";

/** Every command of the tree with its path, depth first. */
function helpByPath(command: Command, path: string[] = []): Map<string, string> {
  command.configureOutput({ getOutHelpWidth: () => 100 });
  const help = new Map([[path.join(" "), command.helpInformation()]]);
  for (const sub of command.commands) {
    for (const [key, text] of helpByPath(sub, [...path, sub.name()])) help.set(key, text);
  }
  return help;
}

describe("the CLI's lazily loaded commands", () => {
  it("registers each module's commands, and only those, for each of its names", async () => {
    for (const module of COMMAND_MODULES) {
      for (const name of module.names) {
        const program = await buildProgram(name);
        expect(
          program.commands.flatMap((c) => [c.name(), ...c.aliases()]),
          name,
        ).toEqual(module.names);
      }
    }
  });

  it("builds the whole tree, in the table's order, for anything that names no command", async () => {
    const everyName = [...COMMAND_MODULES.flatMap((m) => m.names), "completion"];
    for (const first of [undefined, "--help", "-V", "help", "completion", "nosuch"]) {
      const program = await buildProgram(first);
      expect(
        program.commands.map((c) => c.name()),
        String(first),
      ).toEqual(everyName);
    }
  });

  it("gives a command alone the same help, at every level, as in the whole tree", async () => {
    const whole = helpByPath(await buildProgram());
    for (const name of COMMAND_MODULES.flatMap((m) => m.names)) {
      const alone = helpByPath(await buildProgram(name));
      for (const [path, help] of alone) {
        if (path === "") continue;
        expect(help, path).toBe(whole.get(path));
      }
      expect([...alone.keys()].filter((p) => p === name || p.startsWith(`${name} `)).length).toBe(
        [...whole.keys()].filter((p) => p === name || p.startsWith(`${name} `)).length,
      );
    }
  });
});
