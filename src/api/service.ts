/**
 * The port between the HTTP layer and a node: everything the API asks of a Blixard node, in
 * domain types (bytes as `Uint8Array`, errors as `BlixardError`s). The HTTP layer validates and
 * translates; an implementation (`raft-service.ts`) talks to the runtime. Tests may fake it.
 */
import type { ConfState, NodeId } from "../raft/types.js";
import type { CallOptions, ReadOptions, WriteOptions } from "../node/command-port.js";
import type {
  KvCompareAndSetResult,
  KvDeleteResult,
  KvEntry,
  KvExpectation,
  KvPutResult,
} from "../statemachine/kv/types.js";
import type { KvListOptions, KvListResult } from "../statemachine/kv/store.js";
import type { PeerProgress } from "../raft/rawnode.js";

// The call options are the command port's: a service hands them on as they are.
export type { CallOptions, ReadOptions, WriteOptions } from "../node/command-port.js";

/** A put. */
export interface KvPutRequest {
  readonly key: string;
  readonly value: Uint8Array;
  readonly returnPrevious?: boolean;
  /** Attach the key to this lease (without it, the put detaches the key from any lease). */
  readonly lease?: number;
}

/** A delete. */
export interface KvDeleteRequest {
  readonly key: string;
  readonly returnPrevious?: boolean;
}

/** A compare-and-set. */
export interface KvCompareAndSetRequest {
  readonly key: string;
  readonly expected: KvExpectation;
  readonly value: Uint8Array;
}

/** A read of one key: the entry (null if absent) and the store revision the read saw. */
export interface KvReadResult {
  readonly revision: number;
  readonly entry: KvEntry | null;
}

/** A list request. */
export type KvListRequest = KvListOptions;

/** Where a member can be reached. */
export interface MemberAddresses {
  /** Where peers send it raft traffic. */
  readonly raftAddress: string;
  /** Its client API base URL (e.g. `http://10.0.0.2:7070`). */
  readonly apiAddress: string;
}

/** A new member. */
export interface NewMember extends MemberAddresses {
  readonly id: NodeId;
}

/** One member as this node sees it. */
export interface MemberView {
  readonly id: NodeId;
  readonly suffrage: "voter" | "learner";
  /** A voter of the outgoing half of a joint configuration (only). */
  readonly outgoing: boolean;
  readonly leader: boolean;
  readonly addresses?: MemberAddresses;
  /** What the answering node knows of the member's release (from peer handshakes). */
  readonly release?: MemberRelease;
}

/** A member's release as far as known: each part is absent when not known. */
export interface MemberRelease {
  /** The newest peer protocol version it speaks. */
  readonly protocolVersion?: number;
  /** Its software version. */
  readonly softwareVersion?: string;
}

/** The node's state for operators. `leader` is undefined while none is known. */
export interface NodeStatusView {
  readonly id: NodeId;
  readonly term: number;
  readonly role: string;
  readonly leader: NodeId | undefined;
  readonly commitIndex: number;
  readonly appliedIndex: number;
  readonly lastIndex: number;
  readonly snapshotIndex: number;
  readonly pendingProposals: number;
  /** Writes this node handed to the leader over the peer transport since it started. */
  readonly proposalsForwarded: number;
  /** The newest peer protocol version this node speaks. */
  readonly protocolVersion: number;
  /** The cluster's protocol version as far as this node applied the log (`node/protocol-gate.ts`). */
  readonly clusterProtocolVersion: number;
  /** Entries in the forwarded-proposal envelope this node applied since it started (replay included). */
  readonly forwardedEntriesApplied: number;
  /** The lowest log index of such an entry applied since it started, or 0. */
  readonly firstForwardedIndex: number;
  /** Forwarded proposals this node, as leader, refused to append while the cluster's gate was closed. */
  readonly forwardedProposalsRefused: number;
  readonly leadTransferee: NodeId | undefined;
  readonly config: ConfState;
  /** Per peer; on the leader only. */
  readonly progress: ReadonlyMap<NodeId, PeerProgress>;
  readonly stopped: boolean;
}

/** Whether the node can serve: ready once a leader is known and the node is running. */
export type Readiness =
  | { readonly ready: true; readonly leader: NodeId }
  | { readonly ready: false; readonly reason: string };

/**
 * Everything the API asks of a node. Writes and membership changes go to the leader: on a
 * follower they reject with `NotLeaderError` whose hint carries the leader's API address when it
 * is known, and the HTTP layer forwards the request there. Every method may reject with the
 * typed errors of the runtime (`TIMEOUT`, `CANCELLED`, `OVERLOADED`, `TOO_LARGE`,
 * `UNAVAILABLE`, `INVALID_ARGUMENT`, …).
 */
export interface BlixardNodeService {
  /** This node's id. */
  readonly nodeId: NodeId;
  /** Reads one key. */
  kvGet(key: string, options?: ReadOptions): Promise<KvReadResult>;
  /** Lists one page of keys. */
  kvList(request: KvListRequest, options?: ReadOptions): Promise<KvListResult>;
  /** Writes a value. */
  kvPut(request: KvPutRequest, options?: WriteOptions): Promise<KvPutResult>;
  /** Deletes a key (a result with `deleted: false` if it did not exist). */
  kvDelete(request: KvDeleteRequest, options?: WriteOptions): Promise<KvDeleteResult>;
  /** Writes a value if the key is as expected; a failed comparison is a result, not an error. */
  kvCompareAndSet(
    request: KvCompareAndSetRequest,
    options?: WriteOptions,
  ): Promise<KvCompareAndSetResult>;
  /** The node's state. Throws nothing. */
  status(): NodeStatusView;
  /** The members of the current configuration. Throws nothing. */
  members(): MemberView[];
  /** Adds a learner; resolves with the configuration once applied. */
  addLearner(member: NewMember, options?: CallOptions): Promise<ConfState>;
  /** Promotes a caught-up learner to voter. `NotFoundError` if `id` is not a member. */
  promote(id: NodeId, options?: CallOptions): Promise<ConfState>;
  /**
   * Promotes learner `promote` and removes member `remove` in one joint-consensus change;
   * resolves with the joint configuration once applied (the leader then leaves it on its own).
   */
  replaceMember(remove: NodeId, promote: NodeId, options?: CallOptions): Promise<ConfState>;
  /** Removes a member. `NotFoundError` if `id` is not a member. */
  removeMember(id: NodeId, options?: CallOptions): Promise<ConfState>;
  /** Hands leadership to voter `id`; resolves once it leads. */
  transferLeader(id: NodeId, options?: CallOptions): Promise<void>;
  /** True while the process serves (liveness). Throws nothing. */
  healthy(): boolean;
  /** Whether the node can serve requests now. Throws nothing. */
  /**
   * The leader's API address when this node is a follower that knows it, else undefined: sent
   * with a write the follower answered itself, so a client may go to the leader next time.
   */
  leaderApiUrl?(): URL | undefined;
  readiness(): Readiness;
}
