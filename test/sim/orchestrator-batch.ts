/**
 * Seeds of the orchestrator simulation for `npm test`, split over two files so vitest's fork pool
 * runs them side by side. Every checker must pass, and the batch must really have finished,
 * retried and lost tasks, marked workers offline and moved VMs, so it cannot silently degenerate.
 */
import { expect, it } from "vitest";
import { runSimulation, type SimulationReport } from "../../src/sim/run.js";

/** Seeds in `npm test`, over both files. */
export const ORCHESTRATOR_SEEDS_TOTAL = 60;
/** Batch files: test/sim/orchestrator-batch-<n>.test.ts for n in 1..ORCHESTRATOR_BATCH_FILES. */
export const ORCHESTRATOR_BATCH_FILES = 2;

function describeFailure(report: SimulationReport): string {
  return (
    `seed ${report.seed}: ${report.violations.map((v) => `[${v.property}] ${v.message}`).join("\n")}\n` +
    `${report.traceTail.join("\n")}\nreplay: ${report.replayCommand}`
  );
}

/** Registers the test of batch `part` (1-based). */
export function orchestratorBatchTest(part: number): void {
  const size = ORCHESTRATOR_SEEDS_TOTAL / ORCHESTRATOR_BATCH_FILES;
  const seeds = Array.from({ length: size }, (_, i) => (part - 1) * size + i + 1);
  it(`passes every checker on seeds ${seeds[0]}..${seeds.at(-1)} with the orchestrator under mixed faults`, async () => {
    const failures: string[] = [];
    const totals = {
      finished: 0,
      succeeded: 0,
      retried: 0,
      lost: 0,
      cancelled: 0,
      offline: 0,
      vmsMoved: 0,
      killedByCrash: 0,
      crashes: 0,
      partitions: 0,
      pauses: 0,
    };
    let slowestSettleMs = 0;
    for (const seed of seeds) {
      const report = await runSimulation({ seed, orchestrator: true });
      const o = report.orchestrator;
      if (o === undefined) throw new Error("an orchestrator run must report the orchestrator");
      const t = o.tasks;
      totals.finished += t.succeeded + t.failed + t.timedOut + t.cancelled + t.lost;
      totals.succeeded += t.succeeded;
      totals.retried += t.retried;
      totals.lost += t.lost;
      totals.cancelled += t.cancelled;
      totals.offline += o.workersMarkedOffline;
      totals.vmsMoved += o.vms.moved;
      totals.killedByCrash += o.processes.killedByCrash;
      const f = report.faultsInjected;
      totals.crashes += f["crash"] ?? 0;
      totals.partitions += (f["partition"] ?? 0) + (f["one-way"] ?? 0);
      totals.pauses += f["pause"] ?? 0;
      slowestSettleMs = Math.max(slowestSettleMs, o.settledAfterHealMs ?? 0);
      if (report.violations.length > 0) failures.push(describeFailure(report));
    }
    console.log(
      `orchestrator batch ${part}: ${seeds.length} seeds, ${totals.finished} tasks finished ` +
        `(${totals.succeeded} succeeded, ${totals.cancelled} cancelled, ${totals.retried} retried, ` +
        `${totals.lost} lost), ${totals.offline} workers marked offline, ${totals.vmsMoved} VM moves, ` +
        `${totals.killedByCrash} processes killed by crashes; faults: ${totals.crashes} crashes, ` +
        `${totals.partitions} partitions, ${totals.pauses} pauses; slowest settle ${slowestSettleMs} ms after the heal`,
    );
    expect(failures).toEqual([]);
    expect(totals.finished).toBeGreaterThan(seeds.length * 10);
    expect(totals.succeeded).toBeGreaterThan(seeds.length * 5);
    expect(totals.cancelled).toBeGreaterThan(0);
    expect(totals.retried).toBeGreaterThan(0);
    expect(totals.lost).toBeGreaterThan(0);
    expect(totals.offline).toBeGreaterThan(0);
    expect(totals.vmsMoved).toBeGreaterThan(0);
    expect(totals.killedByCrash).toBeGreaterThan(0);
    expect(Math.min(totals.crashes, totals.partitions, totals.pauses)).toBeGreaterThan(0);
  }, 200_000);
}
