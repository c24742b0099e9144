import { ESLint } from "eslint";
import { beforeAll, describe, expect, it } from "vitest";
import { TYPED_FILES, TYPED_RULES } from "../../eslint.config.js";

/**
 * The type-aware rules need the file in the TypeScript project, so each sample is linted as the
 * text of a file that exists (the project service reads the given text, not the disk): one under
 * src/, one under test/, one under bench/.
 */
const HOSTS = ["src/client/index.ts", "test/architecture/promises.test.ts", "bench/core.bench.ts"];

const eslint = new ESLint();

async function lintAs(filePath: string, code: string): Promise<string[]> {
  const [result] = await eslint.lintText(code, { filePath });
  return (result?.messages ?? []).map((m) => `${m.line}:${m.ruleId ?? `parse ${m.message}`}`);
}

const work = "export async function work(): Promise<number> {\n  return 1;\n}\n";

describe("promise lint rules (type-aware, on src/, test/ and bench/)", () => {
  // Loading the project's types takes tens of seconds on a loaded machine: once, in a hook.
  beforeAll(async () => {
    await lintAs(HOSTS[0] as string, "export {};\n");
  });

  it("configures each rule as an error on the TypeScript folders", () => {
    expect(TYPED_RULES).toEqual({
      "@typescript-eslint/no-floating-promises": "error",
      "@typescript-eslint/no-misused-promises": "error",
      "@typescript-eslint/await-thenable": "error",
    });
    expect(TYPED_FILES).toEqual(
      expect.arrayContaining(["src/**/*.ts", "test/**/*.ts", "bench/**/*.ts"]),
    );
  });

  for (const host of HOSTS) {
    it(`rejects a promise nobody awaits or handles in ${host.split("/")[0]}/`, async () => {
      const code = `${work}export function start(): void {\n  work();\n}\n`;
      expect(await lintAs(host, code)).toEqual(["5:@typescript-eslint/no-floating-promises"]);
    });
  }

  it("rejects an async function where a listener must return nothing", async () => {
    const code = `${work}process.on("exit", async () => {\n  await work();\n});\n`;
    expect(await lintAs(HOSTS[0] as string, code)).toEqual([
      "4:@typescript-eslint/no-misused-promises",
    ]);
  });

  it("rejects awaiting a value that is not a promise", async () => {
    const code = "export async function f(): Promise<number> {\n  return await 1;\n}\n";
    expect(await lintAs(HOSTS[0] as string, code)).toEqual(["2:@typescript-eslint/await-thenable"]);
  });

  it("accepts a promise that is awaited, handled with catch, or dropped on purpose with void", async () => {
    const code =
      `${work}export async function a(): Promise<void> {\n  await work();\n}\n` +
      `export function b(): void {\n  work().catch((error: unknown) => console.error(error));\n}\n` +
      `export function c(): void {\n  void work();\n}\n`;
    expect(await lintAs(HOSTS[0] as string, code)).toEqual([]);
  });
});
