/** `blixard completion`: the generated bash script completes commands and options in bash. */
import { spawnSync } from "node:child_process";
import { beforeAll, describe, expect, it } from "vitest";
import { completionScript, completionTable } from "../../src/cli/commands/completion.js";
import { buildProgram } from "../../src/cli/main.js";

/** What bash's completion offers after `words` (the last one being completed). */
function complete(script: string, words: readonly string[]): string[] {
  const quoted = words.map((w) => `'${w}'`).join(" ");
  const result = spawnSync(
    "bash",
    [
      "-c",
      `${script}\nCOMP_WORDS=(${quoted}); COMP_CWORD=${words.length - 1}; _blixard; printf '%s\\n' "\${COMPREPLY[@]}"`,
    ],
    { encoding: "utf8" },
  );
  expect(result.stderr).toBe("");
  return result.stdout.split("\n").filter((l) => l !== "");
}

describe("blixard completion", () => {
  let script = "";
  beforeAll(async () => {
    script = completionScript(await buildProgram(), "bash");
  });

  it("completes top-level commands, subcommands and options, skipping options in the path", () => {
    expect(complete(script, ["blixard", "k"])).toEqual(["kv"]);
    expect(complete(script, ["blixard", "kv", "g"])).toEqual(["get"]);
    expect(complete(script, ["blixard", "--json", "cluster", "pro"])).toEqual(["promote"]);
    expect(complete(script, ["blixard", "task", "submit", "--kill"])).toEqual(["--kill-after"]);
    expect(complete(script, ["blixard", "nosuch", ""])).toContain("kv");
  });

  it("lists every command of the tree, the completion command included", async () => {
    const table = completionTable(await buildProgram());
    expect(table.get("")).toContain("completion");
    expect(table.get("operator snapshot")).toEqual(expect.arrayContaining(["save", "restore"]));
    expect(completionScript(await buildProgram(), "zsh")).toMatch(/^autoload -U \+X bashcompinit/);
  });
});
