/**
 * The {@link BlixardNodeService} of a real node: a {@link RaftNode} driving the sessioned
 * cluster state machine, of which this service serves the kv namespace. Writes and reads go through the node's {@link CommandPort} (kv
 * namespace); membership changes through the same port (`cluster` namespace).
 */
import { ConflictError, InvalidArgumentError, NotFoundError } from "../common/errors.js";
import { invariant } from "../common/assert.js";
import type { CommandPort } from "../node/command-port.js";
import type { RaftNode } from "../node/raft-node.js";
import { NONE, confMembers, type ConfState, type NodeId } from "../raft/types.js";
import { KV_COMMANDS } from "../statemachine/cluster/command-namespaces.js";
import type { CommandResult } from "../statemachine/command-result.js";
import { validateKey } from "../statemachine/kv/command-codec.js";
import type { ClusterStateMachine } from "../statemachine/cluster/cluster-state-machine.js";
import { MAX_LIST_LIMIT } from "../statemachine/kv/limits.js";
import type { KvListResult } from "../statemachine/kv/store.js";
import type {
  KvCommand,
  KvCompareAndSetResult,
  KvDeleteResult,
  KvPutResult,
} from "../statemachine/kv/types.js";
import { encodeMemberContext, type MemberDirectory } from "./member-directory.js";
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
  ReadOptions,
  WriteOptions,
} from "./service.js";

/** The metrics namespace of membership changes and leadership transfers. */
const CLUSTER = "cluster";

/**
 * What the kv service needs of a running node beyond its command port: status and membership.
 * A port rather than the node itself: the service needs nothing of the node's result type.
 */
export type KvServiceNode = Pick<
  RaftNode<CommandResult<unknown>>,
  | "id"
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
  /** The node's command port (proposals, reads, NOT_LEADER addresses, metrics). */
  readonly commands: CommandPort;
  /** The state machine the node applies to (read directly after the read barrier). */
  readonly kv: Pick<ClusterStateMachine, "read" | "list" | "revision">;
  /** Member addresses; added learners are recorded here. */
  readonly directory: MemberDirectory;
  /** Each member's release as this node knows it (default: unknown for all). */
  readonly memberRelease?: (id: NodeId) => MemberRelease | undefined;
}

/** {@link BlixardNodeService} over a {@link RaftNode} and the kv reads of its state machine. */
export class RaftKvService implements BlixardNodeService {
  readonly nodeId: NodeId;
  readonly #node: KvServiceNode;
  readonly #commands: CommandPort;
  readonly #kv: RaftKvServiceOptions["kv"];
  readonly #directory: MemberDirectory;
  readonly #memberRelease: (id: NodeId) => MemberRelease | undefined;

  /** Wraps a node; it must already be started (or be started by the caller). Throws nothing. */
  constructor(options: RaftKvServiceOptions) {
    this.nodeId = options.node.id;
    this.#node = options.node;
    this.#commands = options.commands;
    this.#kv = options.kv;
    this.#directory = options.directory;
    this.#memberRelease = options.memberRelease ?? (() => undefined);
  }

  // ---------------------------------------------------------------------------------------------
  // Key-value

  /** @inheritdoc */
  async kvGet(key: string, options: ReadOptions = {}): Promise<KvReadResult> {
    validateKey(key);
    return this.#commands.read(
      KV_COMMANDS.name,
      () => ({ revision: this.#kv.revision, entry: this.#kv.read(key) }),
      options,
    );
  }

  /** @inheritdoc */
  async kvList(request: KvListRequest, options: ReadOptions = {}): Promise<KvListResult> {
    const limit = request.limit;
    if (
      limit !== undefined &&
      (!Number.isSafeInteger(limit) || limit < 1 || limit > MAX_LIST_LIMIT)
    ) {
      throw new InvalidArgumentError(`limit must be in 1..${MAX_LIST_LIMIT}, got ${limit}`);
    }
    return this.#commands.read(KV_COMMANDS.name, () => this.#kv.list(request), options);
  }

  /** @inheritdoc */
  async kvPut(request: KvPutRequest, options: WriteOptions = {}): Promise<KvPutResult> {
    const { key, value, returnPrevious, lease } = request;
    // A plain put (the common case) is built without the optional fields' spreads.
    const command: KvCommand =
      returnPrevious === undefined && lease === undefined
        ? { op: "put", key, value }
        : {
            op: "put",
            key,
            value,
            ...(returnPrevious === undefined ? {} : { returnPrevious }),
            ...(lease === undefined ? {} : { lease }),
          };
    const result = await this.#commands.propose(KV_COMMANDS, command, options);
    invariant(result.op === "put", () => `a put returned a ${result.op} result`);
    return result;
  }

  /** @inheritdoc */
  async kvDelete(request: KvDeleteRequest, options: WriteOptions = {}): Promise<KvDeleteResult> {
    const result = await this.#commands.propose(
      KV_COMMANDS,
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
    const result = await this.#commands.propose(
      KV_COMMANDS,
      { op: "cas", key: request.key, expected: request.expected, value: request.value },
      options,
    );
    invariant(result.op === "cas", () => `a cas returned a ${result.op} result`);
    return result;
  }

  // ---------------------------------------------------------------------------------------------
  // Cluster

  /** @inheritdoc */
  leaderApiUrl(): URL | undefined {
    return this.#commands.leaderApiUrl();
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
    const ids = confMembers(config);
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
      this.#node.addLearner(member.id, encodeMemberContext(member), options),
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
    return this.#membership(() => this.#node.promote(id, options));
  }

  /** @inheritdoc */
  replaceMember(remove: NodeId, promote: NodeId, options: CallOptions = {}): Promise<ConfState> {
    this.#requireMemberOnLeader(remove);
    this.#requireMemberOnLeader(promote);
    return this.#membership(() => this.#node.replaceVoter(remove, promote, options));
  }

  /** @inheritdoc */
  removeMember(id: NodeId, options: CallOptions = {}): Promise<ConfState> {
    this.#requireMemberOnLeader(id);
    return this.#membership(() => this.#node.removeMember(id, options));
  }

  /** @inheritdoc */
  async transferLeader(id: NodeId, options: CallOptions = {}): Promise<void> {
    this.#requireMemberOnLeader(id);
    if (this.#node.isLeader && !this.#node.status().config.voters.includes(id)) {
      throw new InvalidArgumentError(`node ${id} is not a voter; only a voter can lead`);
    }
    await this.#membership(() => this.#node.transferLeadership(id, options));
  }

  #membership<T>(change: () => Promise<T>): Promise<T> {
    return this.#commands.change(CLUSTER, change);
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
