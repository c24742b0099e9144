/**
 * The simulator must catch bugs planted on purpose: each test runs seeds with the bug until one
 * reports a violation (a handful is enough), and fails if none does.
 */
import { describe, expect, it } from "vitest";
import { runSimulation, type SimulationOptions } from "../../src/sim/run.js";

async function firstViolation(
  options: Omit<SimulationOptions, "seed">,
  seeds: readonly number[],
): Promise<{ seed: number; properties: string[]; replay: string } | undefined> {
  for (const seed of seeds) {
    const report = await runSimulation({ seed, ...options });
    if (report.violations.length > 0) {
      return {
        seed,
        properties: report.violations.map((v) => v.property),
        replay: report.replayCommand,
      };
    }
  }
  return undefined;
}

const SEEDS = Array.from({ length: 12 }, (_, i) => 100 + i);

describe("planted bugs are caught", () => {
  it("(i) a disk that acknowledges writes before they are durable", async () => {
    const found = await firstViolation(
      { durationMs: 8000, faults: ["crash"], bugs: { ackBeforeDurable: true } },
      SEEDS,
    );
    expect(found, "no seed caught the lost acknowledged writes").toBeDefined();
    expect(found?.replay).toContain("--bug ack-before-durable");
  }, 60_000);

  it("(ii) a replica whose compare-and-set ignores the expected value", async () => {
    const found = await firstViolation(
      { durationMs: 5000, bugs: { casIgnoresExpectedOnNode: 1 } },
      SEEDS,
    );
    expect(found).toBeDefined();
    expect(found?.properties).toContain("state-machine-safety");
  }, 60_000);

  it("(iii) a transport that turns rejected vote responses into granted ones", async () => {
    const found = await firstViolation(
      {
        durationMs: 8000,
        faults: ["partition", "crash", "pause"],
        bugs: { grantAllVotes: true },
      },
      SEEDS,
    );
    expect(found).toBeDefined();
    expect(
      found?.properties.some((p) =>
        [
          "election-safety",
          "leader-completeness",
          "log-matching",
          "state-machine-safety",
          "linearizability",
          "fatal",
        ].includes(p),
      ),
    ).toBe(true);
  }, 60_000);

  it("the same runs pass without the bugs", async () => {
    const found = await firstViolation({ durationMs: 8000, faults: ["crash"] }, SEEDS.slice(0, 4));
    expect(found).toBeUndefined();
  }, 60_000);
});
