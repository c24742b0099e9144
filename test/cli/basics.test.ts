import { beforeAll, describe, expect, it } from "vitest";
import { cli, ensureBuilt } from "./helpers.js";

describe("blixard CLI basics", () => {
  beforeAll(ensureBuilt);

  it("prints help", async () => {
    const { status, stdout } = await cli(["--help"]);
    expect(status).toBe(0);
    expect(stdout).toContain("Usage: blixard");
    expect(stdout).toContain("--version");
    for (const command of ["node", "dev", "kv", "cluster"]) expect(stdout).toContain(command);
  });

  it("prints the package version", async () => {
    const { stdout } = await cli(["--version"]);
    expect(stdout.trim()).toMatch(/^\d+\.\d+\.\d+/);
  });

  it("exits with the usage code on an unknown command", async () => {
    const result = await cli(["no-such-command"]);
    expect(result.status).toBe(64);
    expect(result.stderr).toMatch(/--help/);
  });

  it("exits with the usage code on an unknown flag, without a stack trace", async () => {
    const result = await cli(["kv", "get", "k", "--no-such-flag"]);
    expect(result.status).toBe(64);
    expect(result.stderr).toContain("unknown option '--no-such-flag'");
    expect(result.stderr).not.toMatch(/\n\s+at /);
  });

  it("refuses a malformed member list and a cas without one expectation as usage errors", async () => {
    const members = await cli(["node", "start", "--data-dir", "x", "--initial-members", "1=oops"]);
    expect(members.status).toBe(64);
    expect(members.stderr).toContain("ID=PEER_HOST:PORT@API_HOST:PORT");
    const cas = await cli(["kv", "cas", "k", "v"]);
    expect(cas.status).toBe(64);
    expect(cas.stderr).toContain("exactly one of");
  });

  it("reports an unreachable endpoint as UNAVAILABLE in one line", async () => {
    const result = await cli(["kv", "get", "k", "--endpoints", "http://127.0.0.1:9"]);
    expect(result.status).toBe(15);
    expect(result.stderr.trim().split("\n")).toHaveLength(1);
    expect(result.stderr).toContain("[UNAVAILABLE]");
  });

  it("reports an error as one JSON line under --json", async () => {
    const result = await cli(["kv", "get", "k", "--json", "--endpoints", "http://127.0.0.1:9"]);
    expect(result.status).toBe(15);
    const lines = result.stderr.trim().split("\n");
    expect(lines).toHaveLength(1);
    const parsed = JSON.parse(lines[0]!) as { error: { code: string; message: string } };
    expect(parsed.error.code).toBe("UNAVAILABLE");
    expect(parsed.error.message.length).toBeGreaterThan(0);
  });
});
