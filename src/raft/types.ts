/**
 * The consensus core's data types: log entries, messages, hard state, membership configuration
 * and snapshots. Shapes follow etcd's raftpb so that the wire schema (`proto/`) maps one to one.
 */

/** A raft node id: a positive integer. 0 ({@link NONE}) means "no node". */
export type NodeId = number;

/** The absent node id: no leader known, no vote cast. */
export const NONE: NodeId = 0;

/** The largest log index or term the core handles. */
export const MAX_INDEX = Number.MAX_SAFE_INTEGER;

/**
 * The largest term or log index a message may carry, and the largest term this node moves to:
 * 2^52. A real cluster never gets near it (a new term every millisecond for 140,000 years), and
 * below it `term + 1`, `index + 1` and any sum of a few of them stay exact integers, so arithmetic
 * in the core can never leave the safe range. A larger value comes only from a broken or hostile
 * peer: the transport refuses it and the core drops it (see ARCHITECTURE.md, "Transport").
 */
export const MAX_MESSAGE_TERM_OR_INDEX = 2 ** 52;

/** What an entry carries. */
export const EntryType = {
  /** An application command (or the empty no-op a new leader appends). */
  Normal: 0,
  /** A membership change, encoded with `encodeConfChange`. */
  ConfChange: 1,
} as const;
export type EntryType = (typeof EntryType)[keyof typeof EntryType];

/** One log entry. `data` is opaque to the core except for conf changes. */
export interface Entry {
  readonly term: number;
  readonly index: number;
  readonly type: EntryType;
  readonly data: Uint8Array;
}

/** What must be durable before a node speaks (votes, acknowledges appends). */
export interface HardState {
  readonly term: number;
  readonly vote: NodeId;
  readonly commit: number;
}

/** The empty hard state of a brand-new node. */
export const EMPTY_HARD_STATE: HardState = Object.freeze({ term: 0, vote: NONE, commit: 0 });

/**
 * A membership configuration. Outside a joint configuration `votersOutgoing` and `learnersNext`
 * are empty. `learnersNext` holds voters of the outgoing config that become learners on leaving
 * the joint config.
 */
export interface ConfState {
  readonly voters: readonly NodeId[];
  readonly learners: readonly NodeId[];
  readonly votersOutgoing: readonly NodeId[];
  readonly learnersNext: readonly NodeId[];
  readonly autoLeave: boolean;
}

/**
 * Every member of `conf` once, ascending: voters and learners of both halves of a joint
 * configuration (every node that applies the log). Throws nothing.
 */
export function confMembers(conf: ConfState): NodeId[] {
  return [
    ...new Set([...conf.voters, ...conf.votersOutgoing, ...conf.learners, ...conf.learnersNext]),
  ].sort((a, b) => a - b);
}

/** The configuration with no members. */
export const EMPTY_CONF_STATE: ConfState = Object.freeze({
  voters: [],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
});

/** Where a snapshot sits in the log, and the configuration as of that index. */
export interface SnapshotMetadata {
  readonly index: number;
  readonly term: number;
  readonly confState: ConfState;
}

/** A state machine snapshot as the core sees it: metadata plus opaque bytes. */
export interface Snapshot {
  readonly metadata: SnapshotMetadata;
  readonly data: Uint8Array;
}

/** The snapshot of a new node: index 0, no data. */
export const EMPTY_SNAPSHOT: Snapshot = Object.freeze({
  metadata: Object.freeze({ index: 0, term: 0, confState: EMPTY_CONF_STATE }),
  data: new Uint8Array(0),
});

/** Every kind of message, local (never sent on the wire) and remote. */
export const MessageType = {
  /** local: start an election. */
  Hup: 0,
  /** local: the leader sends heartbeats. */
  Beat: 1,
  /** local or forwarded: a proposal of entries. */
  Prop: 2,
  App: 3,
  AppResp: 4,
  Vote: 5,
  VoteResp: 6,
  Snap: 7,
  Heartbeat: 8,
  HeartbeatResp: 9,
  /** local: the transport could not reach `from`. */
  Unreachable: 10,
  /** local: the outcome of sending a snapshot to `from` (`reject` = failed). */
  SnapStatus: 11,
  /** local: the leader checks that a quorum is active. */
  CheckQuorum: 12,
  /** local or forwarded: transfer leadership to `from`. */
  TransferLeader: 13,
  /** the leader tells the transferee to campaign at once. */
  TimeoutNow: 14,
  ReadIndex: 15,
  ReadIndexResp: 16,
  PreVote: 17,
  PreVoteResp: 18,
} as const;
export type MessageType = (typeof MessageType)[keyof typeof MessageType];

const messageTypeNames = Object.fromEntries(
  Object.entries(MessageType).map(([name, value]) => [value, `Msg${name}`]),
) as Record<MessageType, string>;

/** The name of a message type, e.g. `MsgApp`, for logs and traces. */
export function messageTypeName(type: MessageType): string {
  return messageTypeNames[type];
}

/**
 * A raft message. One shape for every type (as etcd's raftpb.Message); fields a type does not
 * use are 0, false or empty.
 */
export interface Message {
  readonly type: MessageType;
  readonly to: NodeId;
  readonly from: NodeId;
  readonly term: number;
  /** App: term of the entry at `index`. Vote/PreVote: the candidate's last log term. Resp: hint term. */
  readonly logTerm: number;
  /** App: the index preceding `entries`. Vote: the candidate's last index. AppResp: the index acknowledged or rejected. */
  readonly index: number;
  readonly entries: readonly Entry[];
  readonly commit: number;
  readonly snapshot?: Snapshot;
  readonly reject: boolean;
  /** AppResp reject: the follower's suggestion of where to probe next (fast back-off). */
  readonly rejectHint: number;
  /** Heartbeat / ReadIndex: the read request this message carries. Vote: campaign kind. */
  readonly context?: Uint8Array;
}

/** Builds a message with every unused field at its zero value. */
export function message(fields: Partial<Message> & Pick<Message, "type">): Message {
  return {
    to: NONE,
    from: NONE,
    term: 0,
    logTerm: 0,
    index: 0,
    entries: [],
    commit: 0,
    reject: false,
    rejectHint: 0,
    ...fields,
  };
}

/** The kind of one membership change. */
export const ConfChangeType = {
  AddNode: 0,
  RemoveNode: 1,
  AddLearnerNode: 2,
} as const;
export type ConfChangeType = (typeof ConfChangeType)[keyof typeof ConfChangeType];

/** One membership change. */
export interface ConfChangeSingle {
  readonly type: ConfChangeType;
  readonly nodeId: NodeId;
}

/**
 * How a conf change with several changes (or one that needs it) uses joint consensus.
 * `Auto`: joint if needed, left automatically. `Implicit`: joint, left automatically.
 * `Explicit`: joint, left only by an explicit empty conf change.
 */
export const ConfChangeTransition = {
  Auto: 0,
  Implicit: 1,
  Explicit: 2,
} as const;
export type ConfChangeTransition = (typeof ConfChangeTransition)[keyof typeof ConfChangeTransition];

/**
 * A membership change (etcd's ConfChangeV2). An empty `changes` list leaves a joint
 * configuration.
 */
export interface ConfChange {
  readonly transition: ConfChangeTransition;
  readonly changes: readonly ConfChangeSingle[];
  /** Opaque bytes for the application (e.g. the new member's addresses). */
  readonly context: Uint8Array;
}

/** The roles of a raft node. */
export const Role = {
  Follower: "follower",
  PreCandidate: "pre-candidate",
  Candidate: "candidate",
  Leader: "leader",
} as const;
export type Role = (typeof Role)[keyof typeof Role];

/** State that changes often and need not be persisted. */
export interface SoftState {
  readonly leader: NodeId;
  readonly role: Role;
}

/** A linearizable read that may be served once the applied index reaches `index`. */
export interface ReadState {
  readonly index: number;
  /** The caller's request id, as passed to `readIndex`. */
  readonly requestCtx: Uint8Array;
}
