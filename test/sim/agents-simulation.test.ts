/**
 * The simulator runs servers and agent-only workers (`--agents`): the shipped RemoteAgent over
 * the agent protocol, on the simulated network, cut off from the servers and crashed by faults
 * of its own. Clean seeds pass every check (no task ends twice, nothing placed on an offline
 * worker, no work left running on a cut-off agent past its grace, everything settles), and an
 * agent that keeps its work past the servers' dead-after time is caught.
 */
import { describe, expect, it } from "vitest";
import { runSimulation } from "../../src/sim/run.js";

const CLEAN_SEEDS = Array.from({ length: 10 }, (_, i) => i + 1);
const BUG_SEEDS = Array.from({ length: 30 }, (_, i) => i + 1);

describe("simulation with agent-only workers", () => {
  it("replays a seed exactly, and the agents run work", async () => {
    const first = await runSimulation({ seed: 3, orchestrator: true, agents: 3 });
    const second = await runSimulation({ seed: 3, orchestrator: true, agents: 3 });
    expect(second).toEqual(first);
    expect(first.replayCommand).toContain("--orchestrator --agents 3");
    expect(first.orchestrator?.agents?.count).toBe(3);
  }, 60_000);

  it("passes every check on clean seeds, with agents cut off and crashed", async () => {
    let cuts = 0;
    let crashes = 0;
    let onAgents = 0;
    for (const seed of CLEAN_SEEDS) {
      const report = await runSimulation({ seed, orchestrator: true, agents: 4 });
      expect(
        report.violations.map((v) => `${v.property}: ${v.message}`),
        `seed ${seed}: ${report.replayCommand}`,
      ).toEqual([]);
      cuts += report.orchestrator?.agents?.cuts ?? 0;
      crashes += report.orchestrator?.agents?.crashes ?? 0;
      onAgents += report.orchestrator?.agents?.tasksOnAgents ?? 0;
    }
    // The faults happened and the agents did real work, or the passes above prove little.
    expect(cuts).toBeGreaterThan(0);
    expect(crashes).toBeGreaterThan(0);
    expect(onAgents).toBeGreaterThan(0);
  }, 180_000);

  it("catches an agent that keeps its work past the servers' dead-after time", async () => {
    let caught: string[] | undefined;
    for (const seed of BUG_SEEDS) {
      const report = await runSimulation({
        seed,
        orchestrator: true,
        agents: 4,
        bugs: { agentOverstaysGrace: true },
      });
      if (report.violations.length > 0) {
        caught = report.violations.map((v) => v.property);
        expect(report.replayCommand).toContain("--bug agent-overstays-grace");
        break;
      }
    }
    expect(caught, "no seed caught the agent that overstays its grace").toBeDefined();
    expect(caught).toContain("orchestrator-cut-off-agent-runs-work");
  }, 180_000);

  it("refuses agents without the orchestrator", async () => {
    await expect(runSimulation({ seed: 1, agents: 2 })).rejects.toThrow(/--agents needs/);
  });
});
