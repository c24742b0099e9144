/**
 * The server side of the agent protocol (agents that are not Raft members, see
 * `orchestrator/agent/remote/`): every server answers assignment polls from its own applied
 * state, and the leader takes heartbeats.
 *
 * - **Assignments** (`GET /v1/agent/assignments`): the node's worker record, the tasks assigned or
 *   running there and the VMs placed there, with the applied index they stand at. Answered at
 *   once when the node's assignments changed after the index the agent last saw, else when they
 *   change (the change feed says which nodes an applied batch touched: see
 *   `assignment-changes.ts`) or when the wait runs out. The tasks carry their secret
 *   environment: only node N's certificate may ask for node N's work.
 * - **Heartbeats** (`POST /v1/agent/heartbeat`): on the leader, the time goes into the
 *   {@link HeartbeatTable} its liveness monitor reads; a follower relays it to the leader in a
 *   batch (`heartbeat-relay.ts`, `POST /v1/agent/heartbeats`) and answers once the leader
 *   recorded it. Never a Raft entry.
 */
import {
  ConflictError,
  GoneError,
  NotLeaderError,
  UnavailableError,
  type LeaderHint,
} from "../../common/errors.js";
import type { Clock } from "../../common/clock.js";
import type { NodeId } from "../../raft/types.js";
import type { OrchestratorQueries } from "../../statemachine/orchestrator/queries.js";
import type { Task, Vm, Worker } from "../../statemachine/orchestrator/types.js";
import type { HeartbeatTable } from "../../orchestrator/heartbeats.js";
import { diskVerdict, type DiskVerdict } from "../../orchestrator/agent/disk-verdict.js";
import type { ChangeFeed } from "../events/change-feed.js";
import { AssignmentChanges } from "./assignment-changes.js";
import type { HeartbeatRelay } from "./heartbeat-relay.js";
import { AssignmentWaiters, type AssignmentWaitersOptions } from "./assignment-waiters.js";

/** What an assignment poll answers. */
export interface AgentAssignments {
  /** The applied index the answer stands at (an agent never acts on an older one). */
  readonly index: number;
  /** The node's worker record; null before it registered. */
  readonly worker: Worker | null;
  readonly tasks: readonly Task[];
  readonly vms: readonly Vm[];
}

/** What the leader answers a heartbeat. */
export interface HeartbeatAck {
  /** The leader that recorded it. */
  readonly leaderId: NodeId;
  /** The leader's dead-after time: an agent silent this long is marked offline. */
  readonly workerDeadAfterMs: number;
}

/** What the routes ask of the agent protocol. */
export interface AgentProtocol {
  /**
   * Node `nodeId`'s assignments, once they changed after index `after` or after `waitMs`.
   * Rejects with OverloadedError past the poll limits, CancelledError when `signal` fires,
   * ConflictError if `nodeId` is a server.
   */
  assignments(
    nodeId: NodeId,
    after: number,
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<AgentAssignments>;
  /**
   * Records a heartbeat of `nodeId` on the leader, or relays it there in a batch (a follower with
   * a relay), resolving once the leader recorded it. NotLeaderError (with the leader's address)
   * off the leader without a relay; ConflictError if `nodeId` is a server.
   */
  heartbeat(nodeId: NodeId): Promise<HeartbeatAck>;
  /** Records a follower's relayed batch. NotLeaderError off the leader. */
  relayed(nodeIds: readonly NodeId[]): HeartbeatAck;
  /**
   * What node `nodeId` does with its stored disks of the VMs `names`, by this server's applied
   * model (see `orchestrator/agent/disk-verdict.ts`). ConflictError if `nodeId` is a server.
   */
  disks(nodeId: NodeId, names: readonly string[]): DiskVerdictsAnswer;
}

/** The answer of a disk lookup: one verdict per VM name asked about, in order. */
export interface DiskVerdictsAnswer {
  readonly disks: readonly { readonly name: string; readonly verdict: DiskVerdict }[];
}

/** The leadership a server knows of. */
export interface LeadershipView {
  readonly nodeId: NodeId;
  isLeader(): boolean;
  /** The leader's id and API address, when known. */
  leaderHint(): LeaderHint | undefined;
}

/** Options of {@link AgentHub}. */
export interface AgentHubOptions {
  /** The node's change feed (applied entries with the entities they touched). */
  readonly feed: Pick<ChangeFeed, "subscribe" | "read" | "nextSeq" | "epoch" | "lastIndex">;
  readonly queries: OrchestratorQueries;
  readonly clock: Clock;
  readonly leadership: LeadershipView;
  /** The leader's heartbeat table (shared with its liveness monitor). */
  readonly heartbeats: HeartbeatTable;
  /** Off the leader: relays agents' heartbeats to it in batches (absent: NOT_LEADER, forwarded). */
  readonly relay?: HeartbeatRelay;
  readonly workerDeadAfterMs: number;
  /**
   * True if `nodeId` is a server (a Raft member): its agent runs in its own process, so an
   * agent-only worker with that id is refused (two agents for one worker would fight).
   */
  readonly isServer: (nodeId: NodeId) => boolean;
  /** Poll limits (tests lower them). */
  readonly limits?: Omit<AssignmentWaitersOptions, "clock">;
}

/** See the module comment. */
export class AgentHub implements AgentProtocol {
  readonly #options: AgentHubOptions;
  readonly #changes = new AssignmentChanges();
  readonly #waiters: AssignmentWaiters;
  #seq: number;
  #epoch: number;
  #unsubscribe: (() => void) | undefined;

  constructor(options: AgentHubOptions) {
    this.#options = options;
    this.#waiters = new AssignmentWaiters({ clock: options.clock, ...options.limits });
    this.#seq = options.feed.nextSeq;
    this.#epoch = options.feed.epoch;
    this.#changes.reset(options.feed.lastIndex, options.queries);
    this.#unsubscribe = options.feed.subscribe(() => this.#catchUp());
  }

  async assignments(
    nodeId: NodeId,
    after: number,
    waitMs: number,
    signal?: AbortSignal,
  ): Promise<AgentAssignments> {
    this.#refuseServer(nodeId);
    this.#catchUp();
    if (!this.#changes.changedAfter(nodeId, after) && waitMs > 0) {
      await this.#waiters.wait(nodeId, waitMs, signal);
    }
    const answer = this.#answer(nodeId);
    // Still behind what the agent has seen after the wait (a removed member whose process runs
    // on never applies again): refuse, so the agent asks another server instead of this one for
    // ever (its link moves on after UNAVAILABLE).
    if (answer.index < after) {
      throw new UnavailableError(
        `this server has applied up to index ${answer.index}, behind the ${after} the agent has ` +
          "seen; ask another server",
      );
    }
    return answer;
  }

  disks(nodeId: NodeId, names: readonly string[]): DiskVerdictsAnswer {
    this.#refuseServer(nodeId);
    const { queries } = this.#options;
    return {
      disks: names.map((name) => ({ name, verdict: diskVerdict(queries.vm(name), nodeId) })),
    };
  }

  heartbeat(nodeId: NodeId): Promise<HeartbeatAck> {
    const { leadership, heartbeats, clock, relay } = this.#options;
    try {
      this.#refuseServer(nodeId);
      if (!leadership.isLeader()) {
        if (relay === undefined) throw new NotLeaderError(leadership.leaderHint());
        return relay.submit(nodeId);
      }
    } catch (error) {
      return Promise.reject(error as Error);
    }
    heartbeats.record(nodeId, clock.now());
    return Promise.resolve(this.#ack());
  }

  relayed(nodeIds: readonly NodeId[]): HeartbeatAck {
    const { leadership, heartbeats, clock } = this.#options;
    if (!leadership.isLeader()) throw new NotLeaderError(leadership.leaderHint());
    const nowMs = clock.now();
    for (const nodeId of nodeIds) heartbeats.record(nodeId, nowMs);
    return this.#ack();
  }

  #ack(): HeartbeatAck {
    return {
      leaderId: this.#options.leadership.nodeId,
      workerDeadAfterMs: this.#options.workerDeadAfterMs,
    };
  }

  #refuseServer(nodeId: NodeId): void {
    if (this.#options.isServer(nodeId)) {
      throw new ConflictError(
        `node ${nodeId} is a server of this cluster: its own process runs its agent. ` +
          "Give an agent-only worker an id no server has (and a node certificate for it)",
      );
    }
  }

  /** Polls waiting now (for metrics and tests). */
  get waitingPolls(): number {
    return this.#waiters.waiting();
  }

  /** Ends every waiting poll and stops following the feed. */
  close(): void {
    this.#unsubscribe?.();
    this.#unsubscribe = undefined;
    this.#waiters.close();
    this.#options.relay?.close();
  }

  /** The answer as the model stands now (read synchronously: one consistent index). */
  #answer(nodeId: NodeId): AgentAssignments {
    this.#catchUp();
    const { queries, feed } = this.#options;
    const { tasks, vms } = queries.assignments(nodeId);
    return { index: feed.lastIndex, worker: queries.worker(nodeId) ?? null, tasks, vms };
  }

  /** Reads the feed's new records, waking the polls of the nodes they touched. Throws nothing. */
  #catchUp(): void {
    const { feed, queries } = this.#options;
    for (;;) {
      let record;
      try {
        record = feed.read(this.#seq, this.#epoch);
      } catch (error) {
        if (!(error instanceof GoneError)) throw error;
        // A snapshot replaced the state, or the feed dropped records before they were read:
        // start over from the model as it stands, and let every poll look again.
        this.#seq = feed.nextSeq;
        this.#epoch = feed.epoch;
        this.#changes.reset(feed.lastIndex, queries);
        this.#waiters.wakeAll();
        return;
      }
      if (record === undefined) return;
      this.#seq++;
      const touched = this.#changes.ingest(record);
      if (touched.size > 0) this.#waiters.wake(touched);
    }
  }
}
