import { ESLint } from "eslint";
import tseslint from "typescript-eslint";
import { describe, expect, it } from "vitest";

async function lintAs(filePath: string, code: string): Promise<string[]> {
  // The files named here do not exist, so the type-aware rules (which need the file in the
  // TypeScript project) are off; the rules under test read syntax only.
  const eslint = new ESLint({ overrideConfig: tseslint.configs.disableTypeChecked });
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.line}:${m.ruleId ?? "parse"}`);
}

const doubleCast = 'export const n = "1" as unknown as number;\n';
const coreImport = 'import { rawNodeCore } from "./rawnode.js";\nexport const f = rawNodeCore;\n';

describe("sealed types lint rules (no `as unknown as`, no reaching into RawNode)", () => {
  for (const file of ["src/raft/x.ts", "src/node/x.ts", "src/sim/checkers/x.ts", "src/x.test.ts"]) {
    it(`rejects \`as unknown as\` in ${file}`, async () => {
      expect(await lintAs(file, doubleCast)).toEqual(["1:no-restricted-syntax"]);
    });
  }

  it("allows a single cast and reading a value as unknown", async () => {
    const code = 'const u: unknown = JSON.parse("1");\nexport const n = u as number;\n';
    expect(await lintAs("src/node/x.ts", code)).toEqual([]);
  });

  it("rejects importing rawNodeCore outside src/raft/testing.ts", async () => {
    expect(await lintAs("src/raft/x.ts", coreImport)).toEqual(["1:no-restricted-syntax"]);
    expect(await lintAs("src/sim/x.ts", coreImport)).toEqual(["1:no-restricted-syntax"]);
    expect(await lintAs("src/raft/testing.ts", coreImport)).toEqual([]);
  });
});
