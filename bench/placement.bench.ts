/**
 * Placement at scale, in process (issue 18): the real cluster state machine (`ClusterStateMachine`,
 * the same envelope → namespace → codec → orchestrator apply path a node runs for each committed
 * entry), with `--workers` workers of three machine types and `--tasks` small tasks of four
 * shapes, for each scheduler:
 *
 * - `index`: the placement index (what nodes run);
 * - `scan`: the reference scan of every worker per placement (`referenceScheduler`), the cost
 *   per placement before the index. Both use the shape-grouped placement pass.
 *
 * Two scenarios per worker count and scheduler:
 *
 * 1. submit: the workers register, then the tasks are submitted in `submitTasks` batches of
 *    `--batch`; prints placements/s and the apply time per batch (p50, max);
 * 2. register with pending: the tasks are submitted first (nothing to run them: all pending),
 *    then the workers register one at a time, each registration placing what fits; prints the
 *    first registration (every task pending), p50 and max, and the total.
 *
 * For the scan it also estimates what one registration cost before passes went by request shape:
 * the old pass asked the scheduler once per pending task, so it prints the scan's time per
 * decision on the full fleet times the number of pending tasks.
 *
 * With `--lifecycle`, instead: a task's whole life as bench:scale drives it, on the index
 * scheduler, which every replica applies: `submitTasks` batches, then each worker's reports in
 * one `agentReports` entry per worker (every task of the batch started, then finished), the
 * reports encoded as an agent sends them. Prints the apply µs per task (submit, start, finish:
 * what each server spends on its state machine per task) and a split by command.
 *
 * Numbers only; asserts nothing but that every task was placed (and, with `--lifecycle`,
 * finished). Ends with `BENCH_JSON {...}`.
 *
 *   npm run bench:placement [-- --workers 1000,5000 --tasks 100000 --batch 1000 --scan-tasks 20000]
 *   npm run bench:placement -- --lifecycle [--workers 1000 --tasks 100000 --batch 1000]
 */
import { parseArgs } from "node:util";
import { ClusterStateMachine } from "../src/statemachine/cluster/cluster-state-machine.js";
import {
  type AgentReport,
  choosePlacement,
  encodeOrchestratorCommand,
  type OrchestratorCommand,
  type OrchestratorResult,
  type PlacementRequest,
  type Resources,
  type TaskSpec,
} from "../src/statemachine/orchestrator/index.js";
import { MAX_AGENT_REPORTS_PER_BATCH } from "../src/statemachine/orchestrator/limits.js";
import { encodeCommandEnvelope } from "../src/statemachine/session/envelope.js";
import { SUCCEEDED } from "./cluster/agent-fleet.js";

const { values: args } = parseArgs({
  options: {
    workers: { type: "string", default: "1000,5000" },
    tasks: { type: "string", default: "100000" },
    batch: { type: "string", default: "1000" },
    "scan-tasks": {
      type: "string",
      default: "20000",
      // The scan places in O(workers): at 5,000 workers 100,000 tasks take minutes.
    },
    lifecycle: { type: "boolean", default: false },
  },
});
const WORKER_COUNTS = args.workers.split(",").map(Number);
const TASKS = Number(args.tasks);
const BATCH = Number(args.batch);
const SCAN_TASKS = Number(args["scan-tasks"]);

/** Machine types: capacity and features (every node runs raw tasks). */
const MACHINES: readonly { capacity: Resources; features: string[] }[] = [
  { capacity: { cpuMillis: 16_000, memoryMb: 32_768, diskGb: 200 }, features: ["raw_exec"] },
  { capacity: { cpuMillis: 32_000, memoryMb: 65_536, diskGb: 500 }, features: ["raw_exec", "ssd"] },
  { capacity: { cpuMillis: 8_000, memoryMb: 16_384, diskGb: 100 }, features: ["raw_exec"] },
];

/** Task shapes, cycled. */
const SHAPES: readonly { resources: Resources; requiredFeatures: string[] }[] = [
  { resources: { cpuMillis: 100, memoryMb: 64, diskGb: 0 }, requiredFeatures: [] },
  { resources: { cpuMillis: 200, memoryMb: 128, diskGb: 0 }, requiredFeatures: [] },
  { resources: { cpuMillis: 50, memoryMb: 32, diskGb: 0 }, requiredFeatures: [] },
  { resources: { cpuMillis: 100, memoryMb: 256, diskGb: 1 }, requiredFeatures: ["ssd"] },
];

function spec(i: number): TaskSpec {
  const shape = SHAPES[i % SHAPES.length] as (typeof SHAPES)[number];
  return {
    command: "/bin/true",
    args: [],
    env: {},
    cwd: "",
    shell: false,
    resources: shape.resources,
    requiredFeatures: shape.requiredFeatures,
    timeoutMs: 0,
    maxAttempts: 1,
  };
}

type Scheduler = "index" | "scan";

/** One state machine and its log. */
class Log {
  readonly machine: ClusterStateMachine;
  #index = 0;

  constructor(scheduler: Scheduler) {
    this.machine = new ClusterStateMachine({
      maxStoreBytes: 1024 * 1024 * 1024,
      orchestrator: { referenceScheduler: scheduler === "scan" },
    });
  }

  /** Encodes `command` as a node proposes it and applies it as the next entry; returns ms taken. */
  apply(command: OrchestratorCommand): { ms: number; value: OrchestratorResult } {
    const data = encodeCommandEnvelope({
      proposedAtMs: 1_000 + this.#index,
      payload: encodeOrchestratorCommand(command),
    });
    this.#index++;
    const start = performance.now();
    const result = this.machine.apply({ index: this.#index, term: 1, data });
    const ms = performance.now() - start;
    if (!result.ok) throw new Error(`${command.type} failed: ${result.error.message}`);
    return { ms, value: result.value as OrchestratorResult };
  }

  register(nodeId: number): number {
    const machine = MACHINES[nodeId % MACHINES.length] as (typeof MACHINES)[number];
    return this.apply({ type: "registerWorker", nodeId, ...machine }).ms;
  }

  /** Submits tasks `from..to-1` in batches; returns each batch's apply ms and how many placed. */
  submit(from: number, to: number): { batchMs: number[]; placed: number } {
    const batchMs: number[] = [];
    let placed = 0;
    for (let first = from; first < to; first += BATCH) {
      const tasks = [];
      for (let i = first; i < Math.min(to, first + BATCH); i++) {
        tasks.push({ id: `task-${String(i).padStart(7, "0")}`, spec: spec(i) });
      }
      const { ms, value } = this.apply({ type: "submitTasks", tasks });
      batchMs.push(ms);
      if (value.type !== "batch") throw new Error(`submitTasks returned ${value.type}`);
      for (const item of value.items) {
        if (!item.ok) throw new Error(`task ${item.id} refused: ${item.message}`);
        if (item.status === "assigned") placed++;
      }
    }
    return { batchMs, placed };
  }

  pending(): number {
    return this.machine.orchestrator.tasks({ status: "pending", limit: 1000 }).length;
  }
}

function quantile(values: readonly number[], q: number): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.min(sorted.length - 1, Math.floor(q * sorted.length))] ?? 0;
}

const round = (value: number, digits = 2): number => Number(value.toFixed(digits));

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

interface Result {
  workers: number;
  scheduler: Scheduler;
  tasks: number;
  registerEmptyMsTotal: number;
  /** Placed tasks per second of wall time, encoding the batches included. */
  placementsPerSecond: number;
  /** Placed tasks per second of apply time alone (what every replica spends). */
  placementsPerApplySecond: number;
  batchApplyMsP50: number;
  batchApplyMsMax: number;
  registerWithPendingMsFirst: number;
  registerWithPendingMsP50: number;
  registerWithPendingMsMax: number;
  registerWithPendingMsTotal: number;
  oldPassPerRegistrationMsEstimate?: number;
}

function run(workers: number, scheduler: Scheduler): Result {
  const tasks = scheduler === "scan" ? Math.min(TASKS, SCAN_TASKS) : TASKS;

  // 1. Workers first, then submits.
  const submitLog = new Log(scheduler);
  let registerEmptyMsTotal = 0;
  for (let nodeId = 1; nodeId <= workers; nodeId++)
    registerEmptyMsTotal += submitLog.register(nodeId);
  const start = performance.now();
  const { batchMs, placed } = submitLog.submit(0, tasks);
  const submitMs = performance.now() - start;
  if (placed !== tasks) throw new Error(`only ${placed} of ${tasks} tasks were placed`);

  // The old pass: one scheduler decision per pending task, each a scan of the fleet.
  let oldPassPerRegistrationMsEstimate: number | undefined;
  if (scheduler === "scan") {
    const fleet = submitLog.machine.orchestrator.workers();
    const requests: PlacementRequest[] = SHAPES.map((shape) => ({
      resources: shape.resources,
      requiredFeatures: [...shape.requiredFeatures, "raw_exec"].sort(),
      antiAffinityGroup: "",
    }));
    const samples = 400;
    const t0 = performance.now();
    for (let i = 0; i < samples; i++) {
      choosePlacement(requests[i % requests.length] as PlacementRequest, {
        workers: fleet,
        groupNodes: new Map(),
        strategy: "binpack",
      });
    }
    oldPassPerRegistrationMsEstimate = ((performance.now() - t0) / samples) * TASKS;
  }

  // 2. Tasks first (all pending), then the workers one by one.
  const pendingLog = new Log(scheduler);
  pendingLog.submit(0, tasks);
  const registerMs: number[] = [];
  for (let nodeId = 1; nodeId <= workers; nodeId++) registerMs.push(pendingLog.register(nodeId));
  if (pendingLog.pending() !== 0)
    throw new Error("tasks are still pending after every worker registered");

  return {
    workers,
    scheduler,
    tasks,
    registerEmptyMsTotal: round(registerEmptyMsTotal),
    placementsPerSecond: Math.round(placed / (submitMs / 1000)),
    placementsPerApplySecond: Math.round(placed / (batchMs.reduce((a, b) => a + b, 0) / 1000)),
    batchApplyMsP50: round(quantile(batchMs, 0.5)),
    batchApplyMsMax: round(Math.max(...batchMs)),
    registerWithPendingMsFirst: round(registerMs[0] ?? 0),
    registerWithPendingMsP50: round(quantile(registerMs, 0.5)),
    registerWithPendingMsMax: round(Math.max(...registerMs)),
    registerWithPendingMsTotal: round(registerMs.reduce((a, b) => a + b, 0)),
    ...(oldPassPerRegistrationMsEstimate === undefined
      ? {}
      : { oldPassPerRegistrationMsEstimate: Math.round(oldPassPerRegistrationMsEstimate) }),
  };
}

interface LifecycleResult {
  workers: number;
  tasks: number;
  /** Apply time per task over its whole life (submit, started, finished), µs. */
  applyUsPerTask: number;
  submitUsPerTask: number;
  reportsUsPerTask: number;
  /** Tasks per second of apply time: the rate one replica's state machine could follow. */
  tasksPerApplySecond: number;
}

/** See `--lifecycle` in the module comment. */
function lifecycle(workers: number): LifecycleResult {
  const log = new Log("index");
  // As bench:scale sets it: each batch spreads over the fleet.
  log.apply({ type: "setSettings", settings: { placement: "spread" } });
  for (let nodeId = 1; nodeId <= workers; nodeId++) log.register(nodeId);
  let submitMs = 0;
  let reportsMs = 0;
  let finished = 0;
  for (let first = 0; first < TASKS; first += BATCH) {
    const tasks = [];
    for (let i = first; i < Math.min(TASKS, first + BATCH); i++) {
      tasks.push({ id: `task-${String(i).padStart(7, "0")}`, spec: spec(i) });
    }
    const { ms, value } = log.apply({ type: "submitTasks", tasks });
    submitMs += ms;
    if (value.type !== "batch") throw new Error(`submitTasks returned ${value.type}`);
    const byNode = new Map<number, AgentReport[]>();
    for (const item of value.items) {
      if (!item.ok || item.status !== "assigned") throw new Error(`task ${item.id} not placed`);
      const task = log.machine.orchestrator.task(item.id);
      const nodeId = task?.nodeId as number;
      const reports = byNode.get(nodeId) ?? [];
      reports.push({ type: "taskStarted", id: item.id, nodeId, attempt: 1 });
      reports.push({
        type: "taskFinished",
        id: item.id,
        nodeId,
        attempt: 1,
        outcome: "succeeded",
        result: SUCCEEDED,
      });
      byNode.set(nodeId, reports);
    }
    for (const [nodeId, all] of byNode) {
      const reports = all.slice(0, MAX_AGENT_REPORTS_PER_BATCH);
      if (reports.length < all.length) throw new Error(`node ${nodeId} got over 128 tasks`);
      const { ms: reportMs, value: answer } = log.apply({ type: "agentReports", nodeId, reports });
      reportsMs += reportMs;
      if (answer.type !== "batch") throw new Error(`agentReports returned ${answer.type}`);
      for (const item of answer.items) {
        if (!item.ok) throw new Error(`report on ${item.id} refused: ${item.message}`);
        if (item.status === "succeeded") finished++;
      }
    }
  }
  if (finished !== TASKS) throw new Error(`only ${finished} of ${TASKS} tasks finished`);
  const totalMs = submitMs + reportsMs;
  return {
    workers,
    tasks: TASKS,
    applyUsPerTask: round((totalMs * 1000) / TASKS),
    submitUsPerTask: round((submitMs * 1000) / TASKS),
    reportsUsPerTask: round((reportsMs * 1000) / TASKS),
    tasksPerApplySecond: Math.round(TASKS / (totalMs / 1000)),
  };
}

if (args.lifecycle === true) {
  const lifecycles = WORKER_COUNTS.map((workers) => {
    const result = lifecycle(workers);
    log(
      `${String(workers).padStart(5)} workers, ${result.tasks} tasks, whole life: ` +
        `${result.applyUsPerTask} µs of apply per task (submit ${result.submitUsPerTask}, ` +
        `reports ${result.reportsUsPerTask}): ${result.tasksPerApplySecond} tasks per second of apply`,
    );
    return result;
  });
  process.stdout.write(`BENCH_JSON ${JSON.stringify({ batch: BATCH, lifecycle: lifecycles })}\n`);
  process.exit(0);
}

const results: Result[] = [];
for (const workers of WORKER_COUNTS) {
  for (const scheduler of ["index", "scan"] as const) {
    const result = run(workers, scheduler);
    results.push(result);
    log(
      `${String(workers).padStart(5)} workers ${scheduler.padEnd(5)} ${result.tasks} tasks: ` +
        `${result.placementsPerSecond} placements/s (${result.placementsPerApplySecond}/s of apply), batch of ${BATCH} p50 ${result.batchApplyMsP50} ms ` +
        `max ${result.batchApplyMsMax} ms; one registration with all pending ` +
        `${result.registerWithPendingMsFirst} ms (p50 ${result.registerWithPendingMsP50}, ` +
        `max ${result.registerWithPendingMsMax}, all ${result.registerWithPendingMsTotal} ms)` +
        (result.oldPassPerRegistrationMsEstimate === undefined
          ? ""
          : `; old item-by-item pass ≈ ${result.oldPassPerRegistrationMsEstimate} ms per registration with ${TASKS} pending`),
    );
  }
}
process.stdout.write(`BENCH_JSON ${JSON.stringify({ batch: BATCH, results })}\n`);
