/**
 * A batch of seeds of mixed faults for `npm test`, split over several test files so vitest's
 * fork pool runs them in parallel. Every checker must pass, and the batch must really have seen
 * several elections and membership changes per seed (so it cannot silently degenerate).
 */
import { expect, it } from "vitest";
import { runSimulation, type SimulationReport } from "../../src/sim/run.js";

/** Seeds in `npm test`, over all batch files. */
export const BATCH_SEEDS_TOTAL = 500;
/** Batch files: test/sim/batch-<n>.test.ts for n in 1..BATCH_FILES. */
export const BATCH_FILES = 4;
/** Virtual length of each run's fault phase: several elections and membership changes. */
const DURATION_MS = 10_000;

function describeFailure(report: SimulationReport): string {
  return (
    `seed ${report.seed}: ${report.violations.map((v) => `[${v.property}] ${v.message}`).join("\n")}\n` +
    `${report.traceTail.join("\n")}\nreplay: ${report.replayCommand}`
  );
}

/** Registers the test of batch `part` (1-based) of {@link BATCH_FILES}. */
export function batchTest(part: number): void {
  const size = BATCH_SEEDS_TOTAL / BATCH_FILES;
  const seeds = Array.from({ length: size }, (_, i) => (part - 1) * size + i + 1);
  it(`passes every checker on seeds ${seeds[0]}..${seeds.at(-1)} with mixed faults and membership changes`, async () => {
    const failures: string[] = [];
    let elections = 0;
    let membershipChanges = 0;
    let operations = 0;
    let faults = 0;
    for (const seed of seeds) {
      const report = await runSimulation({ seed, durationMs: DURATION_MS, membership: true });
      elections += report.termsWithLeader;
      const f = report.faultsInjected;
      membershipChanges += (f["add-learner"] ?? 0) + (f["promote"] ?? 0) + (f["remove"] ?? 0);
      operations += report.operations.total;
      faults += Object.values(f).reduce((a, b) => a + b, 0);
      if (report.violations.length > 0) failures.push(describeFailure(report));
    }
    console.log(
      `batch ${part}: ${seeds.length} seeds, ${elections} terms with a leader, ` +
        `${membershipChanges} membership changes, ${faults} faults, ${operations} operations`,
    );
    expect(failures).toEqual([]);
    expect(elections).toBeGreaterThanOrEqual(seeds.length * 2);
    expect(membershipChanges).toBeGreaterThanOrEqual(seeds.length);
    expect(operations).toBeGreaterThan(seeds.length * 50);
    expect(faults).toBeGreaterThan(seeds.length * 5);
  }, 200_000);
}
