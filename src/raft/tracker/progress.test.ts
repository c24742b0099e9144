import { describe, expect, it } from "vitest";
import { InternalError } from "../../common/errors.js";
import { Progress, ProgressState } from "./progress.js";

function progress(fields: { match: number; next: number; state?: ProgressState }): Progress {
  const pr = new Progress({
    match: fields.match,
    next: fields.next,
    maxInflightMessages: 3,
    maxInflightBytes: 0,
  });
  pr.state = fields.state ?? ProgressState.Probe;
  return pr;
}

describe("Progress construction", () => {
  it("starts in Probe, unpaused, with defaults", () => {
    const pr = new Progress({ next: 5, maxInflightMessages: 2, maxInflightBytes: 0 });
    expect(pr.state).toBe(ProgressState.Probe);
    expect(pr.match).toBe(0);
    expect(pr.isLearner).toBe(false);
    expect(pr.recentActive).toBe(false);
    expect(pr.isPaused()).toBe(false);
  });

  it("refuses match >= next", () => {
    expect(
      () => new Progress({ next: 3, match: 3, maxInflightMessages: 2, maxInflightBytes: 0 }),
    ).toThrow(InternalError);
  });
});

describe("Progress state transitions", () => {
  it("becomeProbe from Snapshot resumes after the snapshot if it is ahead of match", () => {
    const pr = progress({ match: 1, next: 5 });
    pr.becomeSnapshot(10);
    pr.becomeProbe();
    expect(pr.state).toBe(ProgressState.Probe);
    expect(pr.next).toBe(11);
    expect(pr.pendingSnapshot).toBe(0);
  });

  it("becomeProbe from Snapshot uses match+1 if match passed the snapshot", () => {
    const pr = progress({ match: 1, next: 5 });
    pr.becomeSnapshot(10);
    pr.match = 15;
    pr.becomeProbe();
    expect(pr.next).toBe(16);
  });

  it("becomeProbe from Replicate rewinds to match+1 and drops the inflights", () => {
    const pr = progress({ match: 4, next: 5 });
    pr.becomeReplicate();
    pr.sentEntries(3, 30);
    pr.sentEntries(2, 20);
    expect(pr.next).toBe(10);
    expect(pr.inflights.count).toBe(2);
    pr.becomeProbe();
    expect(pr.next).toBe(5);
    expect(pr.inflights.count).toBe(0);
    expect(pr.msgAppFlowPaused).toBe(false);
  });

  it("becomeReplicate sets next to match+1 and unpauses", () => {
    const pr = progress({ match: 4, next: 9 });
    pr.msgAppFlowPaused = true;
    pr.becomeReplicate();
    expect(pr.state).toBe(ProgressState.Replicate);
    expect(pr.next).toBe(5);
    expect(pr.msgAppFlowPaused).toBe(false);
  });

  it("becomeSnapshot records the snapshot, moves next past it and resets the flow", () => {
    const pr = progress({ match: 2, next: 3 });
    pr.becomeReplicate();
    pr.sentEntries(1, 1);
    pr.becomeSnapshot(20);
    expect(pr.state).toBe(ProgressState.Snapshot);
    expect(pr.pendingSnapshot).toBe(20);
    expect(pr.next).toBe(21);
    expect(pr.inflights.count).toBe(0);
  });
});

describe("Progress.maybeUpdate", () => {
  it("raises match and next, and unpauses", () => {
    const pr = progress({ match: 3, next: 5 });
    pr.msgAppFlowPaused = true;
    expect(pr.maybeUpdate(7)).toBe(true);
    expect(pr.match).toBe(7);
    expect(pr.next).toBe(8);
    expect(pr.msgAppFlowPaused).toBe(false);
  });

  it("keeps a next that is already further ahead", () => {
    const pr = progress({ match: 3, next: 10 });
    expect(pr.maybeUpdate(5)).toBe(true);
    expect(pr.next).toBe(10);
  });

  it("ignores a stale response (n <= match)", () => {
    const pr = progress({ match: 5, next: 6 });
    pr.msgAppFlowPaused = true;
    expect(pr.maybeUpdate(5)).toBe(false);
    expect(pr.maybeUpdate(2)).toBe(false);
    expect(pr.match).toBe(5);
    expect(pr.next).toBe(6);
    expect(pr.msgAppFlowPaused).toBe(true);
  });
});

describe("Progress.sentEntries", () => {
  it("in Replicate advances next and tracks the message; pauses when the window fills", () => {
    const pr = progress({ match: 0, next: 1 });
    pr.becomeReplicate();
    pr.sentEntries(2, 10);
    expect(pr.next).toBe(3);
    expect(pr.inflights.lastIndexesInFlight()).toEqual([2]);
    pr.sentEntries(0, 0); // an empty append (commit only) adds nothing
    expect(pr.inflights.count).toBe(1);
    expect(pr.next).toBe(3);
    pr.sentEntries(1, 10);
    expect(pr.isPaused()).toBe(false);
    pr.sentEntries(1, 10);
    expect(pr.inflights.lastIndexesInFlight()).toEqual([2, 3, 4]);
    expect(pr.isPaused()).toBe(true);
    expect(pr.msgAppFlowPaused).toBe(true);
  });

  it("in Probe pauses after a non-empty append but not after an empty one", () => {
    const pr = progress({ match: 0, next: 1 });
    pr.sentEntries(0, 0);
    expect(pr.isPaused()).toBe(false);
    pr.sentEntries(2, 10);
    expect(pr.isPaused()).toBe(true);
    expect(pr.next).toBe(1); // probes do not move next optimistically
    expect(pr.inflights.count).toBe(0);
  });

  it("in Snapshot is a bug", () => {
    const pr = progress({ match: 0, next: 1 });
    pr.becomeSnapshot(5);
    expect(() => pr.sentEntries(1, 1)).toThrow(InternalError);
  });
});

describe("Progress.maybeDecrTo", () => {
  it("in Replicate ignores a rejection at or below match", () => {
    const pr = progress({ match: 5, next: 10, state: ProgressState.Replicate });
    expect(pr.maybeDecrTo(5, 5)).toBe(false);
    expect(pr.maybeDecrTo(4, 0)).toBe(false);
    expect(pr.next).toBe(10);
  });

  it("in Replicate rewinds next to match+1 on a genuine rejection, ignoring the hint", () => {
    const pr = progress({ match: 5, next: 10, state: ProgressState.Replicate });
    expect(pr.maybeDecrTo(9, 9)).toBe(true);
    expect(pr.next).toBe(6);
  });

  it("in Probe ignores a rejection of anything but next-1", () => {
    const pr = progress({ match: 0, next: 10 });
    pr.msgAppFlowPaused = true;
    expect(pr.maybeDecrTo(8, 3)).toBe(false);
    expect(pr.maybeDecrTo(10, 3)).toBe(false);
    expect(pr.next).toBe(10);
    expect(pr.msgAppFlowPaused).toBe(true);
  });

  it("in Probe jumps to the hint + 1 and unpauses", () => {
    const pr = progress({ match: 0, next: 10 });
    pr.msgAppFlowPaused = true;
    expect(pr.maybeDecrTo(9, 3)).toBe(true);
    expect(pr.next).toBe(4);
    expect(pr.msgAppFlowPaused).toBe(false);
  });

  it("in Probe never goes below match+1, whatever the hint", () => {
    const pr = progress({ match: 5, next: 10 });
    expect(pr.maybeDecrTo(9, 0)).toBe(true);
    expect(pr.next).toBe(6);
  });

  it("in Probe never goes above the rejected index, whatever the hint", () => {
    const pr = progress({ match: 0, next: 10 });
    expect(pr.maybeDecrTo(9, 50)).toBe(true);
    expect(pr.next).toBe(9);
  });

  it("in Snapshot follows the probe rule", () => {
    const pr = progress({ match: 0, next: 1 });
    pr.becomeSnapshot(10);
    expect(pr.maybeDecrTo(5, 2)).toBe(false);
    expect(pr.maybeDecrTo(10, 2)).toBe(true);
    expect(pr.next).toBe(3);
  });
});

describe("Progress.isPaused", () => {
  it("in Probe follows msgAppFlowPaused", () => {
    const pr = progress({ match: 0, next: 1 });
    expect(pr.isPaused()).toBe(false);
    pr.msgAppFlowPaused = true;
    expect(pr.isPaused()).toBe(true);
  });

  it("in Replicate follows the inflight window, not msgAppFlowPaused", () => {
    const pr = progress({ match: 0, next: 1 });
    pr.becomeReplicate();
    pr.msgAppFlowPaused = true;
    expect(pr.isPaused()).toBe(false);
    pr.sentEntries(1, 1);
    pr.sentEntries(1, 1);
    pr.sentEntries(1, 1);
    expect(pr.isPaused()).toBe(true);
    pr.inflights.freeLE(1);
    expect(pr.isPaused()).toBe(false);
  });

  it("in Snapshot is always true", () => {
    const pr = progress({ match: 0, next: 1 });
    pr.becomeSnapshot(3);
    expect(pr.isPaused()).toBe(true);
  });
});

describe("Progress.clone and toString", () => {
  it("clone copies every field and owns its inflights", () => {
    const pr = new Progress({
      next: 3,
      match: 2,
      maxInflightMessages: 4,
      maxInflightBytes: 0,
      isLearner: true,
      recentActive: true,
    });
    pr.becomeReplicate();
    pr.sentEntries(2, 7);
    const copy = pr.clone();
    expect(copy).toBeInstanceOf(Progress);
    // Deep equality over every own field: a field the clone forgets fails here.
    expect(copy).toEqual(pr);
    expect(copy.toString()).toBe(pr.toString());
    expect(copy.inflights.lastIndexesInFlight()).toEqual([4]);
    copy.inflights.freeLE(10);
    copy.isLearner = false;
    expect(pr.inflights.count).toBe(1);
    expect(pr.isLearner).toBe(true);
  });

  it("describes the state for logs", () => {
    const pr = new Progress({ next: 1, maxInflightMessages: 1, maxInflightBytes: 0 });
    expect(pr.toString()).toBe("probe match=0 next=1 inactive");
    pr.recentActive = true;
    pr.isLearner = true;
    pr.becomeReplicate();
    pr.sentEntries(1, 5);
    expect(pr.toString()).toBe("replicate match=0 next=2 learner paused inflight=1[full]");
    pr.becomeSnapshot(9);
    expect(pr.toString()).toBe("snapshot match=0 next=10 learner paused pendingSnap=9");
  });
});

describe("Progress asserts its state machine", () => {
  it("refuses Snapshot -> Replicate without a probe, and a second pending snapshot", () => {
    const pr = progress({ match: 1, next: 2 });
    pr.becomeSnapshot(5);
    expect(() => pr.becomeReplicate()).toThrow(/only a probing follower may start replicating/);
    expect(() => pr.becomeSnapshot(6)).toThrow(/a snapshot is already pending/);
    expect(() => pr.becomeSnapshot(6)).toThrow(InternalError);
  });

  it("refuses a snapshot that does not cover the follower's match", () => {
    const pr = progress({ match: 7, next: 8 });
    expect(() => pr.becomeSnapshot(3)).toThrow(/snapshot 3 does not cover the follower's match/);
  });

  it("refuses to send from Probe with messages still in flight", () => {
    const pr = progress({ match: 0, next: 1 });
    pr.inflights.add(4, 10); // the bug: a window left over from Replicate
    expect(() => pr.sentEntries(1, 1)).toThrow(/a probing follower has no messages in flight/);
  });

  it("checks after a transition that only Snapshot has a pending snapshot", () => {
    const pr = progress({ match: 3, next: 4 });
    pr.pendingSnapshot = 9; // the bug: a pending snapshot outside Snapshot state
    expect(() => pr.maybeUpdate(5)).toThrow(/only a follower in snapshot state has a pending/);
  });
});
