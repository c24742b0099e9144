import { cpSync, existsSync, mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BlixardClient } from "../../src/client/index.js";
import { freePorts } from "../../src/cli/dev/ports.js";
import { cli as run, ensureBuilt, exitWithin, start, until } from "./helpers.js";
import { createTestPki, type TestPki } from "./pki.js";

type Started = ReturnType<typeof start>;

describe("blixard node start", () => {
  const root = mkdtempSync(join(tmpdir(), "blixard-restart-test-"));
  const ids = [1, 2, 3];
  const dirs = ids.map((id) => join(root, `node-${id}`));
  let running: Started[] = [];
  let apis: string[] = [];
  let pki: TestPki;
  const cli: typeof run = (args, env = {}) => run(args, { ...pki.clientEnv, ...env });

  beforeAll(async () => {
    await ensureBuilt();
    pki = await createTestPki(root, "restart-test");
    for (const [i, id] of ids.entries()) await pki.provision(dirs[i]!, id);
  });

  afterAll(() => {
    for (const node of running) if (node.child.exitCode === null) node.child.kill("SIGKILL");
    rmSync(root, { recursive: true, force: true });
  });

  async function waitForLeader(): Promise<void> {
    const clients = apis.map(
      (url) =>
        new BlixardClient({ endpoints: [url], timeoutMs: 500, retries: 0, ...pki.clientOptions }),
    );
    await until(async () => {
      const leaders = await Promise.all(
        clients.map((c) =>
          c.status().then(
            (s) => s.leader,
            () => null,
          ),
        ),
      );
      return leaders[0] !== null && leaders.every((l) => l === leaders[0]) ? true : undefined;
    }, "a leader known to every node");
  }

  async function stopAll(): Promise<void> {
    for (const node of running) node.child.kill("SIGTERM");
    const codes = await Promise.all(running.map((n) => exitWithin(n.exited, 15_000)));
    expect(codes, running.map((n) => n.output()).join("\n")).toEqual([0, 0, 0]);
    running = [];
  }

  it("bootstraps from a member list, then restarts from --data-dir alone with its data", async () => {
    const ports = await freePorts(6);
    const peer = (i: number): string => `127.0.0.1:${ports[i]}`;
    const api = (i: number): string => `127.0.0.1:${ports[3 + i]}`;
    apis = ids.map((_, i) => `https://${api(i)}`);
    const members = ids.map((id, i) => `${id}=${peer(i)}@${api(i)}`).join(",");
    running = ids.map((id, i) =>
      start([
        "node",
        "start",
        "--id",
        String(id),
        "--data-dir",
        dirs[i]!,
        "--peer-listen",
        peer(i),
        "--api-listen",
        api(i),
        "--initial-members",
        members,
        "--cluster-id",
        "restart-test",
      ]),
    );
    await waitForLeader();
    const put = await cli(["kv", "put", "durable", "yes", "--endpoints", apis.join(",")]);
    expect(put.status).toBe(0);
    const config = JSON.parse(readFileSync(join(dirs[0]!, "node.json"), "utf8"));
    expect(config).toMatchObject({ id: 1, clusterId: "restart-test" });
    // One JSON line per lifecycle event on stderr.
    const lines = running[0]!
      .output()
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l));
    expect(lines.map((l) => l.msg)).toContain("node started");
    // Once the node exists, every line says which term and role it was written in.
    const afterStart = lines.slice(lines.findIndex((l) => l.msg === "node started"));
    for (const line of afterStart) {
      expect(line, JSON.stringify(line)).toMatchObject({ nodeId: 1 });
      expect(typeof line.term, JSON.stringify(line)).toBe("number");
      expect(["follower", "pre-candidate", "candidate", "leader"]).toContain(line.role);
    }
    expect(afterStart.some((l) => l.role === "leader" || l.role === "follower")).toBe(true);
    await stopAll();

    running = dirs.map((dir) => start(["node", "start", "--data-dir", dir]));
    await waitForLeader();
    const gets = await Promise.all(
      apis.map((url) => cli(["kv", "get", "durable", "--endpoints", url])),
    );
    expect(gets.map((g) => g.stdout)).toEqual(["yes\n", "yes\n", "yes\n"]);
    await stopAll();
  });

  it("refuses flags that contradict the stored node.json as a usage error", async () => {
    const result = await cli(["node", "start", "--data-dir", dirs[0]!, "--id", "9"]);
    expect(result.status).toBe(64);
    expect(result.stderr).toContain("was created with --id 1");
  });

  it("needs --id and listen addresses on a first start", async () => {
    const result = await cli(["node", "start", "--data-dir", join(root, "empty")]);
    expect(result.status).toBe(64);
    expect(result.stderr).toContain("a first start needs --id, --peer-listen, --api-listen");
  });

  it("refuses a raft log without its node.json instead of adopting it", async () => {
    const orphan = join(root, "orphan");
    cpSync(dirs[0]!, orphan, { recursive: true });
    rmSync(join(orphan, "node.json"));
    rmSync(join(orphan, "LOCK"), { force: true });
    const before = readdirSync(join(orphan, "raft")).sort();
    expect(before.length).toBeGreaterThan(0);
    const result = await cli([
      "node",
      "start",
      "--data-dir",
      orphan,
      "--id",
      "1",
      "--peer-listen",
      "127.0.0.1:1",
      "--api-listen",
      "127.0.0.1:2",
    ]);
    expect(result.status, result.stderr).toBe(64);
    expect(result.stderr).toContain("holds a raft log but");
    expect(result.stderr).toContain("node.json is missing");
    expect(existsSync(join(orphan, "node.json"))).toBe(false);
    expect(readdirSync(join(orphan, "raft")).sort()).toEqual(before);
  });
});
