/**
 * The cost of taking a snapshot of a large state on the node's event loop (issue 20): a cluster
 * state machine filled with `--keys` distinct keys of `--value-bytes`, snapshotted
 *
 * - in one pass (`snapshot()`, what state machines without `captureSnapshot` still do): the
 *   whole encoding blocks the event loop;
 * - captured and encoded a slice at a time (`captureSnapshot()`, what real nodes do), driven by
 *   the runtime's `SlicedSnapshotRunner` on the real clock between turns of the event loop.
 *
 * For each it prints the encoding's total time, the longest the event loop was held (one pass:
 * all of it; sliced: the capture or the slowest call, measured around each call) in wall time and
 * in the process's CPU time (on a loaded machine wall time includes being descheduled), the
 * event loop's largest delay seen by `monitorEventLoopDelay`, wall time to the complete bytes,
 * and the size; then whether the bytes are identical. Also the synchronous part of writing the
 * snapshot file as `WalLogStore.saveSnapshot` does (`encodeSnapshotFile`: a copy and a CRC-32).
 * Numbers only; asserts nothing but the identical bytes.
 *
 * Then the same for an orchestrator-heavy state (`--tasks` over `--workers`, empty kv store), made
 * through the real command path: workers registered, tasks submitted in batches of 1,000 (placed
 * as they come), a quarter of them started and `--finished` of those finished, by agent reports.
 *
 *   npm run bench:snapshot [-- --keys 50000,200000 --value-bytes 1024 --rounds 3
 *                              --tasks 100000 --workers 1000 --finished 5000]
 *
 * `--keys ""` or `--tasks 0` skips that state.
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { SlicedSnapshotRunner } from "../src/node/sliced-snapshot-runner.js";
import { SystemClock } from "../src/platform/clock.js";
import {
  ClusterStateMachine,
  encodeOrchestratorCommand,
} from "../src/statemachine/cluster/cluster-state-machine.js";
import { encodeKvCommand } from "../src/statemachine/kv/command-codec.js";
import type { OrchestratorCommand } from "../src/statemachine/orchestrator/commands.js";
import type { TaskSpec } from "../src/statemachine/orchestrator/types.js";
import { encodeCommandEnvelope } from "../src/statemachine/session/envelope.js";
import type { SnapshotEncoding } from "../src/statemachine/state-machine.js";
import { encodeSnapshotFile } from "../src/storage/snapshot-file.js";

const { values: args } = parseArgs({
  options: {
    keys: { type: "string", default: "50000,200000" },
    "value-bytes": { type: "string", default: "1024" },
    rounds: { type: "string", default: "3" },
    tasks: { type: "string", default: "100000" },
    workers: { type: "string", default: "1000" },
    finished: { type: "string", default: "5000" },
  },
});
const KEY_COUNTS = args.keys === "" ? [] : args.keys.split(",").map(Number);
const TASKS = Number(args.tasks);
const WORKERS = Number(args.workers);
const FINISHED = Number(args.finished);
const VALUE_BYTES = Number(args["value-bytes"]);
const ROUNDS = Number(args.rounds);

function filled(keys: number): ClusterStateMachine {
  const machine = new ClusterStateMachine({ maxStoreBytes: 8 * 1024 * 1024 * 1024 });
  const value = new Uint8Array(VALUE_BYTES).fill(120);
  for (let i = 0; i < keys; i++) {
    machine.apply({
      index: i + 1,
      term: 1,
      data: encodeCommandEnvelope({
        proposedAtMs: i,
        payload: encodeKvCommand({ op: "put", key: `key/${String(i).padStart(8, "0")}`, value }),
      }),
    });
  }
  return machine;
}

/** A cluster state machine applying orchestrator commands as the log would (sessionless). */
function orchestratorApplier(machine: ClusterStateMachine) {
  let index = 0;
  return (command: OrchestratorCommand): void => {
    index++;
    const result = machine.apply({
      index,
      term: 1,
      data: encodeCommandEnvelope({
        proposedAtMs: index,
        payload: encodeOrchestratorCommand(command),
      }),
    });
    if (!result.ok) throw new Error(`${command.type} failed: ${result.error.message}`);
  };
}

const TASK_SPEC: TaskSpec = {
  command: "/bin/sh",
  args: ["-c", "sleep 1"],
  env: { JOB: "bench" },
  cwd: "",
  shell: false,
  resources: { cpuMillis: 100, memoryMb: 64, diskGb: 0 },
  requiredFeatures: [],
  timeoutMs: 0,
  maxAttempts: 3,
};

/** `tasks` tasks over `workers` workers (see the module comment), through `apply`. */
function orchestratorFilled(tasks: number, workers: number, finished: number): ClusterStateMachine {
  const machine = new ClusterStateMachine();
  const apply = orchestratorApplier(machine);
  for (let nodeId = 1; nodeId <= workers; nodeId++) {
    apply({
      type: "registerWorker",
      nodeId,
      capacity: { cpuMillis: 1_000_000, memoryMb: 1_000_000, diskGb: 100 },
      features: ["raw_exec"],
    });
  }
  const id = (i: number) => `task-${String(i).padStart(7, "0")}`;
  for (let first = 0; first < tasks; first += 1000) {
    const batch = [];
    for (let i = first; i < Math.min(tasks, first + 1000); i++)
      batch.push({ id: id(i), spec: TASK_SPEC });
    apply({ type: "submitTasks", tasks: batch });
  }
  // Agents report a quarter of the tasks started, then some of those finished.
  const started = Math.floor(tasks / 4);
  for (let i = 0; i < started; i++) {
    const task = machine.orchestrator.task(id(i));
    if (task?.nodeId === null || task === undefined) continue;
    apply({ type: "taskStarted", id: task.id, nodeId: task.nodeId, attempt: task.attempts });
    if (i >= finished) continue;
    apply({
      type: "taskFinished",
      id: task.id,
      nodeId: task.nodeId,
      attempt: task.attempts,
      outcome: "succeeded",
      result: {
        exitCode: 0,
        stdout: "done\n",
        stderr: "",
        stdoutTruncated: false,
        stderrTruncated: false,
        durationMs: 1000,
        error: "",
      },
    });
  }
  return machine;
}

/** This process's CPU time so far (all its threads: the collector's too), in ms. */
function cpuMs(): number {
  const { user, system } = process.cpuUsage();
  return (user + system) / 1000;
}

/**
 * An encoding that records how long each call held the loop, in wall time and in CPU time (the
 * latter tells a slow slice from one the machine's load descheduled).
 */
function timed(encoding: SnapshotEncoding, blocksMs: number[], cpusMs: number[]): SnapshotEncoding {
  return {
    get encodedBytes() {
      return encoding.encodedBytes;
    },
    next: (budgetBytes) => {
      const start = performance.now();
      const startCpu = cpuMs();
      const slice = encoding.next(budgetBytes);
      blocksMs.push(performance.now() - start);
      cpusMs.push(cpuMs() - startCpu);
      return slice;
    },
    finish: () => encoding.finish(),
    close: () => encoding.close(),
    get sizeBytes() {
      return encoding.sizeBytes;
    },
    startStreaming: () => encoding.startStreaming(),
    take: () => encoding.take(),
  };
}

interface Measure {
  totalMs: number;
  longestBlockMs: number;
  /** CPU time of the longest block (by CPU time). */
  longestCpuMs: number;
  loopDelayMaxMs: number;
  wallMs: number;
  bytes: Uint8Array;
}

async function onePass(machine: ClusterStateMachine): Promise<Measure> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  await new Promise((resolve) => setTimeout(resolve, 5));
  const start = performance.now();
  const startCpu = cpuMs();
  const bytes = machine.snapshot();
  const totalMs = performance.now() - start;
  const longestCpuMs = cpuMs() - startCpu;
  await new Promise((resolve) => setTimeout(resolve, 5));
  histogram.disable();
  return {
    totalMs,
    longestBlockMs: totalMs,
    longestCpuMs,
    loopDelayMaxMs: histogram.max / 1e6,
    wallMs: totalMs,
    bytes,
  };
}

async function sliced(machine: ClusterStateMachine): Promise<Measure> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  await new Promise((resolve) => setTimeout(resolve, 5));
  const start = performance.now();
  const startCpu = cpuMs();
  const encoding = machine.captureSnapshot();
  const captureMs = performance.now() - start;
  const captureCpuMs = cpuMs() - startCpu;
  const slicesMs: number[] = [];
  const slicesCpuMs: number[] = [];
  const clock = new SystemClock();
  // The runtime's turns: time each turn as the slices between two timer callbacks.
  const turnsMs: number[] = [];
  let turnStart = -1;
  const measuredClock = {
    now: () => clock.now(),
    setTimer: (delayMs: number, callback: () => void) =>
      clock.setTimer(delayMs, () => {
        if (turnStart >= 0) turnsMs.push(performance.now() - turnStart);
        turnStart = performance.now();
        callback();
      }),
  };
  const outcome = await new SlicedSnapshotRunner(
    measuredClock,
    timed(encoding, slicesMs, slicesCpuMs),
  ).run(() => true);
  turnsMs.push(performance.now() - turnStart);
  const wallMs = performance.now() - start;
  await new Promise((resolve) => setTimeout(resolve, 5));
  histogram.disable();
  if (outcome.kind !== "complete") throw new Error("the sliced snapshot was abandoned");
  // A turn's time includes the wait for its timer; the slices it ran are what held the loop.
  return {
    totalMs: captureMs + slicesMs.reduce((sum, ms) => sum + ms, 0),
    longestBlockMs: Math.max(captureMs, ...slicesMs),
    longestCpuMs: Math.max(captureCpuMs, ...slicesCpuMs),
    loopDelayMaxMs: histogram.max / 1e6,
    wallMs,
    bytes: outcome.data,
  };
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] as number;
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  return Buffer.from(a.buffer, a.byteOffset, a.length).equals(
    Buffer.from(b.buffer, b.byteOffset, b.length),
  );
}

const fmt = (ms: number) => ms.toFixed(1).padStart(8);
const results: Record<string, unknown>[] = [];

/** Measures both modes on `machine` (`label` names the state in the rows) and the file encoding. */
async function measure(label: string, machine: ClusterStateMachine): Promise<void> {
  const runs: Record<"onePass" | "sliced", Measure[]> = { onePass: [], sliced: [] };
  for (let round = 0; round < ROUNDS; round++) {
    runs.onePass.push(await onePass(machine));
    runs.sliced.push(await sliced(machine));
  }
  const reference = runs.onePass[0]?.bytes as Uint8Array;
  for (const mode of ["onePass", "sliced"] as const) {
    const measures = runs[mode];
    const identical = measures.every((m) => sameBytes(m.bytes, reference));
    const row = {
      state: label,
      mode,
      totalMs: median(measures.map((m) => m.totalMs)),
      longestBlockMs: median(measures.map((m) => m.longestBlockMs)),
      longestCpuMs: median(measures.map((m) => m.longestCpuMs)),
      loopDelayMaxMs: median(measures.map((m) => m.loopDelayMaxMs)),
      wallMs: median(measures.map((m) => m.wallMs)),
      bytes: reference.length,
      identical,
    };
    results.push(row);
    process.stdout.write(
      `${label.padEnd(14)} ${mode.padEnd(8)} ${fmt(row.totalMs)} ${fmt(row.longestBlockMs)} ${fmt(row.longestCpuMs)} ` +
        `${fmt(row.loopDelayMaxMs)} ${fmt(row.wallMs)} ${(row.bytes / 2 ** 20).toFixed(1).padStart(8)}  ${identical ? "yes" : "NO"}\n`,
    );
    if (!identical) process.exitCode = 1;
  }
  const fileMs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const start = performance.now();
    encodeSnapshotFile({
      metadata: {
        index: 1,
        term: 1,
        confState: {
          voters: [1],
          learners: [],
          votersOutgoing: [],
          learnersNext: [],
          autoLeave: false,
        },
      },
      data: reference,
    });
    fileMs.push(performance.now() - start);
  }
  process.stdout.write(
    `${label.padEnd(14)} file     ${fmt(median(fileMs))}  (snapshot file bytes: copy + CRC-32, one pass)\n`,
  );
  results.push({ state: label, mode: "snapshotFileEncode", totalMs: median(fileMs) });
}

process.stdout.write(
  `kv states: keys × ${VALUE_BYTES} B; orchestrator state: tasks/workers; median of ${ROUNDS} rounds (ms)\n` +
    "state          mode       total  longest  longCpu  loopMax     wall       MB  identical\n",
);
for (const keys of KEY_COUNTS) await measure(`${keys} keys`, filled(keys));
if (TASKS > 0) {
  const start = performance.now();
  const machine = orchestratorFilled(TASKS, WORKERS, FINISHED);
  process.stdout.write(
    `(orchestrator state built through apply in ${((performance.now() - start) / 1000).toFixed(1)} s)\n`,
  );
  await measure(`${TASKS}/${WORKERS}`, machine);
}
process.stdout.write(
  `BENCH_JSON ${JSON.stringify({ valueBytes: VALUE_BYTES, tasks: TASKS, workers: WORKERS, results })}\n`,
);
