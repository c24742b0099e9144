import { describe, expect, it } from "vitest";
import { reportWhenReplayed, StartupPhases } from "./startup-phases.js";

/** A clock the test moves, in milliseconds since the "process" started. */
function manualClock(startMs: number): { now: () => number; advance: (ms: number) => void } {
  let nowMs = startMs;
  return { now: () => nowMs, advance: (ms) => (nowMs += ms) };
}

describe("StartupPhases", () => {
  it("times consecutive phases, the first from the process's start", () => {
    const clock = manualClock(700);
    const phases = new StartupPhases(clock.now);
    clock.advance(1300);
    phases.mark("storageOpen");
    clock.advance(500);
    phases.mark("snapshotRestore");
    expect(phases.fields()).toEqual({
      processStartMs: 700,
      storageOpenMs: 1300,
      snapshotRestoreMs: 500,
    });
    expect(phases.totalMs).toBe(2500);
    expect(phases.describe()).toBe(
      "processStart 700 ms, storageOpen 1300 ms, snapshotRestore 500 ms",
    );
  });
});

describe("reportWhenReplayed", () => {
  function watch(commitAtOpen: number) {
    const clock = manualClock(100);
    const lines: { message: string; fields: Record<string, unknown> }[] = [];
    const listeners = new Set<() => void>();
    let applied = 10;
    const stop = reportWhenReplayed({
      phases: new StartupPhases(clock.now),
      commitAtOpen,
      snapshotIndex: 10,
      appliedIndex: () => applied,
      subscribe: (listener) => {
        listeners.add(listener);
        return () => listeners.delete(listener);
      },
      log: (message, fields) => lines.push({ message, fields }),
    });
    const applyUpTo = (index: number, ms: number): void => {
      applied = index;
      clock.advance(ms);
      for (const listener of [...listeners]) listener();
    };
    return { lines, listeners, applyUpTo, stop };
  }

  it("logs once, when the entries committed at open are applied, and stops listening", () => {
    const w = watch(50);
    w.applyUpTo(30, 200);
    expect(w.lines).toEqual([]);
    w.applyUpTo(50, 300);
    expect(w.lines).toHaveLength(1);
    expect(w.lines[0]?.message).toBe("log replayed 600 ms after the process started");
    expect(w.lines[0]?.fields).toMatchObject({
      processStartMs: 100,
      logReplayMs: 500,
      entriesReplayed: 40,
    });
    expect(w.listeners.size).toBe(0);
  });

  it("logs at once when nothing is to be replayed", () => {
    const w = watch(10);
    expect(w.lines).toHaveLength(1);
    expect(w.lines[0]?.fields).toMatchObject({ entriesReplayed: 0 });
  });

  it("says nothing once stopped (a node stopped during its replay)", () => {
    const w = watch(50);
    w.stop();
    w.applyUpTo(50, 10);
    expect(w.lines).toEqual([]);
    expect(w.listeners.size).toBe(0);
  });
});
