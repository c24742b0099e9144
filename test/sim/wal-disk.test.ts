import { describe, expect, it } from "vitest";
import { runSimulation, type SimulationReport } from "../../src/sim/run.js";
import type { FaultKind } from "../../src/sim/nemesis.js";

/** Runs `count` seeds from `from` on the WAL disk and totals what happened. */
async function batch(
  from: number,
  count: number,
  faults: readonly FaultKind[],
  bugs: { readonly walSkipsDatasync?: boolean } = {},
) {
  const failed: SimulationReport[] = [];
  const totals = { recoveries: 0, truncatedTails: 0, bitFlips: 0, loudFailures: 0, crashes: 0 };
  for (let seed = from; seed < from + count; seed++) {
    const report = await runSimulation({ seed, durationMs: 3000, disk: "wal", faults, bugs });
    totals.recoveries += report.storage.recoveries;
    totals.truncatedTails += report.storage.truncatedTails;
    totals.bitFlips += report.storage.bitFlips;
    totals.loudFailures += report.storage.loudFailures;
    const f = report.faultsInjected;
    totals.crashes += (f["crash"] ?? 0) + (f["power-loss"] ?? 0) + (f["bitflip"] ?? 0);
    if (report.violations.length > 0) failed.push(report);
  }
  return { failed, totals };
}

const describeFailures = (failed: readonly SimulationReport[]): string[] =>
  failed.map((r) => `${r.replayCommand}: ${r.violations.map((v) => v.property).join(", ")}`);

describe("simulator on the real WAL (--disk wal)", () => {
  it("recovers from crashes, power losses and torn writes on every seed, never StorageCorrupt", async () => {
    const { failed, totals } = await batch(1, 60, ["crash", "power-loss", "partition", "pause"]);
    expect(describeFailures(failed)).toEqual([]);
    expect(totals.loudFailures).toBe(0);
    expect(totals.crashes).toBeGreaterThan(60);
    expect(totals.recoveries).toBeGreaterThan(60);
    // Torn writes happen: some opens cut a torn tail off the last segment.
    expect(totals.truncatedTails).toBeGreaterThan(0);
  }, 60_000);

  it("fails loudly on flipped bits, and never serves wrong data", async () => {
    const { failed, totals } = await batch(1, 25, ["crash", "bitflip", "partition"]);
    // Liveness may suffer (a node with a corrupt disk stays down), safety never.
    expect(describeFailures(failed)).toEqual([]);
    expect(totals.bitFlips).toBeGreaterThan(10);
    expect(totals.loudFailures).toBeGreaterThan(10);
    expect(totals.loudFailures).toBeLessThanOrEqual(totals.bitFlips);
  }, 60_000);

  it("replays a seed exactly with the WAL disk", async () => {
    const options = {
      seed: 7,
      durationMs: 3000,
      disk: "wal" as const,
      faults: ["crash", "power-loss", "bitflip"] as FaultKind[],
    };
    const first = await runSimulation(options);
    const second = await runSimulation(options);
    expect(second).toEqual(first);
    expect(first.storage.recoveries).toBeGreaterThan(0);
    expect(first.replayCommand).toContain("--disk wal");
  }, 30_000);

  it("catches a planted WAL bug: fdatasync that makes nothing durable", async () => {
    const { failed } = await batch(1, 10, ["crash", "power-loss", "partition"], {
      walSkipsDatasync: true,
    });
    expect(failed.length).toBeGreaterThan(0);
    expect(failed[0]?.replayCommand).toContain("--bug wal-skips-datasync");
  }, 30_000);

  it("refuses a bit flip on the model disk", async () => {
    await expect(runSimulation({ seed: 1, durationMs: 100, faults: ["bitflip"] })).rejects.toThrow(
      /WAL disk/,
    );
  });
});
