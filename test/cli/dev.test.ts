import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { statSync } from "node:fs";
import { cli as run, ensureBuilt, exitWithin, isRunning, start, until } from "./helpers.js";
import { packageVersion } from "../../src/cli/version.js";
import { PROTOCOL_VERSION } from "../../src/transport/codec.js";

const PACKAGE_VERSION = packageVersion();

interface Row {
  id: number;
  api: string;
  peer: string;
  pid: number;
  role: string;
}

const ROW = /^(\d+)\s+(https:\/\/\S+)\s+(\S+)\s+(\d+)\s+(leader|follower)$/gm;

describe("blixard dev", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "blixard-dev-test-"));
  let dev: ReturnType<typeof start> | undefined;
  let rows: Row[] = [];
  // The CLI finds ./.blixard/dev/tls/ca.pem by itself; this cluster's data is elsewhere.
  const caPath = join(dataDir, "tls", "ca.pem");
  const cli = (args: readonly string[], env: NodeJS.ProcessEnv = {}): ReturnType<typeof run> =>
    run(args, {
      BLIXARD_CACERT: caPath,
      BLIXARD_TOKEN_FILE: join(dataDir, "management.token"),
      ...env,
    });

  beforeAll(async () => {
    await ensureBuilt();
    dev = start(["dev", "--nodes", "3", "--data-dir", dataDir, "--base-port", "0"]);
    const running = dev;
    await until(
      () => (running.output().includes("Press Ctrl-C") ? true : undefined),
      `the cluster table; output so far:\n${running.output()}`,
      30_000,
    );
    rows = [...running.output().matchAll(ROW)].map((m) => ({
      id: Number(m[1]),
      api: m[2] ?? "",
      peer: m[3] ?? "",
      pid: Number(m[4]),
      role: m[5] ?? "",
    }));
  });

  afterAll(() => {
    if (dev?.child.exitCode === null) dev.child.kill("SIGKILL");
    for (const row of rows) if (isRunning(row.pid)) process.kill(row.pid, "SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("prints a table of three nodes with exactly one leader", () => {
    expect(rows.map((r) => r.id)).toEqual([1, 2, 3]);
    expect(rows.filter((r) => r.role === "leader")).toHaveLength(1);
    for (const row of rows) expect(isRunning(row.pid)).toBe(true);
    expect(dev?.output()).toContain("blixard kv put greeting hello");
  });

  it("is secure: a CA, node and admin certificates in <data-dir>/tls, private files", async () => {
    expect(dev?.output()).toContain(`TLS: CA ${caPath}`);
    expect(dev?.output()).toContain(`curl --cacert ${caPath}`);
    for (const name of [
      "ca.pem",
      "ca-key.pem",
      "node-1.pem",
      "node-3-key.pem",
      "client-root.pem",
    ]) {
      expect(statSync(join(dataDir, "tls", name)).mode & 0o777, name).toBe(0o600);
    }
    // Without the CA the CLI refuses the nodes' certificates, and says what to give.
    const untrusted = await run(["kv", "get", "greeting", "--endpoints", rows[0]!.api]);
    expect(untrusted.status).toBe(15);
    expect(untrusted.stderr).toContain("give the cluster's CA with --ca or BLIXARD_CACERT");
  });

  it("writes and reads through the CLI, through followers too", async () => {
    const followers = rows.filter((r) => r.role === "follower");
    const leader = rows.find((r) => r.role === "leader")!;
    const put = await cli(["kv", "put", "greeting", "hello", "--endpoints", followers[0]!.api]);
    expect(put.stderr).toBe("");
    expect(put.status).toBe(0);
    expect(put.stdout).toMatch(/^OK \(revision \d+\)\n$/);
    const [viaFollower, viaLeader, json, members] = await Promise.all([
      cli(["kv", "get", "greeting", "--endpoints", followers[1]!.api]),
      cli(["kv", "get", "greeting", "--endpoints", leader.api]),
      cli(["kv", "get", "greeting", "--json"], {
        BLIXARD_ENDPOINTS: rows.map((r) => r.api).join(","),
      }),
      cli(["cluster", "members", "--endpoints", leader.api, "--json"]),
    ]);
    for (const get of [viaFollower, viaLeader]) {
      expect(get.status).toBe(0);
      expect(get.stdout).toBe("hello\n");
    }
    expect(JSON.parse(json.stdout)).toMatchObject({ key: "greeting", value: "hello", version: 1 });
    expect(JSON.parse(members.stdout)).toMatchObject({ leader: leader.id });
  });

  it("lists every member's version through a follower, filling what it never heard from the leader", async () => {
    // A follower links with the leader and with the members it exchanged votes with; the others'
    // versions it does not know by itself (they once showed as "?").
    for (const follower of rows.filter((r) => r.role === "follower")) {
      const members = await cli(["cluster", "members", "--endpoints", follower.api]);
      expect(members.status, members.stderr).toBe(0);
      const versions = members.stdout
        .split("\n")
        .filter((line) => /^\d+\s/.test(line))
        .map((line) => line.split(/\s{2,}/).slice(-2));
      expect(versions, members.stdout).toEqual(
        rows.map(() => [PACKAGE_VERSION, String(PROTOCOL_VERSION)]),
      );
      expect(members.stdout).not.toContain("unknown");
    }
  });

  it("exits 3 with a one-line message for a missing key", async () => {
    const get = await cli(["kv", "get", "missing", "--endpoints", rows[0]!.api]);
    expect(get.status).toBe(3);
    expect(get.stdout).toBe("");
    expect(get.stderr).toBe('error: key "missing" not found [NOT_FOUND]\n');
  });

  it("compare-and-set succeeds on the expected value and exits 4 otherwise", async () => {
    const api = rows[1]!.api;
    const ok = await cli(["kv", "cas", "c", "v1", "--expect-absent", "--endpoints", api]);
    expect(ok.status).toBe(0);
    const conflict = await cli([
      "kv",
      "cas",
      "c",
      "v2",
      "--expect-value",
      "nope",
      "--endpoints",
      api,
    ]);
    expect(conflict.status).toBe(4);
    expect(conflict.stderr).toContain("[CONFLICT]");
  });

  it("stops every node on SIGTERM", async () => {
    const running = dev!;
    running.child.kill("SIGTERM");
    expect(await exitWithin(running.exited, 20_000)).toBe(0);
    for (const row of rows) expect(isRunning(row.pid)).toBe(false);
    expect(running.output()).toContain("all nodes stopped");
  });
});

describe("blixard dev killed with SIGKILL", () => {
  const dataDir = mkdtempSync(join(tmpdir(), "blixard-dev-kill-test-"));
  let pids: number[] = [];

  afterAll(() => {
    for (const pid of pids) if (isRunning(pid)) process.kill(pid, "SIGKILL");
    rmSync(dataDir, { recursive: true, force: true });
  });

  it("leaves no node running: each sees its stdin pipe end and stops", async () => {
    await ensureBuilt();
    const dev = start(["dev", "--nodes", "1", "--data-dir", dataDir, "--base-port", "0"]);
    await until(
      () => (dev.output().includes("Press Ctrl-C") ? true : undefined),
      `the cluster table; output so far:\n${dev.output()}`,
      30_000,
    );
    pids = [...dev.output().matchAll(ROW)].map((m) => Number(m[4]));
    expect(pids).toHaveLength(1);
    dev.child.kill("SIGKILL");
    await exitWithin(dev.exited, 5_000);
    await until(
      () => (pids.every((pid) => !isRunning(pid)) ? true : undefined),
      "the orphaned node to stop by itself",
      20_000,
    );
  });
});
