/**
 * The versions of `blixard cluster members` (src/cli/commands/member-versions.ts): a follower's
 * gaps are filled from the leader's answer, what neither knows is named, never a bare `?`.
 */
import { describe, expect, it } from "vitest";
import type { Members } from "../../src/client/index.js";
import {
  fillFromLeader,
  leaderToAsk,
  versionNotes,
} from "../../src/cli/commands/member-versions.js";

type Member = Members["members"][number];

function member(id: number, known: boolean, leader = false): Member {
  return {
    id,
    suffrage: "voter",
    outgoing: false,
    leader,
    raftAddress: `127.0.0.1:700${id}`,
    apiAddress: `https://127.0.0.1:800${id}`,
    ...(known ? { version: "0.2.0", protocolVersion: 2 } : {}),
  };
}

/** As follower 2 answers: it heard the leader (1), never follower 3. */
const followerAnswer: Members = {
  leader: 1,
  joint: false,
  members: [member(1, true, true), member(2, true), member(3, false)],
};

describe("cluster members versions", () => {
  it("asks the leader only when a version is missing", () => {
    expect(leaderToAsk(followerAnswer)).toEqual({ apiAddress: "https://127.0.0.1:8001" });
    const complete = fillFromLeader(followerAnswer, {
      ...followerAnswer,
      members: [member(1, true, true), member(2, true), member(3, true)],
    });
    expect(leaderToAsk(complete.members)).toBeUndefined();
    expect(leaderToAsk({ ...followerAnswer, leader: null })).toEqual({
      notAsked: "no leader is known",
    });
    const noAddress: Member = member(1, true, true);
    delete noAddress.apiAddress;
    expect(leaderToAsk({ ...followerAnswer, members: [noAddress, member(3, false)] })).toEqual({
      notAsked: "the leader's (node 1) API address is not known",
    });
  });

  it("fills a follower's gap from the leader and says where it came from", () => {
    const leaderAnswer: Members = {
      ...followerAnswer,
      members: [member(1, true, true), member(2, true), member(3, true)],
    };
    const filled = fillFromLeader(followerAnswer, leaderAnswer);
    expect(filled.members.members.find((m) => m.id === 3)).toMatchObject({
      version: "0.2.0",
      protocolVersion: 2,
    });
    expect(filled.fromLeader).toEqual([3]);
    expect(filled.unknown).toEqual([]);
    expect(versionNotes(filled)).toEqual([
      "versions of member 3: as the leader (node 1) last heard; the answering node has not linked with it",
    ]);
  });

  it("names what neither knows, and why the leader could not tell", () => {
    const filled = fillFromLeader(followerAnswer, followerAnswer);
    expect(filled.unknown).toEqual([3]);
    expect(filled.fromLeader).toEqual([]);
    const [note] = versionNotes(filled);
    expect(note).toContain("unknown: no handshake with member 3");
    expect(note).toContain("nor by the leader");
    expect(note).toContain("`blixard cluster status` asks each member");

    const unasked = fillFromLeader(followerAnswer, undefined);
    expect(unasked.unknown).toEqual([3]);
    const [why] = versionNotes(unasked, "connect ECONNREFUSED 127.0.0.1:8001");
    expect(why).toContain("the leader could not be asked: connect ECONNREFUSED 127.0.0.1:8001");
  });

  it("keeps what the answering node knows over the leader's view", () => {
    const stale: Members = {
      ...followerAnswer,
      members: [
        member(1, true, true),
        { ...member(2, true), version: "0.1.0", protocolVersion: 1 },
        member(3, false),
      ],
    };
    const filled = fillFromLeader(followerAnswer, stale);
    expect(filled.members.members.find((m) => m.id === 2)).toMatchObject({ version: "0.2.0" });
    expect(filled.fromLeader).toEqual([]);
  });
});
