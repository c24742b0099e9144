/**
 * The orchestrator simulation replays exactly by seed, leaves kv-only runs as they were, and
 * catches the bugs planted in its agent wiring: abandoned task attempts and moved VMs that are
 * reported gone but keep running.
 */
import { describe, expect, it } from "vitest";
import { runSimulation, type SimulationOptions } from "../../src/sim/run.js";

interface Caught {
  readonly seed: number;
  readonly seedsRun: number;
  readonly properties: string[];
  readonly replay: string;
  readonly traceTail: readonly string[];
}

async function firstViolation(
  options: Omit<SimulationOptions, "seed">,
  seeds: readonly number[],
): Promise<Caught | undefined> {
  for (const [i, seed] of seeds.entries()) {
    const report = await runSimulation({ seed, ...options });
    if (report.violations.length > 0) {
      return {
        seed,
        seedsRun: i + 1,
        properties: report.violations.map((v) => v.property),
        replay: report.replayCommand,
        traceTail: report.traceTail,
      };
    }
  }
  return undefined;
}

const SEEDS = Array.from({ length: 30 }, (_, i) => i + 1);

function reportCatch(name: string, found: Caught | undefined): void {
  console.log(
    found === undefined
      ? `planted bug ${name}: NOT caught in ${SEEDS.length} seeds`
      : `planted bug ${name}: caught at seed ${found.seed} (${found.seedsRun} seeds run) ` +
          `[${found.properties.join(", ")}]; replay: ${found.replay}`,
  );
}

describe("orchestrator simulation", () => {
  it("replays a seed exactly: same seed, same report and trace hash", async () => {
    const first = await runSimulation({ seed: 7, orchestrator: true, durationMs: 6000 });
    const second = await runSimulation({ seed: 7, orchestrator: true, durationMs: 6000 });
    expect(second).toEqual(first);
    expect(first.orchestrator?.tasks.submitted).toBeGreaterThan(0);
    expect(first.replayCommand).toContain("--orchestrator");
    const other = await runSimulation({ seed: 8, orchestrator: true, durationMs: 6000 });
    expect(other.traceHash).not.toBe(first.traceHash);
  });

  it("leaves a run without the orchestrator as it was", async () => {
    const report = await runSimulation({ seed: 7, durationMs: 3000 });
    expect(report.orchestrator).toBeUndefined();
    expect(report.replayCommand).not.toContain("--orchestrator");
    await expect(
      runSimulation({ seed: 7, durationMs: 3000, bugs: { leakMovedVms: true } }),
    ).rejects.toThrow(/need --orchestrator/);
  });

  it("catches an agent that loses track of an abandoned task attempt", async () => {
    const found = await firstViolation(
      { orchestrator: true, bugs: { leakAbandonedTasks: true } },
      SEEDS,
    );
    reportCatch("leak-abandoned-tasks", found);
    expect(found, "no seed caught the leaked task attempts").toBeDefined();
    expect(found?.properties).toContain("orchestrator-zombie-process");
    expect(found?.replay).toContain("--orchestrator --bug leak-abandoned-tasks");
    expect(found?.traceTail.some((line) => line.includes("LEAKED"))).toBe(true);
  }, 120_000);

  it("catches an agent that loses track of a VM moved away", async () => {
    const found = await firstViolation({ orchestrator: true, bugs: { leakMovedVms: true } }, SEEDS);
    reportCatch("leak-moved-vms", found);
    expect(found, "no seed caught the leaked VMs").toBeDefined();
    expect(
      found?.properties.some((p) =>
        [
          "orchestrator-zombie-process",
          "orchestrator-runs-twice",
          "orchestrator-orphan-process",
        ].includes(p),
      ),
    ).toBe(true);
  }, 120_000);
});
