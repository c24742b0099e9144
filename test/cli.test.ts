import { execFileSync, spawnSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";

const root = fileURLToPath(new URL("..", import.meta.url));
const bin = fileURLToPath(new URL("../bin/blixard.js", import.meta.url));

describe("blixard CLI", () => {
  beforeAll(() => {
    execFileSync("npx", ["tsc", "-p", "tsconfig.build.json"], { cwd: root, stdio: "ignore" });
  });

  it("prints help", () => {
    const out = execFileSync(process.execPath, [bin, "--help"], { encoding: "utf8" });
    expect(out).toContain("Usage: blixard");
    expect(out).toContain("--version");
  });

  it("prints the package version", () => {
    const out = execFileSync(process.execPath, [bin, "--version"], { encoding: "utf8" });
    expect(out.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("exits with the usage code on an unknown command", () => {
    const result = spawnSync(process.execPath, [bin, "no-such-command"], { encoding: "utf8" });
    expect(result.status).toBe(64);
    expect(result.stderr).toMatch(/--help/);
  });
});
