import type { Raft } from "../../src/raft/raft.js";
import { coreOf } from "../../src/raft/testing.js";
/**
 * Helpers shared by the scenario tests (paper-*.test.ts, prevote-checkquorum, flow-control,
 * snapshot): a network wrapper that records and filters messages, a lone node that is stepped
 * by hand, and election drivers. They only use TestCluster's public surface.
 */
import { SeededRandom } from "../../src/common/random.js";
import type { RaftConfig } from "../../src/raft/config.js";
import { RawNode } from "../../src/raft/rawnode.js";
import { MemoryStorage } from "../../src/raft/storage.js";
import {
  EntryType,
  message,
  MessageType,
  type Entry,
  type HardState,
  type Message,
  type NodeId,
} from "../../src/raft/types.js";
import { bytes, TestCluster, type TestClusterOptions } from "./cluster.js";

/** The election timeout every scenario uses (the config default). */
export const ELECTION_TICKS = 10;

/** Raft as the paper describes it: no pre-vote, no check-quorum (etcd's paper tests do the same). */
export const PAPER_CONFIG = Object.freeze({ preVote: false, checkQuorum: false });

type ClusterConfig = NonNullable<TestClusterOptions["config"]>;

/** A cluster running the paper's protocol (see {@link PAPER_CONFIG}), plus `options.config`. */
export function paperCluster(
  voters: readonly NodeId[],
  options: { readonly config?: ClusterConfig; readonly seed?: number } = {},
): TestCluster {
  return new TestCluster({
    voters,
    seed: options.seed ?? 1,
    config: { ...PAPER_CONFIG, ...options.config },
  });
}

/**
 * Owns a cluster's `dropIf`: records every message offered for delivery and drops those that
 * `block` matches. Use its partition helpers instead of the cluster's (which replace dropIf).
 */
export class Network {
  /** Every message offered for delivery, dropped or not, in order. */
  readonly offered: Message[] = [];
  /** Returns true to drop a message. */
  block: (m: Message) => boolean = () => false;

  constructor(readonly cluster: TestCluster) {
    cluster.dropIf = (m) => {
      this.offered.push(m);
      return this.block(m);
    };
  }

  /** Drops every message to or from `id`. */
  isolate(id: NodeId): void {
    this.block = (m) => m.from === id || m.to === id;
  }

  /** Drops every message between the two groups. */
  partition(groupA: readonly NodeId[], groupB: readonly NodeId[]): void {
    const a = new Set(groupA);
    const b = new Set(groupB);
    this.block = (m) => (a.has(m.from) && b.has(m.to)) || (b.has(m.from) && a.has(m.to));
  }

  /** Delivers everything again. */
  heal(): void {
    this.block = () => false;
  }

  /** The offered messages matching `predicate`. */
  messages(predicate: (m: Message) => boolean): Message[] {
    return this.offered.filter(predicate);
  }

  /** Forgets what was recorded so far. */
  clear(): void {
    this.offered.length = 0;
  }
}

/** Log entries with the given terms at indexes 1, 2, …; entry i carries `e<i>`. */
export function entriesWithTerms(terms: readonly number[], firstIndex = 1): Entry[] {
  return terms.map((term, i) => ({
    term,
    index: firstIndex + i,
    type: EntryType.Normal,
    data: bytes(`e${firstIndex + i}`),
  }));
}

/** What {@link seedLog} writes into a node's storage. */
export interface SeededLog {
  readonly id: NodeId;
  /** Terms of the entries (see {@link entriesWithTerms}). */
  readonly terms: readonly number[];
  /** The hard state's term. */
  readonly term: number;
  /** The hard state's vote. Default none. */
  readonly vote?: NodeId;
}

/**
 * Gives a node of `c` a durable log and hard state (commit 0), then restarts it from that
 * storage. Call before the node has any log of its own.
 */
export function seedLog(c: TestCluster, seeded: SeededLog): void {
  const storage = c.node(seeded.id).storage;
  storage.append(entriesWithTerms(seeded.terms));
  storage.setHardState({ term: seeded.term, vote: seeded.vote ?? 0, commit: 0 });
  c.restart(seeded.id);
}

/** Options of a {@link LoneNode}. */
export interface LoneNodeOptions {
  readonly id: NodeId;
  readonly voters: readonly NodeId[];
  /** Terms of the entries already in the durable log (index 1 first). */
  readonly logTerms?: readonly number[];
  /** The durable hard state. Default: term = last log term, no vote, commit 0. */
  readonly hardState?: Partial<HardState>;
  readonly config?: Partial<Omit<RaftConfig, "id" | "storage" | "random">>;
}

/**
 * One raft node outside any cluster, stepped by hand like etcd's paper tests do. Its Ready is
 * persisted into its MemoryStorage exactly as TestCluster does.
 */
export class LoneNode {
  readonly storage: MemoryStorage;
  raw: RawNode;
  private readonly options: LoneNodeOptions;

  constructor(options: LoneNodeOptions) {
    this.options = options;
    this.storage = new MemoryStorage({
      confState: {
        voters: [...options.voters],
        learners: [],
        votersOutgoing: [],
        learnersNext: [],
        autoLeave: false,
      },
    });
    const terms = options.logTerms ?? [];
    this.storage.append(entriesWithTerms(terms));
    this.storage.setHardState({
      term: terms[terms.length - 1] ?? 0,
      vote: 0,
      commit: 0,
      ...options.hardState,
    });
    this.raw = this.create();
  }

  private create(): RawNode {
    return new RawNode({
      ...this.options.config,
      id: this.options.id,
      storage: this.storage,
      random: new SeededRandom(this.options.id),
    });
  }

  /** The raft state machine. */
  get raft(): Raft {
    return coreOf(this.raw);
  }

  /** Handles the pending Ready (persist, advance) and returns its messages. */
  drain(): Message[] {
    if (!this.raw.hasReady()) return [];
    const rd = this.raw.ready();
    if (rd.snapshot !== undefined) this.storage.applySnapshot(rd.snapshot);
    if (rd.entries.length > 0) this.storage.append(rd.entries);
    if (rd.hardState !== undefined) this.storage.setHardState(rd.hardState);
    this.raw.advance();
    return [...rd.messages];
  }

  /** Steps `m` into the node and returns the messages it sends in answer. */
  step(fields: Partial<Message> & Pick<Message, "type" | "from">): Message[] {
    this.raw.step(message({ to: this.options.id, ...fields }));
    return this.drain();
  }

  /** Crashes and restarts the node from its storage (what was persisted survives). */
  restart(): void {
    this.raw = this.create();
  }

  /** Makes the node campaign; returns its vote requests. */
  campaign(): Message[] {
    this.raw.campaign();
    return this.drain();
  }

  /**
   * Makes the node leader of a new term: it campaigns and every other voter grants its vote.
   * @returns the messages it sends on becoming leader.
   */
  becomeLeader(): Message[] {
    const requests = this.campaign();
    let out: Message[] = [];
    for (const request of requests) {
      out = out.concat(
        this.step({
          type:
            request.type === MessageType.PreVote ? MessageType.PreVoteResp : MessageType.VoteResp,
          from: request.to,
          term: request.term,
        }),
      );
      if (this.raft.role === "leader") break;
      if (out.some((m) => m.type === MessageType.Vote)) {
        // The pre-vote was won; the real vote requests follow.
        return this.grantVotes(out);
      }
    }
    return out;
  }

  private grantVotes(requests: Message[]): Message[] {
    let out: Message[] = [];
    for (const request of requests) {
      if (request.type !== MessageType.Vote) continue;
      out = out.concat(
        this.step({ type: MessageType.VoteResp, from: request.to, term: request.term }),
      );
      if (this.raft.role === "leader") break;
    }
    return out;
  }

  /** The entries in the node's log, first index first. */
  logEntries(): Entry[] {
    const log = this.raft.raftLog;
    if (log.lastIndex() < log.firstIndex()) return [];
    return log.slice(log.firstIndex(), log.lastIndex() + 1, Number.MAX_SAFE_INTEGER);
  }

  /** The terms of the entries in the node's log, first index first. */
  logTerms(): number[] {
    return this.logEntries().map((e) => e.term);
  }
}

/**
 * Like TestCluster.stabilize, but calls `observe` after every Ready processed and every message
 * delivered, so a test can watch states that only exist in the middle of an exchange.
 */
export function stabilizeObserving(c: TestCluster, observe: () => void): void {
  for (let round = 0; round < MAX_STABILIZE_ROUNDS; round++) {
    let progressed = false;
    for (const id of c.nodes.keys()) {
      if (c.processReady(id)) {
        progressed = true;
        observe();
      }
    }
    const batch = c.queue;
    c.queue = [];
    for (const m of batch) {
      c.deliver(m);
      observe();
    }
    if (!progressed && batch.length === 0) return;
  }
  throw new Error("cluster did not stabilize");
}

/** Rounds of Ready processing and delivery before {@link stabilizeObserving} gives up. */
const MAX_STABILIZE_ROUNDS = 10_000;

/** Elections {@link campaignUntilLeader} runs before it gives up. */
const MAX_CAMPAIGN_ATTEMPTS = 5;

/**
 * Campaigns at `id` and runs each election to completion until `id` leads; a candidate whose
 * term is behind its voters' needs another try (a lost election only teaches it their term).
 * @throws Error if `id` did not win within {@link MAX_CAMPAIGN_ATTEMPTS} elections.
 */
export function campaignUntilLeader(c: TestCluster, id: NodeId): void {
  for (let i = 0; i < MAX_CAMPAIGN_ATTEMPTS; i++) {
    c.elect(id);
    if (c.raft(id).role === "leader") return;
  }
  throw new Error(`node ${id} did not win an election in ${MAX_CAMPAIGN_ATTEMPTS} attempts`);
}

/**
 * Ticks every up node and stabilizes, one tick at a time, until some up node leads (and, when
 * given, in a term above `aboveTerm`).
 * @returns the leader and the number of ticks it took.
 * @throws Error if no leader emerged within `maxTicks`.
 */
export function tickUntilLeader(
  c: TestCluster,
  options: { maxTicks?: number; aboveTerm?: number; onTick?: () => void } = {},
): { leader: NodeId; ticks: number } {
  const maxTicks = options.maxTicks ?? 20 * ELECTION_TICKS;
  for (let ticks = 1; ticks <= maxTicks; ticks++) {
    c.tickAndStabilize(1);
    options.onTick?.();
    const leader = c.leader();
    if (leader !== 0 && c.raft(leader).term > (options.aboveTerm ?? -1)) return { leader, ticks };
  }
  throw new Error(`no leader after ${maxTicks} ticks`);
}

/**
 * Processes the Ready of `id` (without delivering anything) and takes the messages it sent out
 * of the cluster's queue.
 */
export function takeMessagesFrom(c: TestCluster, id: NodeId): Message[] {
  c.processReady(id);
  const taken = c.queue.filter((m) => m.from === id);
  c.queue = c.queue.filter((m) => m.from !== id);
  return taken;
}

/** Delivers `m`, then takes what its recipient sends in answer (see {@link takeMessagesFrom}). */
export function deliverAndTakeAnswer(c: TestCluster, m: Message): Message[] {
  c.deliver(m);
  return takeMessagesFrom(c, m.to);
}

/** Message type by name, for readable assertions. */
export const MT = MessageType;

/** True for an append response that rejects. */
export function isAppendRejection(m: Message): boolean {
  return m.type === MessageType.AppResp && m.reject;
}
