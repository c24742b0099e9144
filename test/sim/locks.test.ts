/**
 * The simulator's lock workload (src/sim/locks.ts): lock clients taking a lock the SDK's way
 * (lease + txn joining the line, fencing token = create revision, keep-alives, release) and
 * acting on a fenced resource, txn clients on groups of keys, under every default fault kind,
 * leaders paused, isolated and crashed again and again, and holders stalled past their lease.
 * Each seed must pass every checker, the runs must not be degenerate, and each planted bug
 * must be caught. Runs replay from their seeds.
 */
import { describe, expect, it } from "vitest";
import {
  checkExclusiveHolders,
  checkResourceFencing,
  type LockAction,
} from "../../src/sim/checkers/locks.js";
import { checkLinearizable } from "../../src/sim/checkers/linearizability.js";
import type { HistoryOperation } from "../../src/sim/history.js";
import { runLockSimulation, type LockSimulationReport } from "../../src/sim/locks.js";
import { FAULT_KINDS } from "../../src/sim/nemesis.js";
import { groupRegister, writtenTuple } from "../../src/sim/txn-workload.js";

function properties(report: LockSimulationReport): string[] {
  return [...new Set(report.violations.map((v) => v.property))];
}

describe("the lock workload in the simulator", () => {
  it("passes every checker under every fault kind, with locks really taken", async () => {
    const reports: LockSimulationReport[] = [];
    for (const seed of [1, 2, 3, 4, 5]) {
      const report = await runLockSimulation({ seed, durationMs: 30_000 });
      expect(report.violations, `seed ${seed}: ${report.replayCommand}`).toEqual([]);
      expect(report.txns.linearizabilityInconclusive).toBe(false);
      // Not degenerate: the lock changed hands many times, and txns ran, in every seed.
      expect(report.locks.acquisitions, `seed ${seed}`).toBeGreaterThanOrEqual(15);
      expect(report.txns.total - report.txns.unknown, `seed ${seed}`).toBeGreaterThan(50);
      reports.push(report);
    }
    const sum = (f: (r: LockSimulationReport) => number): number =>
      reports.reduce((total, r) => total + f(r), 0);
    expect(sum((r) => r.locks.acquisitions)).toBeGreaterThan(100);
    // Stalled holders came back after their lease ran out, and the resource refused them.
    expect(sum((r) => r.locks.stalls)).toBeGreaterThan(0);
    expect(sum((r) => r.locks.refused)).toBeGreaterThan(0);
    // Leases expired (the holder's keep-alives failed or it stalled), never early.
    expect(sum((r) => r.leases.expiries)).toBeGreaterThan(0);
    // Every fault kind was injected, and leaders were hurt in each way; leadership changed.
    for (const kind of [...FAULT_KINDS, "leader-pause", "leader-isolated", "leader-crash"]) {
      expect(
        sum((r) => r.faultsInjected[kind] ?? 0),
        kind,
      ).toBeGreaterThan(0);
    }
    expect(sum((r) => r.termsWithLeader)).toBeGreaterThanOrEqual(5 * 3);
  });

  it("replays a seed exactly", async () => {
    const a = await runLockSimulation({ seed: 7, durationMs: 8000 });
    const b = await runLockSimulation({ seed: 7, durationMs: 8000 });
    expect(b.traceHash).toBe(a.traceHash);
    expect(b.locks).toEqual(a.locks);
  });

  it("catches the planted bug: lessors expiring leases on a lost leadership's clock", async () => {
    let caught = 0;
    for (let seed = 1; seed <= 12; seed++) {
      const report = await runLockSimulation({
        seed,
        durationMs: 40_000,
        bugs: { keepDeadlinesAcrossTerms: true },
      });
      if (properties(report).includes("no-early-expiry")) caught++;
    }
    expect(caught).toBeGreaterThan(0);
  });

  it("catches the planted bug: a resource that accepts any token", async () => {
    // A stale holder must act after its successor for the bug to show: about half the seeds
    // schedule that within 20 s; the first of a bounded number must.
    let caught: { seed: number; properties: string[] } | undefined;
    for (let seed = 1; seed <= 8 && caught === undefined; seed++) {
      const report = await runLockSimulation({
        seed,
        durationMs: 20_000,
        bugs: { resourceAcceptsAnyToken: true },
      });
      if (report.violations.length > 0) caught = { seed, properties: properties(report) };
    }
    expect(caught, "no seed in 1..8 caught the resource that accepts any token").toBeDefined();
    expect(caught?.properties).toEqual(["fencing"]);
  });

  it("catches the planted bug: clients that act as holders without waiting in line", async () => {
    const report = await runLockSimulation({
      seed: 1,
      durationMs: 20_000,
      bugs: { clientSkipsLine: true },
    });
    // The resource's fencing refuses the stale actions; the holders still overlapped.
    expect(properties(report)).toEqual(["exclusive-holders"]);
  });
});

describe("the lock checkers", () => {
  const action = (
    client: number,
    token: number,
    at: number,
    validUntil = at + 100,
  ): LockAction => ({
    client,
    token,
    decidedStamp: at,
    decidedAtMs: at,
    validUntilMs: validUntil,
  });

  it("exclusive holders: an older holder acting under a valid lease after a newer one fails", () => {
    expect(checkExclusiveHolders([action(0, 5, 1), action(0, 5, 2), action(1, 9, 3)])).toEqual([]);
    const violations = checkExclusiveHolders([action(0, 5, 1), action(1, 9, 2), action(0, 5, 3)]);
    expect(violations.map((v) => v.property)).toEqual(["exclusive-holders"]);
    // A holder whose lease had run out in its own time is not a holder: fencing's business.
    expect(checkExclusiveHolders([action(1, 9, 2), action(0, 5, 3, 3)])).toEqual([]);
  });

  it("fencing: the resource may repeat a holding's token but never go back", () => {
    const ok = [5, 5, 9, 9, 12].map((token) => ({ client: token, token }));
    expect(checkResourceFencing(ok)).toEqual([]);
    const stale = [5, 9, 5].map((token) => ({ client: token, token }));
    expect(checkResourceFencing(stale).map((v) => v.property)).toEqual(["fencing"]);
  });

  it("txn atomicity: a read of a group that saw half of a txn is not linearizable", () => {
    const key = groupRegister(0);
    const a = writtenTuple("a", 3);
    const b = writtenTuple("b", 3);
    const op = (
      id: number,
      input: HistoryOperation["input"],
      output: HistoryOperation["output"],
    ): HistoryOperation => ({
      id,
      client: id,
      input,
      output,
      invokeStamp: id * 10,
      completeStamp: id * 10 + 5,
      invokeMs: id,
      completeMs: id,
    });
    const whole = [
      op(0, { kind: "put", key, value: a }, { kind: "put" }),
      op(1, { kind: "put", key, value: b }, { kind: "put" }),
      op(2, { kind: "get", key }, { kind: "get", value: b }),
    ];
    expect(checkLinearizable(whole).ok).toBe(true);
    const torn = [
      ...whole.slice(0, 2),
      op(2, { kind: "get", key }, { kind: "get", value: "b|a|a" }),
    ];
    expect(checkLinearizable(torn).ok).toBe(false);
  });
});
