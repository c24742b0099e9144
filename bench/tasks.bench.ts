/**
 * Task submit → start latency on a real 3-node cluster (`blixard node start --enable-raw-exec
 * --insecure`, the compiled dist/):
 *
 *   npm run bench:tasks [-- --tasks 100 --spacing-ms 50 --jitter-ms 1000]
 *
 * Tasks (`true`, 100 millicpu) are submitted one at a time through alternating nodes, each
 * `--spacing-ms` plus a random 0..`--jitter-ms` after the previous one started (the jitter keeps
 * the submits from locking in phase with any periodic timer, such as the agent's resync). For each, the clock starts when `submitTask` resolves (the submit was
 * applied and acknowledged: the task is placed) and stops when the event stream (one
 * subscriber, on member 1) delivers the task's `running` update, i.e. when its node's agent
 * learned of the assignment, started the process and the `taskStarted` report was applied. The
 * agent learns of an assignment from its node's apply notifications (`Agent.notify`); without
 * them it would find it at its next resync (every 1 s).
 *
 * Prints p50/p90/p99/max and one line `BENCH_JSON {...}`.
 */
import { parseArgs } from "node:util";
import { BlixardClient } from "../src/client/index.js";
import { ensureBuilt } from "../test/cli/helpers.js";
import { BlixardCluster } from "./cluster/blixard.js";
import { quantile } from "./cluster/load.js";
import { cleanupSync, sleep, tempDir } from "./cluster/procs.js";

const { values: args } = parseArgs({
  options: {
    tasks: { type: "string", default: "100" },
    "spacing-ms": { type: "string", default: "50" },
    "jitter-ms": { type: "string", default: "1000" },
  },
});
const TASKS = Number(args.tasks);
const SPACING_MS = Number(args["spacing-ms"]);
const JITTER_MS = Number(args["jitter-ms"]);
const RESOURCES = { cpuMillis: 100, memoryMb: 16, diskGb: 0 };

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function main(): Promise<void> {
  await ensureBuilt();
  const cluster = new BlixardCluster(tempDir("blixard-bench-tasks-"), 3, ["--enable-raw-exec"]);
  try {
    await cluster.start();
    const clients = cluster.endpoints.map((e) => new BlixardClient({ endpoints: [e] }));
    const first = clients[0] as BlixardClient;
    for (;;) {
      const workers = await first.orchestrator.listWorkers();
      if (workers.filter((w) => w.status === "online").length === 3) break;
      await sleep(100);
    }
    const startedAtMs = new Map<string, number>();
    const waiting = new Map<string, () => void>();
    const controller = new AbortController();
    const events = (async () => {
      for await (const event of first.events({ topics: ["task"], signal: controller.signal })) {
        const task = event.task;
        if (task === undefined || task.status !== "running" || startedAtMs.has(task.id)) continue;
        startedAtMs.set(task.id, performance.now());
        waiting.get(task.id)?.();
      }
    })();
    const latenciesMs: number[] = [];
    for (let i = 0; i < TASKS + 5; i++) {
      const client = clients[i % clients.length] as BlixardClient;
      const task = await client.orchestrator.submitTask({ command: "true", resources: RESOURCES });
      const ackedAtMs = performance.now();
      if (!startedAtMs.has(task.id)) {
        await new Promise<void>((resolve) => waiting.set(task.id, resolve));
      }
      waiting.delete(task.id);
      // The first five warm up the nodes (JIT, first process spawns).
      if (i >= 5) latenciesMs.push(Math.max(0, (startedAtMs.get(task.id) as number) - ackedAtMs));
      await sleep(SPACING_MS + Math.random() * JITTER_MS);
    }
    controller.abort();
    await events.catch(() => undefined);
    const sorted = [...latenciesMs].sort((a, b) => a - b);
    const summary = {
      tasks: sorted.length,
      p50Ms: round(quantile(sorted, 0.5)),
      p90Ms: round(quantile(sorted, 0.9)),
      p99Ms: round(quantile(sorted, 0.99)),
      maxMs: round(sorted.at(-1) ?? Number.NaN),
    };
    log(
      `submit ack -> running over ${summary.tasks} tasks: p50 ${summary.p50Ms} ms, ` +
        `p90 ${summary.p90Ms} ms, p99 ${summary.p99Ms} ms, max ${summary.maxMs} ms`,
    );
    process.stdout.write(`BENCH_JSON ${JSON.stringify({ submitToRunning: summary })}\n`);
  } finally {
    await cluster.stop();
    cleanupSync();
  }
}

function round(ms: number): number {
  return Math.round(ms * 10) / 10;
}

await main();
