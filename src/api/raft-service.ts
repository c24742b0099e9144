/**
 * The {@link BlixardNodeService} of a real node: a {@link RaftNode} driving the sessioned
 * {@link KvStateMachine}. Writes become command envelopes (the proposer's time, the client's
 * session, the kv command) proposed on the leader; reads go through ReadIndex, the leader's
 * lease, or the local state, as asked.
 */
import type { Clock } from "../common/clock.js";
import {
  ConflictError,
  InvalidArgumentError,
  NotFoundError,
  NotLeaderError,
  isBlixardError,
} from "../common/errors.js";
import { invariant } from "../common/assert.js";
import type { OperationOptions } from "../node/operation.js";
import type { ProposeOptions, RaftNode } from "../node/raft-node.js";
import { NONE, type ConfState, type NodeId } from "../raft/types.js";
import { commandErrorToException, type CommandResult } from "../statemachine/command-result.js";
import { encodeKvCommand, validateKey } from "../statemachine/kv/command-codec.js";
import type { KvStateMachine } from "../statemachine/kv/kv-state-machine.js";
import { MAX_LIST_LIMIT } from "../statemachine/kv/limits.js";
import type { KvListResult } from "../statemachine/kv/store.js";
import type {
  KvCommand,
  KvCompareAndSetResult,
  KvDeleteResult,
  KvPutResult,
  KvResult,
} from "../statemachine/kv/types.js";
import { encodeCommandEnvelope } from "../statemachine/session/envelope.js";
import {
  encodeMemberContext,
  memberApiUrl,
  withLeaderAddress,
  type MemberDirectory,
} from "./member-directory.js";
import { NO_SERVICE_METRICS, type ServiceMetricsSink } from "./service-metrics.js";
import type {
  BlixardNodeService,
  CallOptions,
  KvCompareAndSetRequest,
  KvDeleteRequest,
  KvListRequest,
  KvPutRequest,
  KvReadResult,
  MemberRelease,
  MemberView,
  NewMember,
  NodeStatusView,
  Readiness,
  ReadConsistency,
  ReadOptions,
  WriteOptions,
} from "./service.js";

/** The runtime's result type when it drives the kv state machine. */
export type KvNodeResult = CommandResult<KvResult>;

/**
 * What the kv service needs of a running node. A port rather than `RaftNode<KvNodeResult>`, so
 * that both a node that applies only kv commands and the cluster node, whose state machine
 * holds several namespaces, fit it: this service proposes kv commands only, and the kv
 * namespace answers a kv command with a kv result.
 */
export type KvServiceNode = Pick<
  RaftNode<CommandResult<unknown>>,
  | "id"
  | "propose"
  | "read"
  | "readStale"
  | "isLeader"
  | "leader"
  | "status"
  | "addLearner"
  | "promote"
  | "replaceVoter"
  | "removeMember"
  | "transferLeadership"
>;

/** Options of a {@link RaftKvService}. */
export interface RaftKvServiceOptions {
  /** The running node. */
  readonly node: KvServiceNode;
  /** The state machine the node applies to (read directly after ReadIndex). */
  readonly kv: Pick<KvStateMachine, "read" | "list" | "revision">;
  /**
   * Stamps `proposedAtMs` on commands and times operations. Session expiry runs on log time (the
   * largest `proposedAtMs` applied), so every node of a cluster should use a clock with the same
   * origin, e.g. ms since the Unix epoch.
   */
  readonly clock: Clock;
  /** Member addresses; added learners are recorded here. */
  readonly directory: MemberDirectory;
  /** Each member's release as this node knows it (default: unknown for all). */
  readonly memberRelease?: (id: NodeId) => MemberRelease | undefined;
  /**
   * Resolves the leader's API base URL, for the NOT_LEADER hint the HTTP layer forwards to.
   * Default: the `apiAddress` of the leader in `directory`.
   */
  readonly leaderApiAddress?: (id: NodeId) => URL | undefined;
  /** Where to report proposals and reads. Default: nowhere. */
  readonly metrics?: ServiceMetricsSink;
}

/** {@link BlixardNodeService} over a {@link RaftNode} and a {@link KvStateMachine}. */
export class RaftKvService implements BlixardNodeService {
  readonly nodeId: NodeId;
  readonly #node: KvServiceNode;
  readonly #kv: RaftKvServiceOptions["kv"];
  readonly #clock: Clock;
  readonly #directory: MemberDirectory;
  readonly #memberRelease: (id: NodeId) => MemberRelease | undefined;
  readonly #leaderApiAddress: (id: NodeId) => URL | undefined;
  readonly #metrics: ServiceMetricsSink;

  /** Wraps a node; it must already be started (or be started by the caller). Throws nothing. */
  constructor(options: RaftKvServiceOptions) {
    this.nodeId = options.node.id;
    this.#node = options.node;
    this.#kv = options.kv;
    this.#clock = options.clock;
    this.#directory = options.directory;
    this.#memberRelease = options.memberRelease ?? (() => undefined);
    this.#metrics = options.metrics ?? NO_SERVICE_METRICS;
    this.#leaderApiAddress =
      options.leaderApiAddress ?? ((id) => memberApiUrl(this.#directory, id));
  }

  // ---------------------------------------------------------------------------------------------
  // Key-value

  /** @inheritdoc */
  kvGet(key: string, options: ReadOptions = {}): Promise<KvReadResult> {
    return this.#read(
      () => {
        validateKey(key);
      },
      () => ({ revision: this.#kv.revision, entry: this.#kv.read(key) }),
      options,
    );
  }

  /** @inheritdoc */
  kvList(request: KvListRequest, options: ReadOptions = {}): Promise<KvListResult> {
    return this.#read(
      () => {
        const limit = request.limit;
        if (
          limit !== undefined &&
          (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT)
        ) {
          throw new InvalidArgumentError(`limit must be in 1..${MAX_LIST_LIMIT}, got ${limit}`);
        }
      },
      () => this.#kv.list(request),
      options,
    );
  }

  /** @inheritdoc */
  async kvPut(request: KvPutRequest, options: WriteOptions = {}): Promise<KvPutResult> {
    const result = await this.#propose(
      {
        op: "put",
        key: request.key,
        value: request.value,
        ...(request.returnPrevious === undefined ? {} : { returnPrevious: request.returnPrevious }),
        ...(request.lease === undefined ? {} : { lease: request.lease }),
      },
      options,
    );
    invariant(result.op === "put", () => `a put returned a ${result.op} result`);
    return result;
  }

  /** @inheritdoc */
  async kvDelete(request: KvDeleteRequest, options: WriteOptions = {}): Promise<KvDeleteResult> {
    const result = await this.#propose(
      {
        op: "delete",
        key: request.key,
        ...(request.returnPrevious === undefined ? {} : { returnPrevious: request.returnPrevious }),
      },
      options,
    );
    invariant(result.op === "delete", () => `a delete returned a ${result.op} result`);
    return result;
  }

  /** @inheritdoc */
  async kvCompareAndSet(
    request: KvCompareAndSetRequest,
    options: WriteOptions = {},
  ): Promise<KvCompareAndSetResult> {
    const result = await this.#propose(
      { op: "cas", key: request.key, expected: request.expected, value: request.value },
      options,
    );
    invariant(result.op === "cas", () => `a cas returned a ${result.op} result`);
    return result;
  }

  async #propose(command: KvCommand, options: WriteOptions): Promise<KvResult> {
    // Encoding validates the key and value: bad input never reaches the log.
    const envelope = encodeCommandEnvelope({
      proposedAtMs: Math.max(0, Math.floor(this.#clock.now())),
      ...(options.session === undefined ? {} : { session: options.session }),
      payload: encodeKvCommand(command),
    });
    const startedMs = this.#clock.now();
    let outcome = "applied";
    try {
      const result = await this.#node.propose(envelope, proposeOptions(options));
      if (!result.ok) {
        outcome = result.error.reason ?? result.error.code;
        throw commandErrorToException(result.error);
      }
      // A kv command is applied by the kv namespace, whose answers are kv results.
      return result.value as KvResult;
    } catch (error) {
      if (outcome === "applied") outcome = isBlixardError(error) ? error.code : "INTERNAL";
      throw withLeaderAddress(
        error,
        this.#node.leader === NONE ? undefined : this.#node.leader,
        this.#leaderApiAddress,
      );
    } finally {
      this.#metrics.proposalFinished(outcome, this.#clock.now() - startedMs);
    }
  }

  async #read<T>(validate: () => void, query: () => T, options: ReadOptions): Promise<T> {
    validate();
    const consistency: ReadConsistency = options.consistency ?? "linearizable";
    const startedMs = this.#clock.now();
    let outcome = "ok";
    try {
      if (consistency === "stale") return this.#node.readStale(query);
      // A lease is the leader's alone: elsewhere the request goes to the leader. A linearizable
      // read runs anywhere: a follower asks the leader for the read index (one raft message,
      // not an HTTP hop) and answers from its own state once it has applied that far.
      if (consistency === "lease" && !this.#node.isLeader) throw new NotLeaderError();
      return await this.#node.read(query, operationOptions(options));
    } catch (error) {
      outcome = isBlixardError(error) ? error.code : "INTERNAL";
      throw withLeaderAddress(
        error,
        this.#node.leader === NONE ? undefined : this.#node.leader,
        this.#leaderApiAddress,
      );
    } finally {
      this.#metrics.readFinished(consistency, outcome, this.#clock.now() - startedMs);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Cluster

  /** @inheritdoc */
  leaderApiUrl(): URL | undefined {
    const leader = this.#node.leader;
    return leader === NONE || leader === this.#node.id ? undefined : this.#leaderApiAddress(leader);
  }

  /** @inheritdoc */
  status(): NodeStatusView {
    const s = this.#node.status();
    return {
      id: s.id,
      term: s.term,
      role: s.role,
      leader: s.leader === NONE ? undefined : s.leader,
      commitIndex: s.commit,
      appliedIndex: s.applied,
      lastIndex: s.lastIndex,
      snapshotIndex: s.snapshotIndex,
      pendingProposals: s.pendingProposals,
      proposalsForwarded: s.proposalsForwarded,
      protocolVersion: s.protocolVersion,
      clusterProtocolVersion: s.clusterProtocolVersion,
      forwardedEntriesApplied: s.forwardedEntriesApplied,
      firstForwardedIndex: s.firstForwardedIndex,
      forwardedProposalsRefused: s.forwardedProposalsRefused,
      leadTransferee: s.leadTransferee === NONE ? undefined : s.leadTransferee,
      config: s.config,
      progress: s.progress,
      stopped: s.stopped,
    };
  }

  /** @inheritdoc */
  members(): MemberView[] {
    const { config, leader } = this.#node.status();
    const incoming = new Set(config.voters);
    const ids = [
      ...new Set([
        ...config.voters,
        ...config.votersOutgoing,
        ...config.learners,
        ...config.learnersNext,
      ]),
    ].sort((a, b) => a - b);
    return ids.map((id) => {
      const addresses = this.#directory.get(id);
      const release = this.#memberRelease(id);
      const voter = incoming.has(id) || config.votersOutgoing.includes(id);
      return {
        id,
        suffrage: voter ? "voter" : "learner",
        outgoing: !incoming.has(id) && config.votersOutgoing.includes(id),
        leader: id === leader,
        ...(addresses === undefined ? {} : { addresses }),
        ...(release === undefined ? {} : { release }),
      };
    });
  }

  /** @inheritdoc */
  async addLearner(member: NewMember, options: CallOptions = {}): Promise<ConfState> {
    if (!URL.canParse(member.apiAddress)) {
      throw new InvalidArgumentError(
        `apiAddress ${JSON.stringify(member.apiAddress)} is not a URL`,
      );
    }
    if (this.#node.isLeader && this.#isMember(member.id)) {
      throw new ConflictError(`node ${member.id} is already a member`);
    }
    const config = await this.#membership(() =>
      this.#node.addLearner(member.id, encodeMemberContext(member), operationOptions(options)),
    );
    this.#directory.set(member.id, {
      raftAddress: member.raftAddress,
      apiAddress: member.apiAddress,
    });
    return config;
  }

  /** @inheritdoc */
  promote(id: NodeId, options: CallOptions = {}): Promise<ConfState> {
    this.#requireMemberOnLeader(id);
    return this.#membership(() => this.#node.promote(id, operationOptions(options)));
  }

  /** @inheritdoc */
  replaceMember(remove: NodeId, promote: NodeId, options: CallOptions = {}): Promise<ConfState> {
    this.#requireMemberOnLeader(remove);
    this.#requireMemberOnLeader(promote);
    return this.#membership(() =>
      this.#node.replaceVoter(remove, promote, operationOptions(options)),
    );
  }

  /** @inheritdoc */
  removeMember(id: NodeId, options: CallOptions = {}): Promise<ConfState> {
    this.#requireMemberOnLeader(id);
    return this.#membership(() => this.#node.removeMember(id, operationOptions(options)));
  }

  /** @inheritdoc */
  async transferLeader(id: NodeId, options: CallOptions = {}): Promise<void> {
    this.#requireMemberOnLeader(id);
    if (this.#node.isLeader && !this.#node.status().config.voters.includes(id)) {
      throw new InvalidArgumentError(`node ${id} is not a voter; only a voter can lead`);
    }
    await this.#membership(() => this.#node.transferLeadership(id, operationOptions(options)));
  }

  async #membership<T>(change: () => Promise<T>): Promise<T> {
    try {
      return await change();
    } catch (error) {
      throw withLeaderAddress(
        error,
        this.#node.leader === NONE ? undefined : this.#node.leader,
        this.#leaderApiAddress,
      );
    }
  }

  #isMember(id: NodeId): boolean {
    const c = this.#node.status().config;
    return [c.voters, c.learners, c.votersOutgoing, c.learnersNext].some((ids) => ids.includes(id));
  }

  /** Only the leader's configuration is authoritative; followers leave the check to it. */
  #requireMemberOnLeader(id: NodeId): void {
    if (this.#node.isLeader && !this.#isMember(id)) {
      throw new NotFoundError(`node ${id} is not a member of the cluster`);
    }
  }

  // ---------------------------------------------------------------------------------------------
  // Health

  /** @inheritdoc */
  healthy(): boolean {
    return true;
  }

  /** @inheritdoc */
  readiness(): Readiness {
    const s = this.#node.status();
    if (s.stopped) return { ready: false, reason: "the node is stopped" };
    if (s.leader === NONE) return { ready: false, reason: "no leader is known yet" };
    return { ready: true, leader: s.leader };
  }
}

/** The runtime's options for a write: its cancellation, deadline and whether it may be forwarded. */
export function proposeOptions(options: WriteOptions): ProposeOptions {
  return {
    ...operationOptions(options),
    ...(options.leaderOnly === true ? { leaderOnly: true } : {}),
  };
}

/** The runtime's options for a call's cancellation and deadline. */
export function operationOptions(options: CallOptions): OperationOptions {
  return {
    ...(options.signal === undefined ? {} : { signal: options.signal }),
    ...(options.timeoutMs === undefined ? {} : { timeoutMs: options.timeoutMs }),
  };
}
