import { describe, expect, it } from "vitest";
import { runSimulation } from "../../src/sim/run.js";

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

  it("replays a planted-bug failure exactly, with the same trace tail", async () => {
    const options = { seed: 100, durationMs: 8000, faults: ["crash" as const], bugs: {} };
    const first = await runSimulation(options);
    const second = await runSimulation(options);
    expect(second.traceHash).toBe(first.traceHash);
    expect(second.traceTail).toEqual(first.traceTail);
  });
});
