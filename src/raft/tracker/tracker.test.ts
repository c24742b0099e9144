import { describe, expect, it } from "vitest";
import { MAX_INDEX } from "../types.js";
import { VoteResult } from "../quorum/index.js";
import { Progress } from "./progress.js";
import type { TrackerConfig } from "./tracker.js";
import { ProgressTracker, emptyTrackerConfig } from "./tracker.js";

interface Members {
  incoming: number[];
  outgoing?: number[];
  learners?: number[];
  learnersNext?: number[];
  autoLeave?: boolean;
}

/** A tracker with the given members, every progress at match 0. */
function trackerWith(members: Members): ProgressTracker {
  const tracker = new ProgressTracker({ maxInflightMessages: 4, maxInflightBytes: 0 });
  const config: TrackerConfig = {
    voters: { incoming: new Set(members.incoming), outgoing: new Set(members.outgoing ?? []) },
    learners: new Set(members.learners ?? []),
    learnersNext: new Set(members.learnersNext ?? []),
    autoLeave: members.autoLeave ?? false,
  };
  tracker.config = config;
  const learners = new Set(members.learners ?? []);
  const all = new Set([
    ...members.incoming,
    ...(members.outgoing ?? []),
    ...learners,
    ...(members.learnersNext ?? []),
  ]);
  for (const id of all) {
    tracker.progress.set(
      id,
      new Progress({
        next: 1,
        maxInflightMessages: 4,
        maxInflightBytes: 0,
        isLearner: learners.has(id),
      }),
    );
  }
  return tracker;
}

function setMatch(tracker: ProgressTracker, matches: Record<number, number>): void {
  for (const [id, match] of Object.entries(matches)) {
    tracker.progress.get(Number(id))!.match = match;
  }
}

describe("ProgressTracker basics", () => {
  it("starts empty", () => {
    const tracker = new ProgressTracker({ maxInflightMessages: 8, maxInflightBytes: 1024 });
    expect(tracker.confState()).toEqual({
      voters: [],
      learners: [],
      votersOutgoing: [],
      learnersNext: [],
      autoLeave: false,
    });
    expect(tracker.maxInflightMessages).toBe(8);
    expect(tracker.maxInflightBytes).toBe(1024);
    expect(tracker.isSingleton()).toBe(false);
    expect(tracker.committed()).toBe(MAX_INDEX);
  });

  it("emptyTrackerConfig returns a fresh config each time", () => {
    const a = emptyTrackerConfig();
    const b = emptyTrackerConfig();
    expect(a.voters.incoming).not.toBe(b.voters.incoming);
    expect(a.learners).not.toBe(b.learners);
  });

  it("confState sorts numerically and reports a joint config", () => {
    const tracker = trackerWith({
      incoming: [10, 2, 3],
      outgoing: [3, 9, 2],
      learners: [11],
      learnersNext: [9],
      autoLeave: true,
    });
    expect(tracker.confState()).toEqual({
      voters: [2, 3, 10],
      learners: [11],
      votersOutgoing: [2, 3, 9],
      learnersNext: [9],
      autoLeave: true,
    });
    expect(tracker.voterNodes()).toEqual([2, 3, 9, 10]);
    expect(tracker.learnerNodes()).toEqual([9, 11]);
  });

  it("isSingleton only for one incoming voter and no outgoing", () => {
    expect(trackerWith({ incoming: [1] }).isSingleton()).toBe(true);
    expect(trackerWith({ incoming: [1], learners: [2] }).isSingleton()).toBe(true);
    expect(trackerWith({ incoming: [1, 2] }).isSingleton()).toBe(false);
    expect(trackerWith({ incoming: [1], outgoing: [1, 2] }).isSingleton()).toBe(false);
  });

  it("visit goes in ascending id order whatever the insertion order", () => {
    const tracker = trackerWith({ incoming: [30, 4, 100, 7], learners: [1] });
    const seen: number[] = [];
    tracker.visit((id, pr) => {
      expect(tracker.progress.get(id)).toBe(pr);
      seen.push(id);
    });
    expect(seen).toEqual([1, 4, 7, 30, 100]);
    // Twice in a row: the reused scratch array must not leak ids from the last call.
    tracker.progress.delete(100);
    seen.length = 0;
    tracker.visit((id) => seen.push(id));
    expect(seen).toEqual([1, 4, 7, 30]);
  });

  it("visit survives a nested visit", () => {
    const tracker = trackerWith({ incoming: [3, 1, 2] });
    const outer: number[] = [];
    tracker.visit((id) => {
      outer.push(id);
      tracker.visit(() => {});
    });
    expect(outer).toEqual([1, 2, 3]);
  });
});

describe("ProgressTracker.committed", () => {
  it("is the majority's match in a simple config, ignoring learners", () => {
    const tracker = trackerWith({ incoming: [1, 2, 3], learners: [4] });
    setMatch(tracker, { 1: 10, 2: 6, 3: 2, 4: 100 });
    expect(tracker.committed()).toBe(6);
  });

  it("in a joint config is the min of both halves", () => {
    const tracker = trackerWith({ incoming: [1, 2, 3], outgoing: [1, 4, 5] });
    setMatch(tracker, { 1: 10, 2: 10, 3: 10, 4: 3, 5: 5 });
    // incoming commits 10; outgoing (1 4 5) commits 5.
    expect(tracker.committed()).toBe(5);
    setMatch(tracker, { 4: 12 });
    expect(tracker.committed()).toBe(10);
  });

  it("counts an outgoing voter staged as a learner (learnersNext) until the joint config is left", () => {
    const tracker = trackerWith({ incoming: [1, 2], outgoing: [1, 2, 3], learnersNext: [3] });
    setMatch(tracker, { 1: 8, 2: 2, 3: 2 });
    // incoming (1 2) commits 2; outgoing (1 2 3) commits 2.
    expect(tracker.committed()).toBe(2);
    setMatch(tracker, { 3: 8 });
    expect(tracker.committed()).toBe(2); // incoming still needs 2
    setMatch(tracker, { 2: 8 });
    expect(tracker.committed()).toBe(8);
  });
});

describe("ProgressTracker votes", () => {
  it("only the first vote of an id counts", () => {
    const tracker = trackerWith({ incoming: [1, 2, 3] });
    tracker.recordVote(1, true);
    tracker.recordVote(1, false);
    tracker.recordVote(2, true);
    expect(tracker.votes.get(1)).toBe(true);
    expect(tracker.tallyVotes()).toEqual({ granted: 2, rejected: 0, result: VoteResult.Won });
    tracker.recordVote(3, false);
    tracker.recordVote(3, true);
    expect(tracker.tallyVotes()).toEqual({ granted: 2, rejected: 1, result: VoteResult.Won });
  });

  it("ignores learners and strangers in the counts and the result", () => {
    const tracker = trackerWith({ incoming: [1, 2, 3], learners: [4] });
    tracker.recordVote(4, true);
    tracker.recordVote(9, true);
    tracker.recordVote(1, true);
    expect(tracker.tallyVotes()).toEqual({ granted: 1, rejected: 0, result: VoteResult.Pending });
  });

  it("is lost once a majority rejected", () => {
    const tracker = trackerWith({ incoming: [1, 2, 3] });
    tracker.recordVote(2, false);
    tracker.recordVote(3, false);
    expect(tracker.tallyVotes().result).toBe(VoteResult.Lost);
  });

  it("in a joint config needs both halves", () => {
    const tracker = trackerWith({ incoming: [1, 2, 3], outgoing: [4, 5, 6] });
    for (const id of [1, 2, 4]) tracker.recordVote(id, true);
    expect(tracker.tallyVotes()).toEqual({ granted: 3, rejected: 0, result: VoteResult.Pending });
    tracker.recordVote(5, false);
    tracker.recordVote(6, false);
    expect(tracker.tallyVotes()).toEqual({ granted: 3, rejected: 2, result: VoteResult.Lost });
  });

  it("resetVotes starts a new election", () => {
    const tracker = trackerWith({ incoming: [1, 2, 3] });
    tracker.recordVote(1, false);
    tracker.resetVotes();
    tracker.recordVote(1, true);
    tracker.recordVote(2, true);
    expect(tracker.tallyVotes()).toEqual({ granted: 2, rejected: 0, result: VoteResult.Won });
  });
});

describe("ProgressTracker.quorumActive", () => {
  function setActive(tracker: ProgressTracker, active: number[]): void {
    tracker.visit((id, pr) => {
      pr.recentActive = active.includes(id);
    });
  }

  it("needs a majority of voters active; learners do not count", () => {
    const tracker = trackerWith({ incoming: [1, 2, 3], learners: [4, 5] });
    setActive(tracker, [1, 4, 5]);
    expect(tracker.quorumActive()).toBe(false);
    setActive(tracker, [1, 2]);
    expect(tracker.quorumActive()).toBe(true);
  });

  it("in a joint config needs a majority of each half", () => {
    const tracker = trackerWith({ incoming: [1, 2, 3], outgoing: [3, 4, 5] });
    setActive(tracker, [1, 2, 3]);
    expect(tracker.quorumActive()).toBe(false); // outgoing has only 3
    setActive(tracker, [1, 3, 4]);
    expect(tracker.quorumActive()).toBe(true);
    setActive(tracker, [3, 4, 5]);
    expect(tracker.quorumActive()).toBe(false); // incoming has only 3
  });

  it("counts a staged learner (learnersNext) in the outgoing half", () => {
    const tracker = trackerWith({ incoming: [1], outgoing: [1, 2, 3], learnersNext: [3] });
    setActive(tracker, [1, 3]);
    expect(tracker.quorumActive()).toBe(true);
    setActive(tracker, [1]);
    expect(tracker.quorumActive()).toBe(false);
  });
});
