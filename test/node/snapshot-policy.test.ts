import { describe, expect, it } from "vitest";
import {
  snapshotDue,
  snapshotThresholdBytes,
  type SnapshotPolicy,
} from "../../src/node/snapshot-policy.js";

const MiB = 1024 * 1024;
const policy: SnapshotPolicy = {
  everyEntries: 100_000,
  logToSnapshotRatio: 1,
  minLogBytes: 4 * MiB,
  maxLogBytes: 256 * MiB,
};

describe("snapshot policy", () => {
  it("scales the byte threshold with the last snapshot, between the floor and the cap", () => {
    expect(snapshotThresholdBytes(policy, 0)).toBe(4 * MiB);
    expect(snapshotThresholdBytes(policy, 1 * MiB)).toBe(4 * MiB);
    expect(snapshotThresholdBytes(policy, 100 * MiB)).toBe(100 * MiB);
    expect(snapshotThresholdBytes(policy, 1024 * MiB)).toBe(256 * MiB);
    expect(snapshotThresholdBytes({ ...policy, logToSnapshotRatio: 0.5 }, 100 * MiB)).toBe(
      50 * MiB,
    );
  });

  it("is due on bytes or on entries, whichever comes first", () => {
    const since = { entries: 10, logBytes: 99 * MiB, lastSnapshotBytes: 100 * MiB };
    expect(snapshotDue(policy, since)).toBe(false);
    expect(snapshotDue(policy, { ...since, logBytes: 100 * MiB })).toBe(true);
    expect(snapshotDue(policy, { ...since, entries: 100_000 })).toBe(true);
  });

  it("bounds the bytes written by snapshots over a fill of new keys to about 2× the state (ratio 1)", () => {
    // Every command adds a new 1 KiB key: the state grows by what the log grows by.
    const commandBytes = 1024;
    const fillBytes = 1024 * MiB;
    let state = 0;
    let sinceBytes = 0;
    let sinceEntries = 0;
    let lastSnapshot = 0;
    let written = 0;
    for (let applied = 0; applied < fillBytes; applied += commandBytes) {
      state += commandBytes;
      sinceBytes += commandBytes;
      sinceEntries++;
      const due = snapshotDue(
        { ...policy, everyEntries: Number.MAX_SAFE_INTEGER, maxLogBytes: Number.MAX_SAFE_INTEGER },
        { entries: sinceEntries, logBytes: sinceBytes, lastSnapshotBytes: lastSnapshot },
      );
      if (!due) continue;
      written += state;
      lastSnapshot = state;
      sinceBytes = 0;
      sinceEntries = 0;
    }
    expect(written / state).toBeLessThanOrEqual(2);
    expect(written / state).toBeGreaterThan(1);
  });
});
