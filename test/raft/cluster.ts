import type { Raft } from "../../src/raft/raft.js";
import { coreOf } from "../../src/raft/testing.js";
import { SeededRandom } from "../../src/common/random.js";
import type { RaftConfig } from "../../src/raft/config.js";
import { decodeConfChange } from "../../src/raft/conf-change-codec.js";
import { RawNode, type Ready } from "../../src/raft/rawnode.js";
import { MemoryStorage } from "../../src/raft/storage.js";
import {
  EntryType,
  NONE,
  type ConfState,
  type Entry,
  type Message,
  type NodeId,
  type ReadState,
} from "../../src/raft/types.js";

/** One node of a {@link TestCluster}: the raft node, its storage and what it applied. */
export interface TestNode {
  readonly id: NodeId;
  raw: RawNode;
  storage: MemoryStorage;
  /** Normal entries with data, in apply order (the no-ops are skipped). */
  applied: Entry[];
  /** Index of the last applied entry (or snapshot). */
  appliedIndex: number;
  readStates: ReadState[];
  /** Conf states in the order they were applied. */
  confStates: ConfState[];
  /** False while crashed: it neither steps nor ticks. */
  up: boolean;
}

/** Options of a {@link TestCluster}. */
export interface TestClusterOptions {
  /** Voter ids of the initial configuration. */
  readonly voters: readonly NodeId[];
  /** Learner ids of the initial configuration. */
  readonly learners?: readonly NodeId[];
  /** Ids that start with an empty configuration (to be added later). */
  readonly extra?: readonly NodeId[];
  /** Seed of every node's election jitter. */
  readonly seed?: number;
  /** Config applied to every node (id, storage and random are set by the cluster). */
  readonly config?: Partial<Omit<RaftConfig, "id" | "storage" | "random">>;
}

const textEncoder = new TextEncoder();
const textDecoder = new TextDecoder();

/** Encodes a string command. */
export function bytes(text: string): Uint8Array {
  return textEncoder.encode(text);
}

/** Decodes a string command. */
export function text(data: Uint8Array): string {
  return textDecoder.decode(data);
}

/**
 * A cluster of raft nodes wired through an in-memory network, driven step by step (etcd's
 * `network` test helper). Each node persists its Ready into a MemoryStorage before its
 * messages enter the network, so the persist-before-send contract holds. Filters drop
 * messages to model partitions and loss.
 */
export class TestCluster {
  readonly nodes = new Map<NodeId, TestNode>();
  /** Messages sent and not yet delivered. */
  queue: Message[] = [];
  /** Returns true to drop a message. */
  dropIf: (m: Message) => boolean = () => false;
  /** Every message delivered, in order, when tracing is on. */
  trace: Message[] | undefined;
  private readonly options: TestClusterOptions;

  constructor(options: TestClusterOptions) {
    this.options = options;
    const all = [...options.voters, ...(options.learners ?? []), ...(options.extra ?? [])];
    for (const id of all) this.nodes.set(id, this.createNode(id, this.initialStorage(id)));
  }

  private initialStorage(id: NodeId): MemoryStorage {
    const inConfig = !(this.options.extra ?? []).includes(id);
    return new MemoryStorage(
      inConfig
        ? {
            confState: {
              voters: [...this.options.voters],
              learners: [...(this.options.learners ?? [])],
              votersOutgoing: [],
              learnersNext: [],
              autoLeave: false,
            },
          }
        : {},
    );
  }

  private createNode(id: NodeId, storage: MemoryStorage, applied = 0): TestNode {
    const raw = new RawNode({
      ...this.options.config,
      id,
      storage,
      random: new SeededRandom((this.options.seed ?? 1) * 1000 + id),
      applied,
    });
    return {
      id,
      raw,
      storage,
      applied: [],
      appliedIndex: applied,
      readStates: [],
      confStates: [],
      up: true,
    };
  }

  /** The node with `id`. */
  node(id: NodeId): TestNode {
    const node = this.nodes.get(id);
    if (node === undefined) throw new Error(`no node ${id}`);
    return node;
  }

  /** The raft state machine of `id`, for assertions. */
  raft(id: NodeId): Raft {
    return coreOf(this.node(id).raw);
  }

  /** Handles one node's Ready: persist, send, apply, advance. False if it had none. */
  processReady(id: NodeId): boolean {
    const node = this.node(id);
    if (!node.up || !node.raw.hasReady()) return false;
    const rd: Ready = node.raw.ready();
    if (rd.snapshot !== undefined) {
      node.storage.applySnapshot(rd.snapshot);
      node.appliedIndex = rd.snapshot.metadata.index;
    }
    if (rd.entries.length > 0) node.storage.append(rd.entries);
    if (rd.hardState !== undefined) node.storage.setHardState(rd.hardState);
    for (const m of rd.messages) this.queue.push(m);
    for (const entry of rd.committedEntries) {
      if (entry.type === EntryType.ConfChange) {
        node.confStates.push(node.raw.applyConfChange(decodeConfChange(entry.data)));
      } else if (entry.data.length > 0) {
        node.applied.push(entry);
      }
      node.appliedIndex = entry.index;
    }
    node.readStates.push(...rd.readStates);
    node.raw.advance();
    return true;
  }

  /** Delivers one message (if its target is up and no filter drops it). */
  deliver(m: Message): void {
    if (this.dropIf(m)) return;
    const target = this.nodes.get(m.to);
    if (target === undefined || !target.up) return;
    this.trace?.push(m);
    target.raw.step(m);
  }

  /**
   * Processes Readies and delivers messages until the cluster is quiet.
   * @returns the number of messages delivered.
   */
  stabilize(maxRounds = 10_000): number {
    let delivered = 0;
    for (let round = 0; round < maxRounds; round++) {
      let progressed = false;
      for (const id of this.nodes.keys()) if (this.processReady(id)) progressed = true;
      const batch = this.queue;
      this.queue = [];
      for (const m of batch) {
        this.deliver(m);
        delivered++;
      }
      if (!progressed && batch.length === 0) return delivered;
    }
    throw new Error("cluster did not stabilize");
  }

  /** Ticks `id` (or every up node) `count` times, processing nothing. */
  tick(id: NodeId | undefined, count = 1): void {
    for (let i = 0; i < count; i++) {
      for (const node of this.nodes.values()) {
        if (node.up && (id === undefined || node.id === id)) node.raw.tick();
      }
    }
  }

  /** Ticks every up node and stabilizes after each tick, `count` times. */
  tickAndStabilize(count: number): void {
    for (let i = 0; i < count; i++) {
      this.tick(undefined);
      this.stabilize();
    }
  }

  /** Makes `id` campaign and runs the election to completion. */
  elect(id: NodeId): void {
    this.node(id).raw.campaign();
    this.stabilize();
  }

  /** The current leader (a node in leader role in the highest term among up nodes), or NONE. */
  leader(): NodeId {
    let best: NodeId = NONE;
    let bestTerm = -1;
    for (const node of this.nodes.values()) {
      const r = coreOf(node.raw);
      if (node.up && r.role === "leader" && r.term > bestTerm) {
        best = node.id;
        bestTerm = r.term;
      }
    }
    return best;
  }

  /** Proposes a string command at `id` and stabilizes. */
  propose(id: NodeId, command: string): void {
    this.node(id).raw.propose(bytes(command));
    this.stabilize();
  }

  /** Drops every message between the two groups (both directions). */
  partition(groupA: readonly NodeId[], groupB: readonly NodeId[]): void {
    const a = new Set(groupA);
    const b = new Set(groupB);
    this.dropIf = (m) => (a.has(m.from) && b.has(m.to)) || (b.has(m.from) && a.has(m.to));
  }

  /** Isolates `id` from everyone. */
  isolate(id: NodeId): void {
    this.dropIf = (m) => m.from === id || m.to === id;
  }

  /** Heals every partition. */
  heal(): void {
    this.dropIf = () => false;
  }

  /**
   * Crashes `id`: it loses everything not in its storage (which, in this harness, holds
   * exactly what was persisted).
   */
  crash(id: NodeId): void {
    this.node(id).up = false;
    this.queue = this.queue.filter((m) => m.to !== id && m.from !== id);
  }

  /** Restarts a crashed node from its storage; it replays from its snapshot. */
  restart(id: NodeId): void {
    const old = this.node(id);
    const snapshotIndex = old.storage.snapshot().metadata.index;
    // The state machine comes back from the snapshot, so the node has applied up to its index,
    // even when the log keeps entries before it (a trailing window after compaction).
    const fresh = this.createNode(id, old.storage, snapshotIndex);
    this.nodes.set(id, fresh);
  }

  /** Adds a node with an empty configuration (it learns the config from the leader). */
  addEmptyNode(id: NodeId): TestNode {
    const node = this.createNode(id, new MemoryStorage());
    this.nodes.set(id, node);
    return node;
  }

  /** Data of the entries `id` applied, as strings. */
  appliedCommands(id: NodeId): string[] {
    return this.node(id).applied.map((e) => text(e.data));
  }

  /** Every entry in `id`'s log from its first index (storage plus unstable). */
  logEntries(id: NodeId): Entry[] {
    const log = this.raft(id).raftLog;
    const first = log.firstIndex();
    const last = log.lastIndex();
    if (last < first) return [];
    return log.slice(first, last + 1, Number.MAX_SAFE_INTEGER);
  }
}
