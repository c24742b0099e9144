import { describe, expect, it } from "vitest";
import { runSimulation, type SimulationReport } from "../../src/sim/run.js";

function describeFailure(report: SimulationReport): string {
  return `seed ${report.seed}: ${report.violations
    .map((v) => `[${v.property}] ${v.message}`)
    .join("\n")}\nreplay: ${report.replayCommand}`;
}

describe("deterministic simulation", () => {
  it("replays a seed exactly: same seed, same report and trace hash", async () => {
    const first = await runSimulation({ seed: 42, durationMs: 5000 });
    const second = await runSimulation({ seed: 42, durationMs: 5000 });
    expect(second).toEqual(first);
    expect(second.traceHash).toBe(first.traceHash);
    expect(first.operations.total).toBeGreaterThan(0);
    const other = await runSimulation({ seed: 43, durationMs: 5000 });
    expect(other.traceHash).not.toBe(first.traceHash);
  });

  // Seeds 1..N with every fault kind, message loss, duplication, reordering, crashes with torn
  // writes, pauses, and membership changes in about half the runs: every checker must pass.
  const SEEDS = Array.from({ length: 40 }, (_, i) => i + 1);
  it(`passes every checker on ${SEEDS.length} seeds with faults`, async () => {
    const failures: string[] = [];
    let operations = 0;
    let faults = 0;
    let membershipRuns = 0;
    for (const seed of SEEDS) {
      const report = await runSimulation({ seed, durationMs: 8000 });
      operations += report.operations.total;
      faults += Object.values(report.faultsInjected).reduce((a, b) => a + b, 0);
      if (report.parameters.membership) membershipRuns++;
      if (report.violations.length > 0) failures.push(describeFailure(report));
    }
    expect(failures).toEqual([]);
    expect(operations).toBeGreaterThan(SEEDS.length * 50);
    expect(faults).toBeGreaterThan(SEEDS.length * 5);
    expect(membershipRuns).toBeGreaterThan(0);
  }, 80_000);
});
