import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../common/errors.js";
import { Progress, ProgressState } from "../tracker/progress.js";
import type { TrackerConfig } from "../tracker/tracker.js";
import {
  ProgressTracker,
  emptyTrackerConfig,
  trackerConfigToConfState,
} from "../tracker/tracker.js";
import type { ConfChangeSingle, ConfState, NodeId } from "../types.js";
import { ConfChangeType, EMPTY_CONF_STATE } from "../types.js";
import type { ChangeResult } from "./changer.js";
import { Changer, restoreConfState } from "./changer.js";

const LIMITS = { maxInflightMessages: 4, maxInflightBytes: 0 };

const add = (nodeId: NodeId): ConfChangeSingle => ({ type: ConfChangeType.AddNode, nodeId });
const learner = (nodeId: NodeId): ConfChangeSingle => ({
  type: ConfChangeType.AddLearnerNode,
  nodeId,
});
const remove = (nodeId: NodeId): ConfChangeSingle => ({ type: ConfChangeType.RemoveNode, nodeId });

function changer(from: ChangeResult, lastIndex = 10): Changer {
  return new Changer({ config: from.config, progress: from.progress, lastIndex, ...LIMITS });
}

const EMPTY: ChangeResult = { config: emptyTrackerConfig(), progress: new Map() };

/** Builds a config by simple changes, one at a time. */
function build(...changes: ConfChangeSingle[]): ChangeResult {
  let current = EMPTY;
  for (const change of changes) current = changer(current).simple([change]);
  return current;
}

function state(result: ChangeResult): ConfState {
  return trackerConfigToConfState(result.config);
}

function conf(fields: Partial<ConfState>): ConfState {
  return { ...EMPTY_CONF_STATE, ...fields };
}

/** Every invariant a config and its progress must keep, checked independently of the code. */
function expectInvariants(result: ChangeResult): void {
  const { config, progress } = result;
  const incoming = [...config.voters.incoming];
  const outgoing = [...config.voters.outgoing];
  const learners = [...config.learners];
  const learnersNext = [...config.learnersNext];
  const voters = new Set([...incoming, ...outgoing]);
  const members = new Set([...voters, ...learners, ...learnersNext]);
  // Only the empty config (bootstrap) may have no incoming voter.
  if (progress.size > 0) expect(incoming.length).toBeGreaterThan(0);
  for (const id of learners) expect(voters.has(id)).toBe(false);
  for (const id of learnersNext) expect(config.voters.outgoing.has(id)).toBe(true);
  for (const id of learnersNext) expect(config.voters.incoming.has(id)).toBe(false);
  expect(new Set(progress.keys())).toEqual(members);
  for (const [id, pr] of progress) {
    expect(pr.isLearner).toBe(config.learners.has(id));
    expect(pr.match).toBeLessThan(pr.next);
  }
  if (outgoing.length === 0) {
    expect(learnersNext).toEqual([]);
    expect(config.autoLeave).toBe(false);
  }
}

describe("Changer.simple", () => {
  it("adds voters one at a time to an empty config, with fresh progress", () => {
    const result = build(add(1), add(2), add(3));
    expect(state(result)).toEqual(conf({ voters: [1, 2, 3] }));
    const pr = result.progress.get(2)!;
    expect(pr.match).toBe(0);
    expect(pr.next).toBe(10);
    expect(pr.recentActive).toBe(true);
    expect(pr.isLearner).toBe(false);
    expect(pr.state).toBe(ProgressState.Probe);
    expect(pr.inflights.full()).toBe(false);
    expectInvariants(result);
  });

  it("starts new progress at next 1 when the log is empty", () => {
    const result = changer(EMPTY, 0).simple([add(1)]);
    expect(result.progress.get(1)!.next).toBe(1);
  });

  it("uses the inflight limits it was given for new members", () => {
    const result = new Changer({
      ...EMPTY,
      lastIndex: 5,
      maxInflightMessages: 1,
      maxInflightBytes: 0,
    }).simple([add(1)]);
    const pr = result.progress.get(1)!;
    pr.becomeReplicate();
    pr.sentEntries(1, 1);
    expect(pr.inflights.full()).toBe(true);
  });

  it("adds a learner, promotes it, and demotes a voter", () => {
    let result = build(add(1), add(2), learner(3));
    expect(state(result)).toEqual(conf({ voters: [1, 2], learners: [3] }));
    expect(result.progress.get(3)!.isLearner).toBe(true);

    const learnerProgress = result.progress.get(3)!;
    learnerProgress.match = 7;
    learnerProgress.next = 8;
    result = changer(result).simple([add(3)]);
    expect(state(result)).toEqual(conf({ voters: [1, 2, 3] }));
    // Promotion keeps what the leader knows about the follower.
    expect(result.progress.get(3)!.match).toBe(7);
    expect(result.progress.get(3)!.isLearner).toBe(false);

    result = changer(result).simple([learner(2)]);
    expect(state(result)).toEqual(conf({ voters: [1, 3], learners: [2] }));
    expect(result.progress.get(2)!.isLearner).toBe(true);
    expectInvariants(result);
  });

  it("removes voters and learners, and their progress", () => {
    let result = build(add(1), add(2), learner(3));
    result = changer(result).simple([remove(2)]);
    result = changer(result).simple([remove(3)]);
    expect(state(result)).toEqual(conf({ voters: [1] }));
    expect([...result.progress.keys()]).toEqual([1]);
  });

  it("treats removing a stranger and re-adding a member as no-ops", () => {
    const before = build(add(1), add(2), learner(3));
    expect(state(changer(before).simple([remove(9)]))).toEqual(state(before));
    expect(state(changer(before).simple([add(1)]))).toEqual(state(before));
    expect(state(changer(before).simple([learner(3)]))).toEqual(state(before));
  });

  it("allows several changes if they alter at most one voter", () => {
    const before = build(add(1), add(2));
    // Add a voter and two learners; remove and re-add the same voter.
    const result = changer(before).simple([add(3), learner(4), learner(5), remove(2), add(2)]);
    expect(state(result)).toEqual(conf({ voters: [1, 2, 3], learners: [4, 5] }));
  });

  it("refuses to change more than one voter", () => {
    const before = build(add(1), add(2));
    expect(() => changer(before).simple([add(3), add(4)])).toThrow(/more than one voter/);
    expect(() => changer(before).simple([remove(1), add(3)])).toThrow(InvalidArgumentError);
    // Demoting a voter and adding another also changes two voters.
    expect(() => changer(before).simple([learner(1), add(3)])).toThrow(InvalidArgumentError);
  });

  it("refuses to remove all voters", () => {
    expect(() => changer(build(add(1))).simple([remove(1)])).toThrow(InvalidArgumentError);
    expect(() => changer(build(add(1))).simple([learner(1)])).toThrow(InvalidArgumentError);
    expect(() => changer(EMPTY).simple([learner(1)])).toThrow(InvalidArgumentError);
  });

  it("refuses node id 0 and malformed ids", () => {
    for (const id of [0, -1, 1.5, Number.NaN]) {
      expect(() => changer(build(add(1))).simple([add(id)])).toThrow(InvalidArgumentError);
    }
  });

  it("refuses an unknown change type", () => {
    // @ts-expect-error: a change type the type does not allow, as a corrupt entry could carry.
    const bad: ConfChangeSingle = { type: 9, nodeId: 2 };
    expect(() => changer(build(add(1))).simple([bad])).toThrow(InvalidArgumentError);
  });

  it("refuses a joint config", () => {
    const joint = changer(build(add(1), add(2))).enterJoint(false, [add(3)]);
    expect(() => changer(joint).simple([add(4)])).toThrow(/in joint config/);
  });

  it("never mutates its input", () => {
    const before = build(add(1), add(2), learner(3));
    const pr = before.progress.get(1)!;
    pr.becomeReplicate();
    pr.sentEntries(2, 5);
    const confBefore = state(before);
    const progressBefore = [...before.progress].map(([id, p]) => `${id}:${p.toString()}`);
    const result = changer(before).simple([learner(4), remove(2)]);
    expect(state(before)).toEqual(confBefore);
    expect([...before.progress].map(([id, p]) => `${id}:${p.toString()}`)).toEqual(progressBefore);
    // The result has its own progress objects, with the same flow state.
    expect(result.progress.get(1)).not.toBe(pr);
    expect(result.progress.get(1)!.toString()).toBe(pr.toString());
    result.progress.get(1)!.inflights.freeLE(100);
    expect(pr.inflights.count).toBe(1);
    expect(before.config.voters.incoming).not.toBe(result.config.voters.incoming);
  });

  it("refuses an input whose progress disagrees with its config", () => {
    const config: TrackerConfig = {
      ...emptyTrackerConfig(),
      voters: { incoming: new Set([1, 2]), outgoing: new Set() },
    };
    const progress = new Map([[1, new Progress({ next: 1, ...LIMITS })]]);
    expect(() =>
      new Changer({ config, progress, lastIndex: 1, ...LIMITS }).simple([add(3)]),
    ).toThrow(/no progress for member 2/);
  });
});

describe("Changer.enterJoint and leaveJoint", () => {
  it("copies incoming to outgoing, then applies the changes to incoming", () => {
    const before = build(add(1), add(2), add(3));
    const joint = changer(before).enterJoint(true, [remove(3), add(4), add(5)]);
    expect(state(joint)).toEqual(
      conf({ voters: [1, 2, 4, 5], votersOutgoing: [1, 2, 3], autoLeave: true }),
    );
    // 3 left the incoming config but still votes in the outgoing one: keep its progress.
    expect(joint.progress.has(3)).toBe(true);
    expectInvariants(joint);

    const after = changer(joint).leaveJoint();
    expect(state(after)).toEqual(conf({ voters: [1, 2, 4, 5] }));
    expect([...after.progress.keys()].sort()).toEqual([1, 2, 4, 5]);
    expectInvariants(after);
  });

  it("stages a demoted outgoing voter in learnersNext until the joint config is left", () => {
    const before = build(add(1), add(2), add(3));
    const joint = changer(before).enterJoint(false, [learner(3), add(4)]);
    expect(state(joint)).toEqual(
      conf({ voters: [1, 2, 4], votersOutgoing: [1, 2, 3], learnersNext: [3] }),
    );
    // Still a voter of the outgoing half, so not yet a learner.
    expect(joint.progress.get(3)!.isLearner).toBe(false);
    expectInvariants(joint);

    const after = changer(joint).leaveJoint();
    expect(state(after)).toEqual(conf({ voters: [1, 2, 4], learners: [3] }));
    expect(after.progress.get(3)!.isLearner).toBe(true);
    expectInvariants(after);
  });

  it("adds a brand-new learner directly to learners even in a joint config", () => {
    const joint = changer(build(add(1), add(2))).enterJoint(false, [learner(7), add(3)]);
    expect(state(joint)).toEqual(
      conf({ voters: [1, 2, 3], votersOutgoing: [1, 2], learners: [7] }),
    );
  });

  it("moves a voter to learners directly when it is not in the outgoing half", () => {
    // 4 becomes a voter in the joint config and is demoted in the same change.
    const joint = changer(build(add(1), add(2))).enterJoint(false, [add(4), learner(4), add(3)]);
    expect(state(joint)).toEqual(
      conf({ voters: [1, 2, 3], votersOutgoing: [1, 2], learners: [4] }),
    );
    expectInvariants(joint);
  });

  it("promotes a learner and re-promotes a staged learner", () => {
    const before = build(add(1), add(2), learner(3));
    const joint = changer(before).enterJoint(false, [add(3), learner(2), add(2)]);
    expect(state(joint)).toEqual(conf({ voters: [1, 2, 3], votersOutgoing: [1, 2] }));
    expect(joint.progress.get(3)!.isLearner).toBe(false);
    expectInvariants(joint);
  });

  it("removing a staged learner drops it from learnersNext, and from progress on leaving", () => {
    const before = build(add(1), add(2), add(3));
    const joint = changer(before).enterJoint(false, [learner(3), remove(3)]);
    expect(state(joint)).toEqual(conf({ voters: [1, 2], votersOutgoing: [1, 2, 3] }));
    expect(joint.progress.has(3)).toBe(true);
    const after = changer(joint).leaveJoint();
    expect(after.progress.has(3)).toBe(false);
  });

  it("removes a learner entirely when not an outgoing voter", () => {
    const before = build(add(1), add(2), learner(3));
    const joint = changer(before).enterJoint(false, [remove(3)]);
    expect(joint.progress.has(3)).toBe(false);
  });

  it("may enter joint with no changes (outgoing = incoming)", () => {
    const joint = changer(build(add(1), add(2))).enterJoint(false, []);
    expect(state(joint)).toEqual(conf({ voters: [1, 2], votersOutgoing: [1, 2] }));
  });

  it("refuses to enter joint twice, from an empty config, or with no incoming voters", () => {
    const before = build(add(1), add(2));
    const joint = changer(before).enterJoint(false, [add(3)]);
    expect(() => changer(joint).enterJoint(false, [add(4)])).toThrow(/already joint/);
    expect(() => changer(EMPTY).enterJoint(false, [add(1)])).toThrow(/zero-voter/);
    expect(() => changer(before).enterJoint(false, [remove(1), remove(2)])).toThrow(
      InvalidArgumentError,
    );
    expect(() => changer(before).enterJoint(false, [add(0)])).toThrow(InvalidArgumentError);
  });

  it("refuses to leave a non-joint config", () => {
    expect(() => changer(build(add(1))).leaveJoint()).toThrow(/non-joint/);
    expect(() => changer(EMPTY).leaveJoint()).toThrow(InvalidArgumentError);
  });

  it("leaveJoint does not mutate the joint input", () => {
    const joint = changer(build(add(1), add(2), add(3))).enterJoint(true, [learner(3)]);
    const before = state(joint);
    changer(joint).leaveJoint();
    expect(state(joint)).toEqual(before);
    expect(joint.progress.get(3)!.isLearner).toBe(false);
  });
});

describe("restoreConfState", () => {
  const options = { lastIndex: 20, ...LIMITS };

  function roundTrip(confState: ConfState): ConfState {
    const restored = restoreConfState(confState, options);
    expectInvariants(restored);
    const tracker = new ProgressTracker(LIMITS);
    tracker.config = restored.config;
    tracker.progress = restored.progress;
    return tracker.confState();
  }

  it("restores a simple config", () => {
    const confState = conf({ voters: [1, 2, 3], learners: [4] });
    expect(roundTrip(confState)).toEqual(confState);
  });

  it("restores a joint config with learnersNext and autoLeave through tracker.confState()", () => {
    const confState = conf({
      voters: [1, 2, 3],
      learners: [5],
      votersOutgoing: [1, 2, 4, 6],
      learnersNext: [4],
      autoLeave: true,
    });
    expect(roundTrip(confState)).toEqual(confState);
    const restored = restoreConfState(confState, options);
    for (const [id, pr] of restored.progress) {
      expect(pr.match).toBe(0);
      expect(pr.next).toBe(20);
      expect(pr.recentActive).toBe(true);
      expect(pr.isLearner).toBe(id === 5);
    }
  });

  it("restores the empty config", () => {
    expect(roundTrip(EMPTY_CONF_STATE)).toEqual(EMPTY_CONF_STATE);
  });

  it("round-trips any valid ConfState", () => {
    const ids = fc.uniqueArray(fc.integer({ min: 1, max: 30 }), { maxLength: 12 });
    fc.assert(
      fc.property(ids, fc.nat(), fc.nat(), fc.nat(), fc.boolean(), (pool, a, b, c, autoLeave) => {
        // Carve disjoint roles out of the pool: some voters both in and out, some only in,
        // some only out (of which some are staged learners), and some learners.
        const shared = pool.slice(0, a % 4);
        const onlyIn = pool.slice(shared.length, shared.length + (b % 3));
        const rest = pool.slice(shared.length + onlyIn.length);
        const onlyOut = rest.slice(0, c % 4);
        const learners = rest.slice(onlyOut.length);
        const incoming = [...shared, ...onlyIn];
        const outgoing = [...shared, ...onlyOut];
        if (incoming.length === 0) return;
        const joint = outgoing.length > 0;
        const sorted = (xs: number[]): number[] => [...xs].sort((x, y) => x - y);
        const confState = conf({
          voters: sorted(incoming),
          learners: sorted(learners),
          votersOutgoing: sorted(outgoing),
          learnersNext: joint ? sorted(onlyOut.filter((_, i) => i % 2 === 0)) : [],
          autoLeave: joint && autoLeave,
        });
        expect(roundTrip(confState)).toEqual(confState);
      }),
      { numRuns: 300 },
    );
  });

  it("refuses malformed ConfStates", () => {
    const bad = [
      conf({ learners: [1] }), // learners without voters
      conf({ voters: [1, 2], learners: [2] }),
      conf({ voters: [1], votersOutgoing: [1, 2], learners: [2] }),
      conf({ voters: [1], learnersNext: [2] }),
      conf({ voters: [1], votersOutgoing: [1, 2], learnersNext: [3] }),
      conf({ voters: [1, 2], votersOutgoing: [1, 2], learnersNext: [2] }),
      conf({ voters: [1], autoLeave: true }),
      conf({ voters: [1, 1] }),
      conf({ voters: [0] }),
      conf({ votersOutgoing: [1] }), // joint with no incoming voters
    ];
    for (const confState of bad) {
      expect(() => restoreConfState(confState, options), JSON.stringify(confState)).toThrow(
        InvalidArgumentError,
      );
    }
  });
});

describe("random sequences of changes", () => {
  const single = fc.record({
    type: fc.constantFrom(
      ConfChangeType.AddNode,
      ConfChangeType.RemoveNode,
      ConfChangeType.AddLearnerNode,
    ),
    nodeId: fc.integer({ min: 1, max: 7 }),
  });
  const operation = fc.oneof(
    fc.record({
      kind: fc.constant("simple" as const),
      changes: fc.array(single, { minLength: 1, maxLength: 3 }),
    }),
    fc.record({
      kind: fc.constant("enter" as const),
      autoLeave: fc.boolean(),
      changes: fc.array(single, { maxLength: 5 }),
    }),
    fc.record({ kind: fc.constant("leave" as const) }),
  );

  it("keep every invariant, and refuse invalid changes with InvalidArgumentError only", () => {
    const stats = { applied: 0, refused: 0, stagedLearners: 0, leaves: 0 };
    fc.assert(
      fc.property(
        fc.array(operation, { minLength: 1, maxLength: 25 }),
        fc.integer({ min: 0, max: 50 }),
        (operations, lastIndex) => {
          let current = build(add(1));
          for (const op of operations) {
            const before = state(current);
            const c = changer(current, lastIndex);
            let next: ChangeResult;
            try {
              next =
                op.kind === "simple"
                  ? c.simple(op.changes)
                  : op.kind === "enter"
                    ? c.enterJoint(op.autoLeave, op.changes)
                    : c.leaveJoint();
            } catch (error) {
              expect(error).toBeInstanceOf(InvalidArgumentError);
              stats.refused++;
              expect(state(current)).toEqual(before);
              continue;
            }
            expect(state(current)).toEqual(before); // the input is untouched
            expectInvariants(next);
            if (op.kind === "simple") {
              // At most one incoming voter changed.
              const was = new Set(before.voters);
              const now = next.config.voters.incoming;
              const changed =
                [...was].filter((id) => !now.has(id)).length +
                [...now].filter((id) => !was.has(id)).length;
              expect(changed).toBeLessThanOrEqual(1);
            }
            if (op.kind !== "leave") {
              // The last change of each node decides its incoming role.
              const last = new Map(op.changes.map((ch) => [ch.nodeId, ch.type]));
              for (const [id, type] of last) {
                const inIncoming = next.config.voters.incoming.has(id);
                expect(inIncoming).toBe(type === ConfChangeType.AddNode);
                if (type === ConfChangeType.AddLearnerNode) {
                  const staged = next.config.voters.outgoing.has(id);
                  expect(next.config.learners.has(id)).toBe(!staged);
                  expect(next.config.learnersNext.has(id)).toBe(staged);
                }
                if (type === ConfChangeType.RemoveNode) {
                  expect(next.config.learners.has(id)).toBe(false);
                  expect(next.config.learnersNext.has(id)).toBe(false);
                }
              }
            } else {
              stats.leaves++;
            }
            if (next.config.learnersNext.size > 0) stats.stagedLearners++;
            stats.applied++;
            current = next;
          }
        },
      ),
      { numRuns: 400 },
    );
    // The generator must reach the interesting paths, or the property proves little.
    expect(stats.applied).toBeGreaterThan(500);
    expect(stats.refused).toBeGreaterThan(100);
    expect(stats.stagedLearners).toBeGreaterThan(20);
    expect(stats.leaves).toBeGreaterThan(20);
  });
});
