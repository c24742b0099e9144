import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_INDEX } from "../types.js";
import type { JointConfig } from "./joint.js";
import { jointCommittedIndex, jointMembers, jointVoteResult } from "./joint.js";
import type { AckedIndexer } from "./majority.js";
import { VoteResult } from "./majority.js";

/** A half agrees to `ok` if it is empty or more than half of it satisfies `ok`. */
function halfAgrees(half: readonly number[], ok: (id: number) => boolean): boolean {
  return half.length === 0 || half.filter(ok).length * 2 > half.length;
}

/**
 * Oracle: the largest i such that both halves have a majority with acked >= i (an empty half
 * places no constraint); MAX_INDEX if both halves are empty. Tries every acked value as i.
 */
function oracleJointCommitted(
  incoming: readonly number[],
  outgoing: readonly number[],
  acked: AckedIndexer,
): number {
  if (incoming.length === 0 && outgoing.length === 0) return MAX_INDEX;
  const candidates = [0, ...[...incoming, ...outgoing].map((id) => acked(id) ?? 0)];
  let best = 0;
  for (const i of candidates) {
    const ok = (id: number): boolean => (acked(id) ?? 0) >= i;
    if (halfAgrees(incoming, ok) && halfAgrees(outgoing, ok) && i > best) best = i;
  }
  return best;
}

/**
 * Oracle by definition: a voter in both halves casts one vote. Won if every way the missing
 * voters could vote wins both halves, Lost if none does, Pending otherwise.
 */
function oracleJointVote(
  incoming: readonly number[],
  outgoing: readonly number[],
  votes: ReadonlyMap<number, boolean>,
): VoteResult {
  const missing = [...new Set([...incoming, ...outgoing])].filter((id) => !votes.has(id));
  const completions = 1 << missing.length;
  let wins = 0;
  for (let mask = 0; mask < completions; mask++) {
    const granted = (id: number): boolean => {
      const i = missing.indexOf(id);
      return i >= 0 ? (mask & (1 << i)) !== 0 : votes.get(id) === true;
    };
    if (halfAgrees(incoming, granted) && halfAgrees(outgoing, granted)) wins++;
  }
  if (wins === completions) return VoteResult.Won;
  if (wins === 0) return VoteResult.Lost;
  return VoteResult.Pending;
}

function joint(incoming: readonly number[], outgoing: readonly number[]): JointConfig {
  return { incoming: new Set(incoming), outgoing: new Set(outgoing) };
}

// Ids from a small universe so that the halves overlap often, as they do in practice.
const half = fc.uniqueArray(fc.integer({ min: 1, max: 8 }), { maxLength: 6 });

describe("jointCommittedIndex", () => {
  it("is the incoming majority's index when outgoing is empty", () => {
    const acked: AckedIndexer = (id) => [0, 5, 6, 7][id];
    expect(jointCommittedIndex(joint([1, 2, 3], []), acked)).toBe(6);
  });

  it("is held back by the slower half", () => {
    // incoming (1 2 3) has 2 and 3 at 9; outgoing (3 4 5) has only 3 at 9, the rest at 2.
    const acked: AckedIndexer = (id) => ({ 1: 1, 2: 9, 3: 9, 4: 2, 5: 2 })[id];
    expect(jointCommittedIndex(joint([1, 2, 3], [3, 4, 5]), acked)).toBe(2);
  });

  it("is MAX_INDEX when both halves are empty", () => {
    expect(jointCommittedIndex(joint([], []), () => 3)).toBe(MAX_INDEX);
  });

  it("matches the oracle on random joint configs", () => {
    fc.assert(
      fc.property(
        half,
        half,
        fc.array(fc.option(fc.integer({ min: 0, max: 20 }), { nil: undefined }), {
          minLength: 9,
          maxLength: 9,
        }),
        (incoming, outgoing, indexes) => {
          const acked: AckedIndexer = (id) => indexes[id];
          expect(jointCommittedIndex(joint(incoming, outgoing), acked)).toBe(
            oracleJointCommitted(incoming, outgoing, acked),
          );
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe("jointVoteResult", () => {
  it("needs both halves to win", () => {
    const config = joint([1, 2, 3], [4, 5, 6]);
    const votes = new Map([
      [1, true],
      [2, true],
      [4, true],
    ]);
    expect(jointVoteResult(config, votes)).toBe(VoteResult.Pending);
    votes.set(5, true);
    expect(jointVoteResult(config, votes)).toBe(VoteResult.Won);
  });

  it("is lost as soon as one half is lost, even if the other won", () => {
    const config = joint([1, 2, 3], [4, 5, 6]);
    const votes = new Map([
      [1, true],
      [2, true],
      [4, false],
      [5, false],
    ]);
    expect(jointVoteResult(config, votes)).toBe(VoteResult.Lost);
  });

  it("matches the oracle on random joint configs and votes", () => {
    fc.assert(
      fc.property(
        half,
        half,
        fc.array(fc.tuple(fc.integer({ min: 1, max: 10 }), fc.boolean()), { maxLength: 10 }),
        (incoming, outgoing, voteList) => {
          const votes = new Map(voteList);
          expect(jointVoteResult(joint(incoming, outgoing), votes)).toBe(
            oracleJointVote(incoming, outgoing, votes),
          );
        },
      ),
      { numRuns: 3000 },
    );
  });
});

describe("jointMembers", () => {
  it("is the sorted union without duplicates", () => {
    expect(jointMembers(joint([10, 2, 3], [3, 1, 20]))).toEqual([1, 2, 3, 10, 20]);
    expect(jointMembers(joint([], []))).toEqual([]);
  });

  it("sorts numerically, not as strings", () => {
    fc.assert(
      fc.property(half, half, (incoming, outgoing) => {
        const expected = [...new Set([...incoming, ...outgoing])].sort((a, b) => a - b);
        expect(jointMembers(joint(incoming, outgoing))).toEqual(expected);
      }),
    );
    expect(jointMembers(joint([9, 10], [100]))).toEqual([9, 10, 100]);
  });
});
