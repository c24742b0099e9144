/**
 * Planted bugs are a {@link SafetyRules} strategy handed to the core, not switches inside it: with
 * no bug the core runs the paper's rules, and each planted bug replaces exactly its own rule.
 * The simulator's `test/sim/planted-bugs.test.ts` proves each bug is caught; this file proves the
 * strategy really reaches the core's decisions.
 */
import { describe, expect, it } from "vitest";
import { NO_PLANTED_BUGS, plantedRules } from "../../src/raft/planted-bugs.js";
import { RAFT_RULES } from "../../src/raft/rules.js";
import { NONE, type Message, type NodeId } from "../../src/raft/types.js";
import { LoneNode, MT, PAPER_CONFIG } from "./scenario-helpers.js";

function voteResponseTo(messages: readonly Message[], to: NodeId): Message | undefined {
  return messages.find((m) => m.type === MT.VoteResp && m.to === to);
}

/** A voter at term 2 whose log ends at (2, 2): a candidate ending at (1, 1) is behind it. */
function voterWith(bugs = NO_PLANTED_BUGS): LoneNode {
  return new LoneNode({
    id: 1,
    voters: [1, 2, 3],
    logTerms: [1, 2],
    config: { ...PAPER_CONFIG, rules: plantedRules(bugs) },
  });
}

describe("planted bugs as a safety-rules strategy", () => {
  it("no bugs is the paper's rules themselves", () => {
    expect(plantedRules(NO_PLANTED_BUGS)).toBe(RAFT_RULES);
    expect(plantedRules({ countOldTermEntries: false })).toBe(RAFT_RULES);
  });

  it("each bug replaces its own rule and keeps the others", () => {
    const figure8 = plantedRules({ countOldTermEntries: true });
    expect(figure8.candidateUpToDate).toBe(RAFT_RULES.candidateUpToDate);
    expect(figure8.durableVote).toBe(RAFT_RULES.durableVote);
    expect(figure8.commitTerm).not.toBe(RAFT_RULES.commitTerm);

    const noCheck = plantedRules({ skipUpToDateCheck: true });
    expect(noCheck.commitTerm).toBe(RAFT_RULES.commitTerm);
    expect(noCheck.durableVote).toBe(RAFT_RULES.durableVote);
    expect(noCheck.candidateUpToDate).not.toBe(RAFT_RULES.candidateUpToDate);

    const forget = plantedRules({ forgetToPersistVote: true });
    expect(forget.durableVote(2)).toBe(NONE);
    expect(RAFT_RULES.durableVote(2)).toBe(2);
  });

  // §5.4.1: "the voter denies its vote if its own log is more up-to-date than that of the
  // candidate". The planted skipUpToDateCheck grants it anyway.
  it("§5.4.1: the paper's rules refuse a candidate whose log is behind; the planted rule grants it", () => {
    const request = { type: MT.Vote, from: 2, term: 3, index: 1, logTerm: 1 } as const;

    const honest = voteResponseTo(voterWith().step(request), 2);
    const planted = voteResponseTo(voterWith({ skipUpToDateCheck: true }).step(request), 2);

    expect(honest).toMatchObject({ type: MT.VoteResp, term: 3, reject: true });
    expect(planted).toMatchObject({ type: MT.VoteResp, term: 3, reject: false });
  });

  it("§5.2: the paper's rules persist the vote; forgetToPersistVote leaves it out of the hard state", () => {
    const request = { type: MT.Vote, from: 2, term: 3, index: 2, logTerm: 2 } as const;
    const honest = voterWith();
    const planted = voterWith({ forgetToPersistVote: true });

    honest.step(request);
    planted.step(request);

    expect(honest.storage.initialState().hardState.vote).toBe(2);
    expect(planted.raft.vote).toBe(2);
    expect(planted.storage.initialState().hardState.vote).toBe(NONE);
  });
});
