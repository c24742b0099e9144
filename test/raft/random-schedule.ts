import { coreOf } from "../../src/raft/testing.js";
/**
 * A randomized fault-injecting driver of a {@link TestCluster}: it runs a list of actions (made
 * by fast-check, so failing schedules shrink) with finer control than `stabilize` — ticking one
 * node, delivering part of the network queue in random order, dropping and duplicating
 * messages, partitioning, crashing and restarting nodes, proposing, reading, transferring
 * leadership and compacting logs — and has the {@link SafetyChecker} observe the cluster after
 * every action. {@link ScheduleDriver.liveness} then heals everything and checks that the
 * cluster recovers.
 *
 * Everything is deterministic given the action list and the cluster seed: a failing run replays.
 */
import fc from "fast-check";
import {
  ConflictError,
  NotLeaderError,
  OverloadedError,
  UnavailableError,
} from "../../src/common/errors.js";
import { SeededRandom } from "../../src/common/random.js";
import type { RaftConfig } from "../../src/raft/config.js";
import { decodeConfChange } from "../../src/raft/conf-change-codec.js";
import {
  canSendBeforePersist,
  RawNode,
  type Ready,
  type SnapshotOutcome,
} from "../../src/raft/rawnode.js";
import { EntryType, MessageType, NONE, type Message, type NodeId } from "../../src/raft/types.js";
import { bytes, TestCluster, text } from "./cluster.js";
import { encodeAppState, SafetyChecker } from "./safety.js";

/** One step of a schedule. Node numbers are taken modulo the cluster size (ids are 1..n). */
export type Action =
  /** Ticks one node `count` times. */
  | { readonly t: "tick"; readonly node: number; readonly count: number }
  /** Ticks every up node once. */
  | { readonly t: "tickAll" }
  /**
   * If `ready`, processes every Ready first; then delivers a random part of the queue in random
   * order (the rest waits: reordering across steps), dropping and duplicating some messages.
   */
  | { readonly t: "deliver"; readonly seed: number; readonly ready: boolean }
  /** Delivers the message at `pos` (modulo the queue length) alone. */
  | { readonly t: "deliverOne"; readonly pos: number }
  /** Loses the message at `pos`. */
  | { readonly t: "drop"; readonly pos: number }
  /** Queues a second copy of the message at `pos`. */
  | { readonly t: "duplicate"; readonly pos: number }
  /** Processes one node's Ready (persist, send, apply, advance). */
  | { readonly t: "ready"; readonly node: number }
  /** Processes every up node's Ready once. */
  | { readonly t: "readyAll" }
  /**
   * Starts handling one node's Ready and stops half-way: the messages that may go out before
   * persisting (a leader's appends, heartbeats, snapshots) are sent, nothing is persisted yet.
   * The node may step messages meanwhile; its next `ready` finishes the job, a crash loses it.
   */
  | { readonly t: "readyBegin"; readonly node: number }
  /**
   * Makes a node's disk slow (or fast again). A slow node's Readies are only begun (early
   * messages sent) by `ready` steps; a `persist` step completes them.
   */
  | { readonly t: "disk"; readonly node: number; readonly slow: boolean }
  /** Completes the Ready a (slow) node has begun: persists, sends the rest, applies, advances. */
  | { readonly t: "persist"; readonly node: number }
  /** Splits the nodes into random groups that cannot talk to each other. */
  | { readonly t: "partition"; readonly seed: number }
  /** Cuts one node off from everyone. */
  | { readonly t: "isolate"; readonly node: number }
  /** Heals every partition. */
  | { readonly t: "heal" }
  /** Crashes a node: it keeps only what it persisted. */
  | { readonly t: "crash"; readonly node: number }
  /** Restarts one of the crashed nodes from its storage. */
  | { readonly t: "restart"; readonly node: number }
  /** Proposes a new command at a node. */
  | { readonly t: "propose"; readonly node: number; readonly count: number }
  /** Issues a linearizable read at a node. */
  | { readonly t: "read"; readonly node: number }
  /** Asks a node to start an election now. */
  | { readonly t: "campaign"; readonly node: number }
  /** Asks (via a node) for leadership to move to `to`. */
  | { readonly t: "transfer"; readonly node: number; readonly to: number }
  /** Snapshots a node's state at its applied index and compacts its log, keeping `keep` entries. */
  | { readonly t: "compact"; readonly node: number; readonly keep: number };

/** Which faults a schedule may contain, as relative weights of the actions (0 = never). */
export interface FaultProfile {
  readonly tick: number;
  readonly deliver: number;
  readonly ready: number;
  /** Slow disks: Readies sent before they are persisted. */
  readonly disk: number;
  readonly propose: number;
  readonly drop: number;
  readonly duplicate: number;
  readonly partition: number;
  readonly campaign: number;
  readonly transfer: number;
  readonly crash: number;
  readonly compact: number;
  readonly read: number;
}

/**
 * Network faults (loss, duplication, reordering, partitions), slow disks (a leader's appends
 * sent before it persisted them), elections forced and leadership transfers; no crashes.
 */
export const NETWORK_FAULTS: FaultProfile = {
  tick: 30,
  deliver: 30,
  ready: 12,
  disk: 3,
  propose: 15,
  drop: 3,
  duplicate: 3,
  partition: 3,
  campaign: 1,
  transfer: 1,
  crash: 0,
  compact: 0,
  read: 0,
};

/** Every fault, including crashes, restarts and log compaction (so snapshots are sent). */
export const ALL_FAULTS: FaultProfile = {
  ...NETWORK_FAULTS,
  crash: 4,
  compact: 4,
};

/** Every fault plus linearizable reads. */
export const ALL_FAULTS_WITH_READS: FaultProfile = { ...ALL_FAULTS, read: 6 };

const node = fc.nat({ max: 4 });

/** A generated schedule: the mix of faults it was drawn from, and its steps. */
export interface Schedule {
  readonly profile: FaultProfile;
  readonly actions: readonly Action[];
}

/**
 * Schedules drawn by swarm testing: each run first scales every fault of `base` by a random
 * factor (often 0: the fault is switched off for that run), then draws its steps from that mix.
 * Runs thus differ in kind (crash-heavy, partition-heavy, proposal-heavy...), which reaches
 * deeper interleavings than one fixed mix. Ticks, deliveries and Readies always stay on.
 */
export function scheduleArbitrary(
  base: FaultProfile,
  length: { readonly min: number; readonly max: number },
): fc.Arbitrary<Schedule> {
  const factor = fc.constantFrom(1, 0, 0.5, 2, 4);
  const scaled = (weight: number): fc.Arbitrary<number> =>
    weight === 0 ? fc.constant(0) : factor.map((f) => weight * f);
  const profile: fc.Arbitrary<FaultProfile> = fc.record({
    tick: fc.constant(base.tick),
    deliver: fc.constant(base.deliver),
    ready: fc.constant(base.ready),
    disk: scaled(base.disk),
    propose: scaled(base.propose),
    drop: scaled(base.drop),
    duplicate: scaled(base.duplicate),
    partition: scaled(base.partition),
    campaign: scaled(base.campaign),
    transfer: scaled(base.transfer),
    crash: scaled(base.crash),
    compact: scaled(base.compact),
    read: scaled(base.read),
  });
  return profile.chain((p) =>
    fc
      .array(actionArbitrary(p), { minLength: length.min, maxLength: length.max, size: "max" })
      .map((actions) => ({ profile: p, actions })),
  );
}

/** An arbitrary schedule step, weighted by `profile`. */
export function actionArbitrary(profile: FaultProfile): fc.Arbitrary<Action> {
  const weighted: { arbitrary: fc.Arbitrary<Action>; weight: number }[] = [];
  const add = (weight: number, arbitrary: fc.Arbitrary<Action>): void => {
    const w = Math.round(weight * 20);
    if (w > 0) weighted.push({ arbitrary, weight: w });
  };
  add(
    (profile.tick * 3) / 4,
    fc.record({ t: fc.constant("tick" as const), node, count: fc.integer({ min: 1, max: 3 }) }),
  );
  add(profile.tick / 4, fc.constant({ t: "tickAll" as const }));
  add(
    (profile.deliver * 3) / 4,
    fc.record({
      t: fc.constant("deliver" as const),
      seed: fc.nat(),
      ready: fc.oneof(
        { arbitrary: fc.constant(true), weight: 3 },
        { arbitrary: fc.constant(false), weight: 1 },
      ),
    }),
  );
  add(profile.deliver / 4, fc.record({ t: fc.constant("deliverOne" as const), pos: fc.nat(63) }));
  add((profile.ready * 3) / 8, fc.record({ t: fc.constant("ready" as const), node }));
  add((profile.ready * 3) / 8, fc.constant({ t: "readyAll" as const }));
  add(profile.ready / 4, fc.record({ t: fc.constant("readyBegin" as const), node }));
  add(profile.disk / 3, fc.record({ t: fc.constant("disk" as const), node, slow: fc.boolean() }));
  add((profile.disk * 2) / 3, fc.record({ t: fc.constant("persist" as const), node }));
  add(
    profile.propose,
    fc.record({
      t: fc.constant("propose" as const),
      node,
      count: fc.oneof(
        { arbitrary: fc.constant(1), weight: 3 },
        { arbitrary: fc.integer({ min: 2, max: 4 }), weight: 1 },
      ),
    }),
  );
  add(profile.drop, fc.record({ t: fc.constant("drop" as const), pos: fc.nat(63) }));
  add(profile.duplicate, fc.record({ t: fc.constant("duplicate" as const), pos: fc.nat(63) }));
  add(profile.partition / 4, fc.record({ t: fc.constant("partition" as const), seed: fc.nat() }));
  add(profile.partition / 4, fc.record({ t: fc.constant("isolate" as const), node }));
  add(profile.partition / 2, fc.constant({ t: "heal" as const }));
  add(profile.campaign, fc.record({ t: fc.constant("campaign" as const), node }));
  add(profile.transfer, fc.record({ t: fc.constant("transfer" as const), node, to: node }));
  // Restarts (no-ops while every node is up) outweigh crashes, so nodes are not down for long.
  add(profile.crash / 3, fc.record({ t: fc.constant("crash" as const), node }));
  add((profile.crash * 2) / 3, fc.record({ t: fc.constant("restart" as const), node }));
  add(
    profile.compact,
    fc.record({ t: fc.constant("compact" as const), node, keep: fc.integer({ min: 0, max: 3 }) }),
  );
  add(profile.read, fc.record({ t: fc.constant("read" as const), node }));
  return fc.oneof(...weighted);
}

/** How to build the cluster a schedule runs on. */
export interface ScheduleOptions {
  /** Cluster size, 3 to 5; ids are 1..nodes. */
  readonly nodes: number;
  /** Seed of the nodes' election jitter. */
  readonly seed: number;
  /** Raft options for every node. */
  readonly config?: Partial<Omit<RaftConfig, "id" | "storage" | "random">>;
  /** Probability that a message a `deliver` step picks is lost. Default 0.05. */
  readonly dropRate?: number;
  /** Probability that a message a `deliver` step picks is also kept for a later delivery. Default 0.05. */
  readonly duplicateRate?: number;
  /** Probability that a `deliver` step leaves a message for later. Default 0.3. */
  readonly holdRate?: number;
  /** Check that safe reads are linearizable (only for ReadOnlyOption.Safe). */
  readonly checkReads?: boolean;
  /** Observe after every message delivered, not only after every action (slower). */
  readonly observeEveryMessage?: boolean;
  /** Elect this node before the schedule starts (undefined: start with no leader). */
  readonly initialLeader?: NodeId | undefined;
}

/** What a run did, to tune the schedules (a run that elects nobody checks little). */
export interface ScheduleStats {
  actions: number;
  delivered: number;
  dropped: number;
  duplicated: number;
  proposed: number;
  accepted: number;
  reads: number;
  crashes: number;
  restarts: number;
  compactions: number;
  snapshotsSent: number;
  transfers: number;
  maxTerm: number;
  maxCommitted: number;
  livenessRounds: number;
  /** Actions after which some up node was leader. */
  withLeader: number;
  /** Sum over actions of the number of crashed nodes. */
  downNodes: number;
}

/** The errors a proposal, read or transfer may legitimately fail with. */
function isExpectedRefusal(error: unknown): boolean {
  return (
    error instanceof NotLeaderError ||
    error instanceof UnavailableError ||
    error instanceof OverloadedError ||
    error instanceof ConflictError
  );
}

/** Runs schedules on one cluster, checking safety after every step. */
export class ScheduleDriver {
  readonly cluster: TestCluster;
  readonly checker: SafetyChecker;
  readonly ids: readonly NodeId[];
  readonly stats: ScheduleStats = {
    actions: 0,
    delivered: 0,
    dropped: 0,
    duplicated: 0,
    proposed: 0,
    accepted: 0,
    reads: 0,
    crashes: 0,
    restarts: 0,
    compactions: 0,
    snapshotsSent: 0,
    transfers: 0,
    maxTerm: 0,
    maxCommitted: 0,
    livenessRounds: 0,
    withLeader: 0,
    downNodes: 0,
  };
  private readonly dropRate: number;
  private readonly duplicateRate: number;
  private readonly holdRate: number;
  private readonly observeEveryMessage: boolean;
  private commands = 0;
  private readCount = 0;
  /** Random choices not made by the schedule (which messages report Unreachable). */
  private readonly random: SeededRandom;
  private step = "start";
  /** Nodes whose Readies are persisted only by `persist` steps. */
  private readonly slowDisks = new Set<NodeId>();
  /** Readies begun (sent early) and not yet persisted, by node. */
  private readonly pending = new Map<NodeId, { raw: RawNode; rd: Ready; later: Message[] }>();
  private readonly seed: number;
  private readonly config: Partial<Omit<RaftConfig, "id" | "storage" | "random">>;

  constructor(options: ScheduleOptions) {
    this.ids = Array.from({ length: options.nodes }, (_, i) => i + 1);
    this.seed = options.seed;
    this.config = options.config ?? {};
    this.cluster = new TestCluster({
      voters: this.ids,
      seed: options.seed,
      ...(options.config === undefined ? {} : { config: options.config }),
    });
    this.checker = new SafetyChecker(this.cluster, { checkReads: options.checkReads ?? false });
    this.dropRate = options.dropRate ?? 0.05;
    this.duplicateRate = options.duplicateRate ?? 0.05;
    this.holdRate = options.holdRate ?? 0.3;
    this.observeEveryMessage = options.observeEveryMessage ?? false;
    this.random = new SeededRandom(options.seed ^ 0x5f3759df);
    if (options.initialLeader !== undefined) {
      this.cluster.elect(options.initialLeader);
      this.checker.observe("the initial election");
    }
  }

  /** Runs `actions`, observing after each one. */
  run(actions: readonly Action[]): void {
    for (let i = 0; i < actions.length; i++) {
      const action = actions[i] as Action;
      this.step = `action #${i} ${JSON.stringify(action)}`;
      this.apply(action);
      this.stats.actions++;
      this.checker.observe(this.step);
      if (this.cluster.leader() !== NONE) this.stats.withLeader++;
      for (const n of this.cluster.nodes.values()) if (!n.up) this.stats.downNodes++;
    }
    this.updateStats();
  }

  /** The id a schedule's node number designates. */
  private id(n: number): NodeId {
    return this.ids[n % this.ids.length] as NodeId;
  }

  /** Applies one action. */
  apply(action: Action): void {
    const c = this.cluster;
    switch (action.t) {
      case "tick":
        c.tick(this.id(action.node), action.count);
        return;
      case "tickAll":
        c.tick(undefined);
        return;
      case "deliver":
        if (action.ready) this.readyAll();
        this.deliverSome(action.seed);
        return;
      case "deliverOne": {
        const m = this.takeAt(action.pos);
        if (m !== undefined) this.deliverMessage(m);
        return;
      }
      case "drop": {
        const m = this.takeAt(action.pos);
        if (m !== undefined) this.lose(m);
        return;
      }
      case "duplicate": {
        if (c.queue.length === 0) return;
        c.queue.push(c.queue[action.pos % c.queue.length] as Message);
        this.stats.duplicated++;
        return;
      }
      case "ready":
        this.processReady(this.id(action.node));
        return;
      case "readyAll":
        this.readyAll();
        return;
      case "readyBegin":
        this.beginReady(this.id(action.node));
        return;
      case "disk":
        if (action.slow) this.slowDisks.add(this.id(action.node));
        else this.slowDisks.delete(this.id(action.node));
        return;
      case "persist":
        if (this.pending.has(this.id(action.node))) this.finishReady(this.id(action.node));
        return;
      case "partition":
        this.partition(action.seed);
        return;
      case "isolate":
        c.isolate(this.id(action.node));
        return;
      case "heal":
        c.heal();
        return;
      case "crash":
        this.crash(this.id(action.node));
        return;
      case "restart": {
        const down = this.ids.filter((id) => !c.node(id).up);
        if (down.length > 0) this.restart(down[action.node % down.length] as NodeId);
        return;
      }
      case "propose":
        this.propose(this.id(action.node), action.count);
        return;
      case "read":
        this.read(this.id(action.node));
        return;
      case "campaign": {
        const n = c.node(this.id(action.node));
        if (n.up) n.raw.campaign();
        return;
      }
      case "transfer":
        this.transfer(this.id(action.node), this.id(action.to));
        return;
      case "compact":
        this.compact(this.id(action.node), action.keep);
        return;
    }
  }

  private takeAt(pos: number): Message | undefined {
    const q = this.cluster.queue;
    if (q.length === 0) return undefined;
    const [m] = q.splice(pos % q.length, 1);
    return m;
  }

  /** Delivers a random subset of the queue in random order; the rest stays queued. */
  private deliverSome(seed: number): void {
    const rnd = new SeededRandom(seed);
    const batch = this.cluster.queue;
    this.cluster.queue = [];
    for (let i = batch.length - 1; i > 0; i--) {
      const j = rnd.int(i + 1);
      const tmp = batch[i] as Message;
      batch[i] = batch[j] as Message;
      batch[j] = tmp;
    }
    const held: Message[] = [];
    for (const m of batch) {
      if (rnd.float() < this.holdRate) {
        held.push(m);
        continue;
      }
      if (rnd.float() < this.dropRate) {
        this.lose(m);
        continue;
      }
      if (rnd.float() < this.duplicateRate) {
        held.push(m);
        this.stats.duplicated++;
      }
      this.deliverMessage(m);
    }
    // Messages sent while delivering (none: sending happens at processReady) go after the held.
    this.cluster.queue = held.concat(this.cluster.queue);
  }

  /**
   * Delivers one message through the cluster's filters, and tells a snapshot's sender how the
   * send went, as a transport must (etcd ReportSnapshot): without it the leader would wait for
   * a lost snapshot forever.
   */
  private deliverMessage(m: Message): void {
    const target = this.cluster.nodes.get(m.to);
    const lost = target === undefined || !target.up || this.cluster.dropIf(m);
    if (lost) {
      this.lose(m);
      return;
    }
    this.cluster.deliver(m);
    this.stats.delivered++;
    if (m.type === MessageType.Snap) {
      this.stats.snapshotsSent++;
      this.reportSnapshot(m, "finish");
    }
    if (this.observeEveryMessage) this.checker.observe(`${this.step}, delivering ${describe(m)}`);
  }

  /** A message is lost; the transport reports failed snapshots and (sometimes) unreachable peers. */
  private lose(m: Message): void {
    this.stats.dropped++;
    if (m.type === MessageType.Snap) {
      this.reportSnapshot(m, "failure");
    } else if (m.type === MessageType.App && this.random.float() < 0.5) {
      const sender = this.cluster.nodes.get(m.from);
      if (sender?.up === true) sender.raw.reportUnreachable(m.to);
    }
  }

  private reportSnapshot(m: Message, outcome: SnapshotOutcome): void {
    const sender = this.cluster.nodes.get(m.from);
    if (sender?.up === true) sender.raw.reportSnapshot(m.to, outcome);
  }

  private readyAll(): void {
    for (const id of this.ids) this.processReady(id);
  }

  /**
   * Handles a node's Ready (TestCluster.processReady, split in two so that a node can step
   * messages, or crash, between sending and persisting). Finishes a Ready begun earlier, else
   * handles a new one at once. False if there was nothing to do.
   */
  processReady(id: NodeId): boolean {
    if (this.slowDisks.has(id)) return this.beginReady(id);
    if (this.pending.has(id)) {
      this.finishReady(id);
      return true;
    }
    if (!this.beginReady(id)) return false;
    this.finishReady(id);
    return true;
  }

  /** Takes a node's Ready and sends what may be sent before persisting. */
  private beginReady(id: NodeId): boolean {
    const node = this.cluster.node(id);
    if (!node.up || this.pending.has(id) || !node.raw.hasReady()) return false;
    const rd = node.raw.ready();
    const later: Message[] = [];
    for (const m of rd.messages) {
      if (canSendBeforePersist(m)) this.cluster.queue.push(m);
      else later.push(m);
    }
    this.pending.set(id, { raw: node.raw, rd, later });
    return true;
  }

  /** Persists the begun Ready, sends the rest of its messages, applies, advances. */
  private finishReady(id: NodeId): void {
    const node = this.cluster.node(id);
    const pending = this.pending.get(id);
    this.pending.delete(id);
    if (pending === undefined || pending.raw !== node.raw || !node.up) return;
    const { rd, later } = pending;
    if (rd.snapshot !== undefined) {
      node.storage.applySnapshot(rd.snapshot);
      node.appliedIndex = rd.snapshot.metadata.index;
    }
    if (rd.entries.length > 0) node.storage.append(rd.entries);
    if (rd.hardState !== undefined) node.storage.setHardState(rd.hardState);
    for (const m of later) this.cluster.queue.push(m);
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
  }

  /** Assigns every node to one of two or three groups; messages cross no group boundary. */
  private partition(seed: number): void {
    const rnd = new SeededRandom(seed);
    const groupCount = 2 + rnd.int(2);
    const group = new Map<NodeId, number>();
    for (const id of this.ids) group.set(id, rnd.int(groupCount));
    this.cluster.dropIf = (m) => group.get(m.from) !== group.get(m.to);
  }

  private crash(id: NodeId): void {
    const node = this.cluster.node(id);
    if (!node.up) return;
    // A Ready being handled is lost: what it had not persisted never reaches storage, but the
    // messages it sent early (a leader's appends) may still arrive.
    this.pending.delete(id);
    // TestCluster.crash also drops every message to and from the node; here they stay in the
    // network, as on a real one: what it sent may arrive after it crashed (or restarted), what
    // was sent to it is lost if delivered while it is down (or reaches the restarted node).
    const inFlight = this.cluster.queue;
    this.cluster.crash(id);
    this.cluster.queue = inFlight;
    this.stats.crashes++;
  }

  /**
   * Restarts a crashed node from its storage. Like a real application it tells raft what its
   * state machine (restored from the snapshot) has applied: TestCluster.restart passes
   * `applied: 0`, which is right only when the log was compacted exactly at the snapshot; this
   * driver compacts behind it (`keep`), so the node would re-apply entries its snapshot holds.
   */
  private restart(id: NodeId): void {
    this.cluster.restart(id);
    const node = this.cluster.node(id);
    const applied = node.storage.snapshot().metadata.index;
    if (applied !== coreOf(node.raw).raftLog.applied) {
      node.raw = new RawNode({
        ...this.config,
        id,
        storage: node.storage,
        random: new SeededRandom(this.seed * 1000 + id),
        applied,
      });
    }
    this.stats.restarts++;
  }

  /**
   * Proposes `count` fresh commands in one batch; refusals (no leader, transfer, overload) are
   * part of the game. Returns the last command if the proposal was taken (or forwarded).
   */
  propose(id: NodeId, count = 1): string | undefined {
    const node = this.cluster.node(id);
    if (!node.up) return undefined;
    const commands: string[] = [];
    for (let i = 0; i < count; i++) commands.push(`c${++this.commands}`);
    this.stats.proposed++;
    try {
      node.raw.propose(...commands.map(bytes));
      this.stats.accepted++;
      return commands[commands.length - 1];
    } catch (error) {
      if (isExpectedRefusal(error)) return undefined;
      throw error;
    }
  }

  private read(id: NodeId): void {
    const node = this.cluster.node(id);
    if (!node.up) return;
    const context = bytes(`r${++this.readCount}`);
    this.checker.noteReadIssued(context);
    this.stats.reads++;
    try {
      node.raw.readIndex(context);
    } catch (error) {
      if (!isExpectedRefusal(error)) throw error;
    }
  }

  private transfer(via: NodeId, to: NodeId): void {
    const node = this.cluster.node(via);
    if (!node.up) return;
    this.stats.transfers++;
    try {
      node.raw.transferLeader(to);
    } catch (error) {
      if (!isExpectedRefusal(error)) throw error;
    }
  }

  /**
   * What an application does to bound its log: snapshot the state machine at the applied index
   * (with the configuration in force) and discard the log before it, keeping `keep` entries for
   * slow followers. Followers too far behind then need the snapshot.
   */
  private compact(id: NodeId, keep: number): void {
    const node = this.cluster.node(id);
    if (!node.up) return;
    const applied = node.appliedIndex;
    const storage = node.storage;
    if (applied <= storage.snapshot().metadata.index) return;
    const state = this.checker.appState(id);
    storage.createSnapshot(applied, coreOf(node.raw).trk.confState(), encodeAppState(state));
    const compactTo = applied - keep;
    if (compactTo >= storage.firstIndex()) {
      storage.compact(compactTo);
      this.stats.compactions++;
    }
  }

  /** Processes Readies and delivers (in order) until the cluster is quiet. */
  stabilize(maxRounds = 2_000): void {
    for (let round = 0; round < maxRounds; round++) {
      let progressed = false;
      for (const id of this.ids) if (this.processReady(id)) progressed = true;
      const batch = this.cluster.queue;
      this.cluster.queue = [];
      for (const m of batch) this.deliverMessage(m);
      if (!progressed && batch.length === 0) return;
      this.checker.observe(this.step);
    }
    throw new Error(`cluster did not stabilize after ${maxRounds} rounds (${this.step})`);
  }

  /**
   * Liveness after the faults stop: heal the network, restart crashed nodes, then tick and
   * stabilize for at most `maxRounds` rounds. Within them there must be a single leader that
   * every node follows, and a fresh proposal must commit and be applied everywhere, leaving
   * every node with the same applied state.
   * @throws Error describing the cluster if it does not recover.
   */
  liveness(maxRounds = 300): void {
    const c = this.cluster;
    c.heal();
    this.slowDisks.clear();
    for (const id of this.ids) if (!c.node(id).up) this.restart(id);
    let finalCommand: string | undefined;
    let proposedAtRound = -1;
    for (let round = 0; round < maxRounds; round++) {
      this.step = `liveness round ${round}`;
      this.stats.livenessRounds = round + 1;
      c.tick(undefined);
      this.stabilize();
      this.checker.observe(this.step);
      const leader = this.soleLeader();
      if (leader === NONE) continue;
      if (finalCommand !== undefined && this.converged(finalCommand)) {
        this.updateStats();
        return;
      }
      // (Re)propose when nothing was accepted yet or the last proposal seems lost.
      if (finalCommand === undefined || round - proposedAtRound > 40) {
        const command = this.propose(leader);
        if (command !== undefined) {
          finalCommand = command;
          proposedAtRound = round;
          this.stabilize();
          this.checker.observe(this.step);
          if (this.soleLeader() !== NONE && this.converged(finalCommand)) {
            this.updateStats();
            return;
          }
        }
      }
    }
    throw new Error(
      `liveness: no single leader with the final proposal ${String(finalCommand)} applied everywhere ` +
        `after ${maxRounds} rounds of ticks and stabilization\n${this.describeCluster()}`,
    );
  }

  /** The one leader every node follows in the same term, or NONE. */
  private soleLeader(): NodeId {
    let leader: NodeId = NONE;
    for (const id of this.ids) {
      const r = this.cluster.raft(id);
      if (r.role === "leader") {
        if (leader !== NONE) return NONE;
        leader = id;
      }
    }
    if (leader === NONE) return NONE;
    const term = this.cluster.raft(leader).term;
    for (const id of this.ids) {
      const r = this.cluster.raft(id);
      if (r.lead !== leader || r.term !== term) return NONE;
    }
    return leader;
  }

  /** True if every node applied `command` and all reached the same applied state. */
  private converged(command: string): boolean {
    const first = this.checker.appState(this.ids[0] as NodeId);
    for (const id of this.ids) {
      const node = this.cluster.node(id);
      if (!node.applied.some((e) => text(e.data) === command)) return false;
      const state = this.checker.appState(id);
      if (
        state.index !== first.index ||
        state.count !== first.count ||
        state.digest !== first.digest
      ) {
        return false;
      }
    }
    return true;
  }

  private updateStats(): void {
    this.stats.maxTerm = Math.max(this.stats.maxTerm, this.checker.maxTerm());
    this.stats.maxCommitted = Math.max(this.stats.maxCommitted, this.checker.maxCommitted);
  }

  /** One line per node: role, term, indexes, log bounds. */
  describeCluster(): string {
    const lines: string[] = [];
    for (const id of this.ids) {
      const node = this.cluster.node(id);
      const s = node.raw.status();
      const log = coreOf(node.raw).raftLog;
      lines.push(
        `  node ${id}${node.up ? "" : " (down)"}: ${s.role} term=${s.term} lead=${s.leader} ` +
          `vote=${s.vote} commit=${s.commit} applied=${node.appliedIndex} ` +
          `log=[${log.firstIndex()},${log.lastIndex()}] snap=${node.storage.snapshot().metadata.index}` +
          (s.role === "leader"
            ? ` progress={${[...s.progress].map(([p, pr]) => `${p}:${pr.state} m=${pr.match} n=${pr.next}${pr.paused ? " paused" : ""}`).join(", ")}}`
            : ""),
      );
    }
    lines.push(`  queue: ${this.cluster.queue.length} messages`);
    return lines.join("\n");
  }
}

/** `MsgApp 1->2 t3 i5 [2 entries] c4`, for failure messages. */
export function describe(m: Message): string {
  const name = Object.entries(MessageType).find(([, v]) => v === m.type)?.[0] ?? String(m.type);
  return (
    `Msg${name} ${m.from}->${m.to} t${m.term} i${m.index} lt${m.logTerm}` +
    (m.entries.length > 0 ? ` [${m.entries.length} entries]` : "") +
    ` c${m.commit}${m.reject ? " reject" : ""}`
  );
}
