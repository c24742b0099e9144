/**
 * The package as a user gets it: `npm pack`, the tarball unpacked into a fresh project's
 * node_modules (what `npm install blixard-x.y.z.tgz` does; its dependencies are linked from this
 * checkout, as the registry is not reachable from tests), then `import { BlixardClient } from
 * "blixard"` type-checks and runs, the error classes are exported, and `npx blixard --version`
 * answers.
 */
import { spawnSync } from "node:child_process";
import {
  mkdirSync,
  mkdtempSync,
  readdirSync,
  readFileSync,
  rmSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ensureBuilt, ROOT } from "./helpers.js";

const TIMEOUT_MS = 180_000;

function run(command: string, args: readonly string[], cwd: string): string {
  const result = spawnSync(command, args, { cwd, encoding: "utf8", timeout: TIMEOUT_MS });
  if (result.status !== 0) {
    throw new Error(
      `${command} ${args.join(" ")} exited ${result.status}:\n${result.stdout}${result.stderr}`,
    );
  }
  return result.stdout;
}

describe("the packed package", () => {
  let root: string;
  let project: string;
  const version = (
    JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { version: string }
  ).version;

  beforeAll(async () => {
    await ensureBuilt();
    root = mkdtempSync(join(tmpdir(), "blixard-package-"));
    run("npm", ["pack", "--ignore-scripts", "--pack-destination", root], ROOT);
    project = join(root, "project");
    const installed = join(project, "node_modules", "blixard");
    mkdirSync(installed, { recursive: true });
    run(
      "tar",
      ["-xzf", join(root, `blixard-${version}.tgz`), "-C", installed, "--strip-components=1"],
      root,
    );
    for (const name of readdirSync(join(ROOT, "node_modules"))) {
      if (name === ".bin" || name === "blixard" || name.startsWith(".")) continue;
      symlinkSync(join(ROOT, "node_modules", name), join(project, "node_modules", name));
    }
    mkdirSync(join(project, "node_modules", ".bin"));
    symlinkSync("../blixard/bin/blixard.js", join(project, "node_modules", ".bin", "blixard"));
    writeFileSync(
      join(project, "package.json"),
      JSON.stringify({ name: "consumer", private: true, type: "module" }),
    );
  }, TIMEOUT_MS);

  afterAll(() => rmSync(root, { recursive: true, force: true }));

  it("ships the docs, the license and the service files, and no tests", () => {
    const files = readdirSync(join(project, "node_modules", "blixard"));
    expect(files).toEqual(
      expect.arrayContaining(["LICENSE", "CHANGELOG.md", "README.md", "packaging", "dist", "bin"]),
    );
    expect(files).not.toContain("test");
    expect(readdirSync(join(project, "node_modules", "blixard", "packaging"))).toEqual(
      expect.arrayContaining(["blixard.service", "Dockerfile"]),
    );
  });

  it(
    "imports the typed client and its errors from another project",
    () => {
      writeFileSync(
        join(project, "use.ts"),
        [
          'import { BlixardClient, NotLeaderError, TimeoutError, isBlixardError, type GetResult } from "blixard";',
          'const client = new BlixardClient({ endpoints: ["http://127.0.0.1:1"], timeoutMs: 50, retries: 0 });',
          'const read: Promise<GetResult | null> = client.get("k");',
          "read.then(",
          '  () => console.log("unexpected"),',
          '  (error: unknown) => console.log(isBlixardError(error) ? error.code : "other", new NotLeaderError() instanceof Error, typeof TimeoutError),',
          ");",
          "",
        ].join("\n"),
      );
      writeFileSync(
        join(project, "tsconfig.json"),
        JSON.stringify({
          compilerOptions: {
            target: "ES2023",
            module: "NodeNext",
            moduleResolution: "NodeNext",
            strict: true,
            types: ["node"],
            noEmit: true,
          },
          files: ["use.ts"],
        }),
      );
      run(
        process.execPath,
        [join(ROOT, "node_modules", "typescript", "bin", "tsc"), "-p", "."],
        project,
      );
      // The same program as JavaScript, against the installed package.
      writeFileSync(
        join(project, "use.mjs"),
        readFileSync(join(project, "use.ts"), "utf8")
          .replace(", type GetResult", "")
          .replace(": Promise<GetResult | null>", "")
          .replace("(error: unknown)", "(error)"),
      );
      expect(run(process.execPath, ["use.mjs"], project).trim()).toMatch(
        /^(UNAVAILABLE|TIMEOUT) true function$/,
      );
    },
    TIMEOUT_MS,
  );

  it(
    "runs `npx blixard --version`",
    () => {
      expect(run("npx", ["--no-install", "blixard", "--version"], project).trim()).toBe(version);
    },
    TIMEOUT_MS,
  );
});
