import { existsSync, readFileSync, statSync } from "node:fs";
import { ESLint } from "eslint";
import tseslint from "typescript-eslint";
import { describe, expect, it } from "vitest";
import { DETERMINISTIC_FOLDERS } from "../../eslint.config.js";

const fixture = readFileSync(new URL("../fixtures/nondeterministic.ts", import.meta.url), "utf8");

async function lintAs(filePath: string, code: string): Promise<string[]> {
  // The files named here do not exist, so the type-aware rules (which need the file in the
  // TypeScript project) are off; the rules under test read syntax only.
  const eslint = new ESLint({ overrideConfig: tseslint.configs.disableTypeChecked });
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.line}:${m.ruleId ?? "parse"}`);
}

describe("determinism lint rule (src/common, src/raft, src/statemachine with the scheduler)", () => {
  it("guards folders that exist, the scheduler's among them", () => {
    for (const folder of DETERMINISTIC_FOLDERS) {
      expect(existsSync(folder) && statSync(folder).isDirectory(), folder).toBe(true);
    }
    expect(existsSync("src/statemachine/orchestrator/scheduler.ts")).toBe(true);
  });

  for (const folder of DETERMINISTIC_FOLDERS) {
    it(`rejects clock, timers, randomness, process, node: and platform imports in ${folder}`, async () => {
      const messages = await lintAs(`${folder}/fixture.ts`, fixture);
      expect(messages).toEqual([
        "2:no-restricted-imports",
        "3:no-restricted-imports",
        "5:no-restricted-globals",
        "6:no-restricted-properties",
        "7:no-restricted-globals",
        "8:no-restricted-globals",
      ]);
    });
  }

  it("rejects access through globalThis", async () => {
    const messages = await lintAs("src/raft/x.ts", "export const t = globalThis.Date.now();\n");
    expect(messages).toEqual(["1:no-restricted-properties"]);
  });

  it("allows the same code in the runtime, which gets time through its Clock port", async () => {
    const messages = await lintAs("src/node/fixture.ts", "export const now = Date.now();\n");
    expect(messages).toEqual([]);
  });
});
