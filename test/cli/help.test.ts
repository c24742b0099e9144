/**
 * The CLI's help text: descriptions wrap once (to the terminal), and each option's environment
 * variable is named once.
 */
import type { Command } from "commander";
import { describe, expect, it } from "vitest";
import { DEFAULT_TIMEOUT_MS } from "../../src/client/index.js";
import { DEFAULT_PROMOTE_WAIT_MS } from "../../src/cli/commands/cluster.js";
import { buildProgram, reflow } from "../../src/cli/main.js";

/** Every command of the tree, depth first. */
function allCommands(command: Command): Command[] {
  return [command, ...command.commands.flatMap((c) => allCommands(c))];
}

describe("CLI help", () => {
  it("reflows hard-wrapped paragraphs and keeps indented example lines", () => {
    expect(reflow("one line\nwrapped here.\n\n  blixard x\n  blixard y\nlast")).toBe(
      "one line wrapped here.\n\n  blixard x\n  blixard y last",
    );
  });

  it("wraps no description line mid-sentence at 80 columns", () => {
    for (const command of allCommands(buildProgram())) {
      command.configureOutput({ getOutHelpWidth: () => 80 });
      const help = command.helpInformation();
      const description = help.split("\n\nOptions:")[0] ?? "";
      for (const line of description.split("\n")) {
        expect(line.length, `${command.name()}: ${line}`).toBeLessThanOrEqual(80);
      }
      // A hard-wrapped source line re-wrapped leaves a short orphan line ("bootstrap a").
      const lines = description.split("\n").slice(2);
      for (let i = 0; i + 1 < lines.length; i++) {
        const line = lines[i]!;
        const next = lines[i + 1]!;
        if (line.trim() === "" || next.trim() === "" || next.startsWith(" ")) continue;
        expect(
          line.length + 1 + (next.split(" ")[0]?.length ?? 0),
          `${command.name()}: "${line}" could have held the next word`,
        ).toBeGreaterThan(80);
      }
    }
  });

  it("gives each --timeout the default the command really uses", () => {
    const cluster = buildProgram().commands.find((c) => c.name() === "cluster")!;
    const task = buildProgram().commands.find((c) => c.name() === "task")!;
    const timeoutHelp = (c: Command) =>
      c.options.find((o) => o.long === "--timeout")?.description ?? "";
    expect(timeoutHelp(cluster.commands.find((c) => c.name() === "promote")!)).toContain(
      `(default ${DEFAULT_PROMOTE_WAIT_MS})`,
    );
    expect(timeoutHelp(task.commands.find((c) => c.name() === "wait")!)).toContain("(default none");
    expect(timeoutHelp(task.commands.find((c) => c.name() === "cancel")!)).toContain(
      `(default ${DEFAULT_TIMEOUT_MS})`,
    );
  });

  it("names each option's environment variable once", () => {
    const help = buildProgram()
      .commands.find((c) => c.name() === "node")!
      .commands.find((c) => c.name() === "start")!
      .helpInformation();
    expect(help).not.toContain("[env ");
    expect(help.match(/BLIXARD_DATA_DIR/g)).toHaveLength(1);
  });
});
