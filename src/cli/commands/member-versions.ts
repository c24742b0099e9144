/**
 * The versions in `blixard cluster members`. A node knows a member's release only from a peer
 * handshake with it, and a follower links with the leader and with the members it exchanged
 * votes with, not necessarily with every follower, so its own answer has gaps. The leader links
 * with every live member: the gaps are filled from the leader's answer, and what neither knows
 * is said as such, with where to look, rather than shown as a bare `?`.
 */
import type { Members } from "../../client/index.js";

/** One member of a `GET /v1/cluster/members` answer. */
type Member = Members["members"][number];

/** Whether the answer lacks the member's software or protocol version. */
function versionUnknown(member: Member): boolean {
  return member.version === undefined || member.protocolVersion === undefined;
}

/** The members list with the gaps the leader could fill, and what is still unknown. */
export interface FilledMembers {
  /** The answering node's list, with each unknown version taken from the leader's when known. */
  readonly members: Members;
  /** The members whose versions came from the leader's answer. */
  readonly fromLeader: readonly number[];
  /** The members whose versions neither the answering node nor the leader knows. */
  readonly unknown: readonly number[];
}

/**
 * Where to ask for the versions `members` lacks: the leader's API address, or, when there is no
 * gap, undefined; a string `notAsked` when the leader cannot be asked, saying why.
 */
export function leaderToAsk(
  members: Members,
): { readonly apiAddress: string } | { readonly notAsked: string } | undefined {
  if (!members.members.some(versionUnknown)) return undefined;
  if (members.leader === null) return { notAsked: "no leader is known" };
  const apiAddress = members.members.find((m) => m.id === members.leader)?.apiAddress;
  return apiAddress === undefined
    ? { notAsked: `the leader's (node ${members.leader}) API address is not known` }
    : { apiAddress };
}

/**
 * Fills the versions `answer` lacks from `leaderAnswer` (the leader's own list, or undefined when
 * it was not asked or did not answer). Pure; throws nothing.
 */
export function fillFromLeader(answer: Members, leaderAnswer: Members | undefined): FilledMembers {
  const fromLeader: number[] = [];
  const unknown: number[] = [];
  const members = answer.members.map((member) => {
    if (!versionUnknown(member)) return member;
    const known = leaderAnswer?.members.find((m) => m.id === member.id);
    const version = member.version ?? known?.version;
    const protocolVersion = member.protocolVersion ?? known?.protocolVersion;
    const filled: Member = {
      ...member,
      ...(version === undefined ? {} : { version }),
      ...(protocolVersion === undefined ? {} : { protocolVersion }),
    };
    if (versionUnknown(filled)) unknown.push(member.id);
    if (filled.version !== member.version || filled.protocolVersion !== member.protocolVersion) {
      fromLeader.push(member.id);
    }
    return filled;
  });
  return { members: { ...answer, members }, fromLeader, unknown };
}

/**
 * Lines printed under the table: where filled versions came from, and what an unknown one means.
 * `leaderNotAsked` says why the leader's answer is missing (undefined: the leader answered).
 */
export function versionNotes(filled: FilledMembers, leaderNotAsked?: string): string[] {
  const notes: string[] = [];
  const leader = filled.members.leader;
  if (filled.fromLeader.length > 0) {
    notes.push(
      `versions of ${memberList(filled.fromLeader)}: as the leader (node ${leader}) last heard; ` +
        `the answering node has not linked with ${filled.fromLeader.length === 1 ? "it" : "them"}`,
    );
  }
  if (filled.unknown.length > 0) {
    const why =
      leaderNotAsked === undefined
        ? "nor by the leader (down, or unreachable since the leader started?)"
        : `and the leader could not be asked: ${leaderNotAsked}`;
    notes.push(
      `unknown: no handshake with ${memberList(filled.unknown)} heard by the answering node, ${why}; ` +
        "`blixard cluster status` asks each member for its own version",
    );
  }
  return notes;
}

function memberList(ids: readonly number[]): string {
  return ids.length === 1 ? `member ${ids[0]}` : `members ${ids.join(", ")}`;
}
