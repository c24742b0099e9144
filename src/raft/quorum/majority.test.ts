import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_INDEX } from "../types.js";
import type { AckedIndexer } from "./majority.js";
import { VoteResult, majorityCommittedIndex, majorityVoteResult } from "./majority.js";

/** Oracle: the largest i with |{v : acked(v) >= i}| >= floor(n/2)+1; MAX_INDEX if no voters. */
function oracleCommitted(voters: readonly number[], acked: AckedIndexer): number {
  if (voters.length === 0) return MAX_INDEX;
  const quorum = Math.floor(voters.length / 2) + 1;
  const values = voters.map((id) => acked(id) ?? 0);
  let best = 0;
  for (const candidate of values) {
    const count = values.filter((value) => value >= candidate).length;
    if (count >= quorum && candidate > best) best = candidate;
  }
  return best;
}

/** Does a set of granted voters form a majority of `voters`? */
function isMajority(voters: readonly number[], granted: (id: number) => boolean): boolean {
  return voters.filter(granted).length * 2 > voters.length;
}

/**
 * Oracle by definition: Won if every way the missing voters could vote wins, Lost if none does,
 * Pending otherwise. Enumerates all completions.
 */
function oracleVote(voters: readonly number[], votes: ReadonlyMap<number, boolean>): VoteResult {
  const missing = voters.filter((id) => !votes.has(id));
  let wins = 0;
  const completions = 1 << missing.length;
  for (let mask = 0; mask < completions; mask++) {
    const granted = (id: number): boolean => {
      const i = missing.indexOf(id);
      return i >= 0 ? (mask & (1 << i)) !== 0 : votes.get(id) === true;
    };
    if (isMajority(voters, granted)) wins++;
  }
  if (voters.length === 0 || wins === completions) return VoteResult.Won;
  if (wins === 0) return VoteResult.Lost;
  return VoteResult.Pending;
}

const indexerOf =
  (acked: ReadonlyMap<number, number | undefined>): AckedIndexer =>
  (id) =>
    acked.get(id);

describe("majorityCommittedIndex", () => {
  it("returns MAX_INDEX for an empty config, so a joint min ignores it", () => {
    expect(majorityCommittedIndex(new Set(), () => 5)).toBe(MAX_INDEX);
  });

  it("counts an unknown voter as acknowledging 0", () => {
    // 3 voters, one unknown: the majority {1, 2} acked 4.
    const acked = new Map([
      [1, 7],
      [2, 4],
    ]);
    expect(majorityCommittedIndex(new Set([1, 2, 3]), indexerOf(acked))).toBe(4);
    expect(majorityCommittedIndex(new Set([1, 3]), indexerOf(acked))).toBe(0);
  });

  it("needs floor(n/2)+1 voters: an even config does not commit on half", () => {
    const acked = new Map([
      [1, 9],
      [2, 9],
      [3, 1],
      [4, 1],
    ]);
    expect(majorityCommittedIndex(new Set([1, 2, 3, 4]), indexerOf(acked))).toBe(1);
  });

  it("matches the oracle exhaustively for up to 5 voters and acked in {unknown, 0..3}", () => {
    const values = [undefined, 0, 1, 2, 3];
    let cases = 0;
    for (let n = 0; n <= 5; n++) {
      const voters = Array.from({ length: n }, (_, i) => i + 1);
      const combos = values.length ** n;
      for (let combo = 0; combo < combos; combo++) {
        const acked = new Map<number, number | undefined>();
        let rest = combo;
        for (const id of voters) {
          acked.set(id, values[rest % values.length]);
          rest = Math.floor(rest / values.length);
        }
        const indexer = indexerOf(acked);
        expect(majorityCommittedIndex(new Set(voters), indexer)).toBe(
          oracleCommitted(voters, indexer),
        );
        cases++;
      }
    }
    expect(cases).toBe(1 + 5 + 25 + 125 + 625 + 3125);
  });

  it("matches the oracle on random configs of up to 7 voters", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 1000 }), { maxLength: 7 }),
        fc.array(fc.option(fc.integer({ min: 0, max: MAX_INDEX }), { nil: undefined }), {
          minLength: 7,
          maxLength: 7,
        }),
        (voters, indexes) => {
          const acked = new Map(voters.map((id, i) => [id, indexes[i]]));
          const indexer = indexerOf(acked);
          expect(majorityCommittedIndex(new Set(voters), indexer)).toBe(
            oracleCommitted(voters, indexer),
          );
        },
      ),
      { numRuns: 2000 },
    );
  });

  it("handles configs larger than the insertion-sort cutoff", () => {
    fc.assert(
      fc.property(
        fc.array(fc.option(fc.integer({ min: 0, max: 50 }), { nil: undefined }), {
          minLength: 17,
          maxLength: 40,
        }),
        (indexes) => {
          const voters = indexes.map((_, i) => i + 1);
          const indexer: AckedIndexer = (id) => indexes[id - 1];
          expect(majorityCommittedIndex(new Set(voters), indexer)).toBe(
            oracleCommitted(voters, indexer),
          );
        },
      ),
      { numRuns: 300 },
    );
  });

  it("stays correct when a small call follows a large one (scratch reuse)", () => {
    const big = new Set(Array.from({ length: 30 }, (_, i) => i + 1));
    expect(majorityCommittedIndex(big, (id) => id)).toBe(15);
    expect(majorityCommittedIndex(new Set([1, 2, 3]), (id) => 10 * id)).toBe(20);
  });
});

describe("majorityVoteResult", () => {
  it("is Won for an empty config", () => {
    expect(majorityVoteResult(new Set(), new Map())).toBe(VoteResult.Won);
  });

  it("ignores votes of non-members", () => {
    const votes = new Map([
      [1, true],
      [7, true],
      [8, true],
    ]);
    expect(majorityVoteResult(new Set([1, 2, 3]), votes)).toBe(VoteResult.Pending);
  });

  it("decides as soon as the outcome is certain", () => {
    const voters = new Set([1, 2, 3]);
    expect(
      majorityVoteResult(
        voters,
        new Map([
          [1, true],
          [2, true],
        ]),
      ),
    ).toBe(VoteResult.Won);
    expect(
      majorityVoteResult(
        voters,
        new Map([
          [1, false],
          [2, false],
        ]),
      ),
    ).toBe(VoteResult.Lost);
    expect(
      majorityVoteResult(
        voters,
        new Map([
          [1, true],
          [2, false],
        ]),
      ),
    ).toBe(VoteResult.Pending);
  });

  it("matches the oracle exhaustively for up to 6 voters", () => {
    // Each voter: missing, granted or rejected; plus a granted vote from a non-member.
    for (let n = 0; n <= 6; n++) {
      const voters = Array.from({ length: n }, (_, i) => i + 1);
      for (let combo = 0; combo < 3 ** n; combo++) {
        const votes = new Map<number, boolean>([[99, true]]);
        let rest = combo;
        for (const id of voters) {
          const choice = rest % 3;
          rest = Math.floor(rest / 3);
          if (choice === 1) votes.set(id, true);
          if (choice === 2) votes.set(id, false);
        }
        expect(majorityVoteResult(new Set(voters), votes)).toBe(oracleVote(voters, votes));
      }
    }
  });

  it("matches the oracle on random configs and votes of up to 7 voters", () => {
    fc.assert(
      fc.property(
        fc.uniqueArray(fc.integer({ min: 1, max: 12 }), { maxLength: 7 }),
        fc.array(fc.tuple(fc.integer({ min: 1, max: 12 }), fc.boolean()), { maxLength: 12 }),
        (voters, voteList) => {
          const votes = new Map(voteList);
          expect(majorityVoteResult(new Set(voters), votes)).toBe(oracleVote(voters, votes));
        },
      ),
      { numRuns: 2000 },
    );
  });
});
