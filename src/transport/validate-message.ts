/**
 * Every field of every raft message from a peer is checked here, at the transport boundary,
 * before the core sees it: a message a real node never sends is refused, so an authenticated
 * but broken or hostile peer cannot drive the core into an `invariant` or persist an absurd
 * value (a term near 2^53 made every later election fail; see issue #11). The sender runs the
 * same check on what it sends (tcp-transport.ts): what the writer asserts, the reader asserts
 * again. The rules, compactly, are in ARCHITECTURE.md, "Transport".
 */
import { InvalidArgumentError } from "../common/errors.js";
import { decodeConfChange } from "../raft/conf-change-codec.js";
import {
  type ConfState,
  type Entry,
  EntryType,
  MAX_MESSAGE_TERM_OR_INDEX,
  type Message,
  MessageType,
  type NodeId,
} from "../raft/types.js";

/** The bounds {@link invalidMessageReason} checks beyond the fixed ones. */
export interface MessageBounds {
  /** Bytes of a message's context or a read request's id, at most. */
  readonly maxContextBytes: number;
  /** Members listed in a snapshot's configuration (all lists together), at most. */
  readonly maxConfStateMembers: number;
}

/** The link a message arrived on (or leaves by). */
export interface MessageLink {
  readonly from: NodeId;
  readonly to: NodeId;
}

/**
 * Types a peer may send. The core's local types (Hup, Beat, Unreachable, SnapStatus,
 * CheckQuorum) never travel: a peer sending Hup would make this node campaign.
 */
const REMOTE_TYPES: ReadonlySet<number> = new Set([
  MessageType.Prop,
  MessageType.App,
  MessageType.AppResp,
  MessageType.Vote,
  MessageType.VoteResp,
  MessageType.Snap,
  MessageType.Heartbeat,
  MessageType.HeartbeatResp,
  MessageType.TransferLeader,
  MessageType.TimeoutNow,
  MessageType.ReadIndex,
  MessageType.ReadIndexResp,
  MessageType.PreVote,
  MessageType.PreVoteResp,
]);

/** Requests not bound to a term: forwarded with term 0 (any other type needs a term). */
function termless(type: MessageType): boolean {
  return type === MessageType.Prop || type === MessageType.ReadIndex;
}

function inRange(value: number): boolean {
  return Number.isSafeInteger(value) && value >= 0 && value <= MAX_MESSAGE_TERM_OR_INDEX;
}

/**
 * Why `m` cannot come from a correct node over `link`, or undefined if it can. Never throws;
 * allocates nothing for a valid message (no per-entry allocations on the hot path).
 */
export function invalidMessageReason(
  m: Message,
  link: MessageLink,
  bounds: MessageBounds,
): string | undefined {
  if (!REMOTE_TYPES.has(m.type)) return `message type ${m.type} is not sent between peers`;
  if (m.from !== link.from || m.to !== link.to) {
    return `message from ${m.from} to ${m.to} on the link from ${link.from} to ${link.to}`;
  }
  if (!inRange(m.term)) return `term ${m.term} is out of range [0, 2^52]`;
  if (m.term === 0 && !termless(m.type)) return `term 0 on a message that needs a term`;
  if (!inRange(m.logTerm)) return `log term ${m.logTerm} is out of range [0, 2^52]`;
  if (!inRange(m.index)) return `index ${m.index} is out of range [0, 2^52]`;
  if (!inRange(m.commit)) return `commit ${m.commit} is out of range [0, 2^52]`;
  if (!inRange(m.rejectHint)) return `reject hint ${m.rejectHint} is out of range [0, 2^52]`;
  if (m.logTerm > m.term && !termless(m.type)) {
    return `log term ${m.logTerm} exceeds the message term ${m.term}`;
  }
  if (m.context !== undefined && m.context.length > bounds.maxContextBytes) {
    return `context of ${m.context.length} bytes exceeds ${bounds.maxContextBytes}`;
  }
  const entries = entriesReason(m, bounds);
  if (entries !== undefined) return entries;
  if (m.type === MessageType.Snap) {
    const snapshot = m.snapshot;
    if (snapshot === undefined) return "snapshot message without a snapshot";
    const { index, term, confState } = snapshot.metadata;
    if (index < 1 || !inRange(index)) return `snapshot index ${index} is out of range [1, 2^52]`;
    if (term < 1 || term > m.term) return `snapshot term ${term} is out of range [1, ${m.term}]`;
    return confStateReason(confState, bounds);
  }
  if (m.snapshot !== undefined) return `a snapshot on a message of type ${m.type}`;
  return undefined;
}

function entriesReason(m: Message, bounds: MessageBounds): string | undefined {
  const count = m.entries.length;
  switch (m.type) {
    case MessageType.App: {
      if (m.index + count > MAX_MESSAGE_TERM_OR_INDEX) return "entries past index 2^52";
      // Entries follow the index one by one; terms never decrease, from the log term up to the
      // leader's term (a leader appends only in its own term).
      let previousTerm = m.logTerm;
      for (let i = 0; i < count; i++) {
        const e = m.entries[i] as Entry;
        if (e.index !== m.index + 1 + i) return `entry ${i} has index ${e.index}`;
        if (e.term < previousTerm || e.term > m.term) {
          return `entry ${e.index} has term ${e.term} outside [${previousTerm}, ${m.term}]`;
        }
        previousTerm = e.term;
        const reason = confChangeReason(e);
        if (reason !== undefined) return reason;
      }
      return undefined;
    }
    case MessageType.Prop: {
      if (count === 0) return "a proposal without entries";
      for (const e of m.entries) {
        if (e.term !== 0 || e.index !== 0) return "a proposal with a stamped entry";
        const reason = confChangeReason(e);
        if (reason !== undefined) return reason;
      }
      return undefined;
    }
    case MessageType.ReadIndex:
    case MessageType.ReadIndexResp: {
      // One entry carries the read request's id.
      const e = m.entries[0];
      if (count !== 1 || e === undefined) return "a read request must carry exactly one entry";
      if (e.term !== 0 || e.index !== 0 || e.type !== EntryType.Normal) {
        return "a read request's entry must be unstamped";
      }
      if (e.data.length > bounds.maxContextBytes) {
        return `read request id of ${e.data.length} bytes exceeds ${bounds.maxContextBytes}`;
      }
      return undefined;
    }
    default:
      return count === 0 ? undefined : `entries on a message of type ${m.type}`;
  }
}

/** A membership change must decode, or applying it would stop every node. */
function confChangeReason(e: Entry): string | undefined {
  if (e.type !== EntryType.ConfChange) return undefined;
  try {
    decodeConfChange(e.data);
    return undefined;
  } catch (error) {
    if (error instanceof InvalidArgumentError) return `malformed conf change: ${error.message}`;
    throw error;
  }
}

/**
 * The configuration's shape (the core checks its meaning): ids in range, a bounded number of
 * them, no id twice, at least one voter, joint-only fields only when joint.
 */
function confStateReason(c: ConfState, bounds: MessageBounds): string | undefined {
  const total =
    c.voters.length + c.learners.length + c.votersOutgoing.length + c.learnersNext.length;
  if (total > bounds.maxConfStateMembers) {
    return `configuration of ${total} members exceeds ${bounds.maxConfStateMembers}`;
  }
  if (c.voters.length === 0) return "configuration without voters";
  const joint = c.votersOutgoing.length > 0;
  if (!joint && (c.learnersNext.length > 0 || c.autoLeave)) {
    return "joint-only fields outside a joint configuration";
  }
  for (const list of [c.voters, c.learners, c.votersOutgoing, c.learnersNext]) {
    for (let i = 0; i < list.length; i++) {
      const id = list[i] as number;
      if (id < 1 || !Number.isSafeInteger(id)) return `node id ${id} in a configuration`;
      if (list.indexOf(id) !== i) return `node ${id} listed twice in a configuration`;
    }
  }
  for (const id of c.learners) {
    if (c.voters.includes(id)) return `node ${id} is both a voter and a learner`;
  }
  return undefined;
}
