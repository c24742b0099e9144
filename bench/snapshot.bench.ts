/**
 * The cost of taking a snapshot of a large state on the node's event loop (issue 20): a cluster
 * state machine filled with `--keys` distinct keys of `--value-bytes`, snapshotted
 *
 * - in one pass (`snapshot()`, what state machines without `captureSnapshot` still do): the
 *   whole encoding blocks the event loop;
 * - captured and encoded a slice at a time (`captureSnapshot()`, what real nodes do), driven by
 *   the runtime's `SlicedSnapshotRunner` on the real clock between turns of the event loop.
 *
 * For each it prints the encoding's total CPU time, the longest the event loop was held (one
 * pass: all of it; sliced: the capture or the slowest turn, measured around each call), the
 * event loop's largest delay seen by `monitorEventLoopDelay`, wall time to the complete bytes,
 * and the size; then whether the bytes are identical. Also the synchronous part of writing the
 * snapshot file as `WalLogStore.saveSnapshot` does (`encodeSnapshotFile`: a copy and a CRC-32).
 * Numbers only; asserts nothing but the identical bytes.
 *
 *   npm run bench:snapshot [-- --keys 50000,200000 --value-bytes 1024 --rounds 3]
 */
import { monitorEventLoopDelay } from "node:perf_hooks";
import { parseArgs } from "node:util";
import { SlicedSnapshotRunner } from "../src/node/sliced-snapshot-runner.js";
import { SystemClock } from "../src/platform/clock.js";
import { ClusterStateMachine } from "../src/statemachine/cluster/cluster-state-machine.js";
import { encodeKvCommand } from "../src/statemachine/kv/command-codec.js";
import { encodeCommandEnvelope } from "../src/statemachine/session/envelope.js";
import type { SnapshotEncoding } from "../src/statemachine/state-machine.js";
import { encodeSnapshotFile } from "../src/storage/snapshot-file.js";

const { values: args } = parseArgs({
  options: {
    keys: { type: "string", default: "50000,200000" },
    "value-bytes": { type: "string", default: "1024" },
    rounds: { type: "string", default: "3" },
  },
});
const KEY_COUNTS = args.keys.split(",").map(Number);
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

/** An encoding that records how long each call held the loop. */
function timed(encoding: SnapshotEncoding, blocksMs: number[]): SnapshotEncoding {
  return {
    sizeBytes: encoding.sizeBytes,
    next: (budgetBytes) => {
      const start = performance.now();
      const slice = encoding.next(budgetBytes);
      blocksMs.push(performance.now() - start);
      return slice;
    },
    finish: () => encoding.finish(),
    close: () => encoding.close(),
  };
}

interface Measure {
  totalMs: number;
  longestBlockMs: number;
  loopDelayMaxMs: number;
  wallMs: number;
  bytes: Uint8Array;
}

async function onePass(machine: ClusterStateMachine): Promise<Measure> {
  const histogram = monitorEventLoopDelay({ resolution: 1 });
  histogram.enable();
  await new Promise((resolve) => setTimeout(resolve, 5));
  const start = performance.now();
  const bytes = machine.snapshot();
  const totalMs = performance.now() - start;
  await new Promise((resolve) => setTimeout(resolve, 5));
  histogram.disable();
  return {
    totalMs,
    longestBlockMs: totalMs,
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
  const encoding = machine.captureSnapshot();
  const captureMs = performance.now() - start;
  const slicesMs: number[] = [];
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
  const outcome = await new SlicedSnapshotRunner(measuredClock, timed(encoding, slicesMs)).run(
    () => true,
  );
  turnsMs.push(performance.now() - turnStart);
  const wallMs = performance.now() - start;
  await new Promise((resolve) => setTimeout(resolve, 5));
  histogram.disable();
  if (outcome.kind !== "complete") throw new Error("the sliced snapshot was abandoned");
  // A turn's time includes the wait for its timer; the slices it ran are what held the loop.
  return {
    totalMs: captureMs + slicesMs.reduce((sum, ms) => sum + ms, 0),
    longestBlockMs: Math.max(captureMs, ...slicesMs),
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
process.stdout.write(
  `keys × ${VALUE_BYTES} B, median of ${ROUNDS} rounds (ms)\n` +
    "keys      mode       total  longest  loopMax     wall       MB  identical\n",
);
for (const keys of KEY_COUNTS) {
  const machine = filled(keys);
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
      keys,
      mode,
      totalMs: median(measures.map((m) => m.totalMs)),
      longestBlockMs: median(measures.map((m) => m.longestBlockMs)),
      loopDelayMaxMs: median(measures.map((m) => m.loopDelayMaxMs)),
      wallMs: median(measures.map((m) => m.wallMs)),
      bytes: reference.length,
      identical,
    };
    results.push(row);
    process.stdout.write(
      `${String(keys).padEnd(9)} ${mode.padEnd(8)} ${fmt(row.totalMs)} ${fmt(row.longestBlockMs)} ` +
        `${fmt(row.loopDelayMaxMs)} ${fmt(row.wallMs)} ${(row.bytes / 2 ** 20).toFixed(1).padStart(8)}  ${identical ? "yes" : "NO"}\n`,
    );
    if (!identical) process.exitCode = 1;
  }
  const fileMs: number[] = [];
  for (let round = 0; round < ROUNDS; round++) {
    const start = performance.now();
    encodeSnapshotFile({
      metadata: {
        index: keys,
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
    `${String(keys).padEnd(9)} file     ${fmt(median(fileMs))}  (snapshot file bytes: copy + CRC-32, one pass)\n`,
  );
  results.push({ keys, mode: "snapshotFileEncode", totalMs: median(fileMs) });
}
process.stdout.write(`BENCH_JSON ${JSON.stringify({ valueBytes: VALUE_BYTES, results })}\n`);
