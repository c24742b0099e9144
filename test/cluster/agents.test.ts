/**
 * Agent-only workers with real processes: three servers started with `--no-worker` and two
 * `blixard agent start` processes (raw exec) that reach them over HTTPS with node certificates
 * of ids 4 and 5. A task lands on an agent; that agent is SIGKILLed; the leader marks it offline
 * after the dead-after time (2 s here) and the task is retried on the other agent; the killed
 * agent, restarted, re-registers and reconciles without running or reporting the task again.
 */
import { chmodSync, existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { BlixardClient } from "../../src/client/index.js";
import { ensureBuilt } from "../cli/helpers.js";
import { ProcessCluster, until, type NodeProcess } from "./process-cluster.js";

const DEAD_AFTER_MS = 2000;
const AGENT_IDS = [4, 5] as const;
let cluster: ProcessCluster;
let client: BlixardClient;
const agents = new Map<number, NodeProcess>();

function agentDir(id: number): string {
  return join(cluster.root, `agent-${id}`);
}

function startAgent(id: number): NodeProcess {
  const p = cluster.spawn(`agent ${id}`, [
    "agent",
    "start",
    "--servers",
    cluster.nodes.map((n) => n.apiUrl).join(","),
    "--node-id",
    String(id),
    "--data-dir",
    agentDir(id),
    "--cluster-id",
    cluster.clusterId,
    "--worker-dead-after-ms",
    String(DEAD_AFTER_MS),
    "--enable-raw-exec",
    "--log-level",
    "info",
  ]);
  agents.set(id, p);
  return p;
}

/** The agent's log lines with message `msg` about task `task`. */
function logged(p: NodeProcess, msg: string, task: string): number {
  return p.logLines().filter((l) => l["msg"] === msg && l["task"] === task).length;
}

beforeAll(async () => {
  await ensureBuilt();
  cluster = await ProcessCluster.create({
    size: 3,
    name: "blixard-agents",
    clusterId: "agents-test",
    extraArgs: ["--worker-dead-after-ms", String(DEAD_AFTER_MS), "--no-worker"],
  });
  for (const id of AGENT_IDS) await cluster.pki.provision(agentDir(id), id);
  cluster.startAll();
  await cluster.waitForLeader();
  client = cluster.client();
  for (const id of AGENT_IDS) startAgent(id);
  await cluster.waitForOnlineWorkers(client, AGENT_IDS.length);
});

afterAll(async () => {
  await cluster?.destroy();
});

beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    const agentLogs = [...agents.entries()]
      .map(([id, p]) => `agent ${id}:\n${p.output.split("\n").slice(-60).join("\n")}`)
      .join("\n");
    process.stderr.write(`node logs:\n${cluster.logs(40)}\n${agentLogs}\n`);
  });
});

describe("agent-only workers across real processes", () => {
  it("registers only the agents as workers: the --no-worker servers run nothing", async () => {
    const workers = await client.orchestrator.listWorkers();
    expect(workers.map((w) => w.nodeId).sort()).toEqual([...AGENT_IDS]);
    const task = await client.orchestrator.submitTask({ command: "echo", args: ["on-an-agent"] });
    const done = await client.orchestrator.waitTask(task.id, { timeoutMs: 30_000 });
    expect(done.status, JSON.stringify(done)).toBe("succeeded");
    expect(done.result?.stdout).toBe("on-an-agent\n");
    expect(AGENT_IDS).toContain(done.nodeId);
    // Without --advertise-host, VMs migrating to an agent listen on the address it uses toward
    // its servers: loopback here.
    for (const p of agents.values()) {
      const advertised = p.logLines().find((l) => l["advertiseHost"] !== undefined);
      expect(advertised?.["advertiseHost"], p.output.slice(-2000)).toBe("127.0.0.1");
    }
  });

  it("runs a burst of tasks whose reports the agents send in batches: each runs once and succeeds", async () => {
    // A batch submit needs the cluster's protocol gate open (every member known to speak it),
    // which a fresh cluster's leader publishes just after its election: wait until every server
    // has applied it, as a client that got "a rolling upgrade is under way" would retry.
    await until(async () => {
      const statuses = await Promise.all(cluster.nodes.map((n) => cluster.status(n.id)));
      return statuses.every((s) => (s?.clusterProtocolVersion ?? 0) >= 2) ? true : undefined;
    }, "the protocol gate open on every server");
    // One submit batch lands many tasks on both agents at once: their start and finish reports
    // queue up together and go in `agentReports` batches, each report settled by its outcome.
    const { items } = await client.orchestrator.submitTasks(
      Array.from({ length: 24 }, (_, i) => ({ command: "echo", args: [`burst-${i}`] })),
    );
    const ids = items.map((item) => {
      expect(item.ok, JSON.stringify(item)).toBe(true);
      return item.id;
    });
    for (const [i, id] of ids.entries()) {
      const done = await client.orchestrator.waitTask(id, { timeoutMs: 30_000 });
      expect(done, JSON.stringify(done)).toMatchObject({ status: "succeeded", attempts: 1 });
      expect(done.result?.stdout).toBe(`burst-${i}\n`);
    }
    const processes = [...agents.values()];
    for (const id of ids) {
      const starts = processes.map((p) => logged(p, "starting task", id));
      expect(
        starts.reduce((a, b) => a + b, 0),
        `starts of ${id}`,
      ).toBe(1);
    }
    // The servers took the batches: no agent fell back to single reports.
    for (const p of processes) {
      expect(
        p.logLines().filter((l) => String(l["msg"]).startsWith("a batch of reports was refused")),
      ).toEqual([]);
    }
  });

  it("retries the task of a SIGKILLed agent on the other; the restarted agent does not run it again", async () => {
    const submitted = await client.orchestrator.submitTask({
      command: "sleep 3; echo finished",
      shell: true,
    });
    const running = await until(
      async () => {
        const t = await client.orchestrator.getTask(submitted.id);
        return t.status === "running" ? t : undefined;
      },
      "the task running on an agent",
      30_000,
    );
    const victim = running.nodeId as number;
    expect(AGENT_IDS).toContain(victim);
    const survivor = AGENT_IDS.find((id) => id !== victim) as number;
    const killed = agents.get(victim) as NodeProcess;
    killed.signal("SIGKILL");
    await killed.waitExit(10_000);

    // Marked offline after the dead-after time; the task's attempt is lost and retried.
    const done = await client.orchestrator.waitTask(submitted.id, { timeoutMs: 40_000 });
    expect(done.status, JSON.stringify(done)).toBe("succeeded");
    expect(done.nodeId).toBe(survivor);
    expect(done.attempts).toBe(2);
    expect(done.result?.stdout).toBe("finished\n");
    const victimWorker = await client.orchestrator.getWorker(victim);
    expect(victimWorker.status).toBe("offline");

    // The killed agent comes back: it re-registers and reconciles.
    const restarted = startAgent(victim);
    await cluster.waitForOnlineWorkers(client, AGENT_IDS.length);
    // It takes new work again (spread puts the next task on the emptier agent, either way it runs).
    const after = await client.orchestrator.submitTask({ command: "echo", args: ["again"] });
    expect((await client.orchestrator.waitTask(after.id, { timeoutMs: 30_000 })).status).toBe(
      "succeeded",
    );
    // The retried task stays as it ended: one success, on the survivor, by its second attempt.
    const final = await client.orchestrator.getTask(submitted.id);
    expect(final).toMatchObject({ status: "succeeded", nodeId: survivor, attempts: 2 });
    // The restarted agent neither started nor reported the moved task.
    expect(logged(restarted, "starting task", submitted.id)).toBe(0);
    expect(logged(restarted, "task finished", submitted.id)).toBe(0);
    // The survivor ran and reported it once.
    const survivorProcess = agents.get(survivor) as NodeProcess;
    expect(logged(survivorProcess, "starting task", submitted.id)).toBe(1);
    expect(logged(survivorProcess, "task finished", submitted.id)).toBe(1);
  });

  it("an agent cut off from every server stops its task at the grace, then reconnects and the task is retried", async () => {
    // The task writes its pid where the test can read it (it runs as the task user).
    const pidDir = mkdtempSync(join(tmpdir(), "blixard-agent-pid-"));
    chmodSync(pidDir, 0o777);
    const pidFile = join(pidDir, "pid");
    try {
      const submitted = await client.orchestrator.submitTask({
        command: `echo $$ > ${pidFile}; exec sleep 6`,
        shell: true,
      });
      await until(
        async () => {
          const t = await client.orchestrator.getTask(submitted.id);
          return t.status === "running" && existsSync(pidFile) ? t : undefined;
        },
        "the task running and its pid written",
        30_000,
      );
      const pid = Number(readFileSync(pidFile, "utf8").trim());
      const alive = (): boolean => {
        try {
          process.kill(pid, 0);
          return true;
        } catch {
          return false;
        }
      };
      expect(alive()).toBe(true);
      const holder = [...agents.values()].find((p) =>
        p.logLines().some((l) => l["msg"] === "starting task" && l["task"] === submitted.id),
      ) as NodeProcess;
      // Every server freezes: no heartbeat is acknowledged any more.
      for (const n of cluster.nodes) cluster.signal(n.id, "SIGSTOP");
      try {
        await until(
          () =>
            holder.logLines().some((l) => String(l["msg"]).startsWith("cut off from the cluster"))
              ? true
              : undefined,
          "the agent to give up on the cluster after its grace",
          15_000,
        );
        await until(() => (alive() ? undefined : true), "the task's process to be gone", 10_000);
      } finally {
        for (const n of cluster.nodes) cluster.signal(n.id, "SIGCONT");
      }
      await cluster.waitForLeader();
      await until(
        () =>
          holder.logLines().some((l) => String(l["msg"]).startsWith("reconnected"))
            ? true
            : undefined,
        "the agent to reconnect",
        20_000,
      );
      // The agent hands the stopped attempt back (its worker marked offline: the attempt is
      // lost, not failed), and the next attempt runs to the end.
      const done = await client.orchestrator.waitTask(submitted.id, { timeoutMs: 40_000 });
      expect(done.status, JSON.stringify(done)).toBe("succeeded");
      // At least one retry: the first attempt was given back. Under load a later one can be
      // lost too (both agents were cut off by the freeze and re-register after it; a full
      // `npm test` once saw attempt 3), which the model handles the same way.
      expect(done.attempts).toBeGreaterThanOrEqual(2);
    } finally {
      rmSync(pidDir, { recursive: true, force: true });
    }
  });
});
