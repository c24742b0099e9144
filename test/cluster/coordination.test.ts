/**
 * Coordination on real processes: a 3-node cluster, its leader killed while leases and locks
 * are in use.
 *
 * - No early expiry: a lease renewed right before the leader is killed outlives its TTL measured
 *   from that renewal (the new leader grants every lease its full TTL again), and still expires.
 * - Locks: 20 clients contend for one lock while the leader is killed twice; each holder writes
 *   `begin TOKEN` and `end TOKEN` to an append-only file. The file must show one holder at a
 *   time (every begin followed by its own end) and strictly increasing fencing tokens.
 */
import { appendFileSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { lock, type BlixardClient } from "../../src/client/index.js";
import { checkFencing, checkNoEarlyExpiry } from "../../src/sim/checkers/coordination.js";
import { ensureBuilt } from "../cli/helpers.js";
import { ProcessCluster, until } from "./process-cluster.js";

const clusters: ProcessCluster[] = [];
const dirs: string[] = [];

async function newCluster(name: string): Promise<ProcessCluster> {
  const cluster = await ProcessCluster.create({ size: 3, name: `blixard-coord-${name}` });
  clusters.push(cluster);
  return cluster;
}

beforeAll(ensureBuilt);

beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    for (const cluster of clusters) {
      console.log(`node logs (full logs kept in ${cluster.saveLogs()}):\n${cluster.logs(60)}`);
    }
  });
});

afterEach(async () => {
  await Promise.all(clusters.splice(0).map((c) => c.destroy()));
  for (const dir of dirs.splice(0)) rmSync(dir, { recursive: true, force: true });
});

/** Kills the leader, waits for a new one among the others, restarts the killed node. */
async function failOver(cluster: ProcessCluster): Promise<number> {
  const leader = await cluster.waitForLeader();
  await cluster.kill(leader);
  const survivors = cluster.nodes.map((n) => n.id).filter((id) => id !== leader);
  const next = await cluster.waitForLeader(survivors);
  cluster.start(leader, "restart");
  return next;
}

describe("coordination on a 3-node cluster of real processes", () => {
  it("a lease renewed before the leader dies outlives its TTL from that renewal, then expires", async () => {
    const cluster = await newCluster("lease");
    cluster.startAll();
    await cluster.waitForLeader();
    const client = cluster.client(undefined, { timeoutMs: 8000, retries: 40, backoffMs: 20 });
    const ttlMs = 4000;
    const { id } = await client.coord.grant(ttlMs);
    await client.put("owned/by-lease", "x", { lease: id });
    const renewedAtMs = performance.now();
    const [renewed] = await client.coord.keepAlive([id]);
    expect(renewed).toEqual({ id, ttlMs });
    const leader = await cluster.waitForLeader();
    await cluster.kill(leader);
    // The key is gone when a blocking wait on it returns changed.
    const entry = await client.get("owned/by-lease");
    expect(entry).not.toBeNull();
    const expiredAtMs = await until(
      async () => {
        const seen = await client.coord
          .waitChange("owned/by-lease", entry!.entry.createRevision, { waitMs: 2000 })
          .catch(() => undefined);
        return seen?.changed === true ? performance.now() : undefined;
      },
      "the lease's key to vanish",
      30_000,
    );
    expect(
      checkNoEarlyExpiry(
        [{ lease: id, sentAtMs: renewedAtMs, ttlMs }],
        [{ lease: id, expiredAtMs }],
      ),
    ).toEqual([]);
    await expect(client.coord.timeToLive(id)).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("20 clients contend for a lock while the leader is killed twice: one holder at a time, tokens increasing", async () => {
    const cluster = await newCluster("lock");
    cluster.startAll();
    await cluster.waitForLeader();
    const dir = mkdtempSync(join(tmpdir(), "blixard-lock-"));
    dirs.push(dir);
    const file = join(dir, "protected.log");
    let stopping = false;
    let acquisitions = 0;
    const failures: string[] = [];
    const contender = async (index: number, client: BlixardClient) => {
      while (!stopping) {
        try {
          const held = await lock(client, "jobs/lock", { ttlMs: 5000 });
          appendFileSync(file, `begin ${held.token} ${index}\n`);
          await new Promise((resolve) => setTimeout(resolve, 5));
          appendFileSync(file, `end ${held.token} ${index}\n`);
          acquisitions++;
          await held.release().catch(() => undefined);
        } catch (error) {
          // A contender that lost its place (its lease expired while waiting) joins again.
          failures.push(String(error));
        }
      }
    };
    const clients = Array.from({ length: 20 }, () =>
      cluster.client(undefined, { timeoutMs: 8000, retries: 40, backoffMs: 20 }),
    );
    const running = clients.map((client, i) => contender(i, client));
    const atLeast = (n: number) =>
      until(() => (acquisitions >= n ? true : undefined), `${n} acquisitions`, 60_000);
    await atLeast(20);
    await failOver(cluster);
    const afterFirst = acquisitions;
    await atLeast(afterFirst + 20);
    await cluster.waitForLeader();
    await failOver(cluster);
    const afterSecond = acquisitions;
    await atLeast(afterSecond + 20);
    stopping = true;
    await Promise.all(running);

    const lines = readFileSync(file, "utf8").trim().split("\n");
    const begins: { token: number; holder: string }[] = [];
    for (let i = 0; i < lines.length; i += 2) {
      const [kind, token, holder] = (lines[i] ?? "").split(" ");
      const [endKind, endToken, endHolder] = (lines[i + 1] ?? "").split(" ");
      expect(
        { kind, endKind, endToken, endHolder },
        `lines ${i}-${i + 1}: a begin followed by its own end`,
      ).toEqual({ kind: "begin", endKind: "end", endToken: token, endHolder: holder });
      begins.push({ token: Number(token), holder: holder ?? "" });
    }
    expect(checkFencing(begins)).toEqual([]);
    expect(begins.length).toBeGreaterThanOrEqual(60);
  });

  it("blixard lock runs a command with the fencing token; blixard elect leads and --observe sees it", async () => {
    const cluster = await newCluster("cli");
    cluster.startAll();
    await cluster.waitForLeader();
    const endpoints = cluster.nodes.map((n) => n.apiUrl).join(",");
    const tokens: number[] = [];
    for (const round of [1, 2]) {
      const run = await cluster.run(`lock ${round}`, [
        "lock",
        "--endpoints",
        endpoints,
        "build",
        "--",
        "sh",
        "-c",
        'echo "token=$BLIXARD_LOCK_TOKEN key=$BLIXARD_LOCK_KEY"',
      ]);
      expect(run.code, run.output).toBe(0);
      const match = /token=(\d+) key=build\/[0-9a-f]+/.exec(run.output);
      expect(match, run.output).not.toBeNull();
      tokens.push(Number(match?.[1]));
    }
    expect(tokens[1]).toBeGreaterThan(tokens[0] as number);
    const failing = await cluster.run("lock exit 7", [
      "lock",
      "--endpoints",
      endpoints,
      "build",
      "--",
      "sh",
      "-c",
      "exit 7",
    ]);
    expect(failing.code, failing.output).toBe(7);

    const candidate = cluster.spawn("elect", ["elect", "--endpoints", endpoints, "ci", "node-a"]);
    await until(() => (candidate.output.includes("elected (token") ? true : undefined), "elected");
    const observer = cluster.spawn("observe", [
      "elect",
      "--endpoints",
      endpoints,
      "--observe",
      "ci",
    ]);
    await until(() => (observer.output.includes("node-a") ? true : undefined), "observed node-a");
    candidate.signal("SIGTERM");
    expect((await candidate.waitExit(10_000)).code, candidate.output).toBe(0);
    await until(
      () => (observer.output.includes("(no leader)") ? true : undefined),
      "observed the resignation",
    );
    observer.signal("SIGTERM");
    expect((await observer.waitExit(10_000)).code, observer.output).toBe(0);
  });
});
