/**
 * A simulated cluster: N nodes, each built by the same {@link composeNode} as a real node (the
 * cluster state machine under client sessions with its change feed and apply notifier, the real
 * {@link RaftNode}, the leader's lessor and the lease/txn service), on the simulator's clock,
 * network and disk. Nodes crash (the process is gone; the disk keeps what was durable), restart
 * (a new runtime and a new state machine built from the disk), pause and resume, and join or
 * leave the cluster.
 */
import type { CoordinationService } from "../api/coord-service.js";
import type { CoordinationWiring } from "../api/coordination-wiring.js";
import { composeNode } from "../api/node-composition.js";
import type { ChangeFeed } from "../api/events/change-feed.js";
import type { Random } from "../common/random.js";
import { StorageCorruptError, UnavailableError } from "../common/errors.js";
import type { RaftNode } from "../node/raft-node.js";
import { plantedRules, type PlantedBugs as CorePlantedBugs } from "../raft/planted-bugs.js";
import type { SafetyRules } from "../raft/rules.js";
import type { ConfState, NodeId } from "../raft/types.js";
import type { LogStore } from "../storage/log-store.js";
import type { OrchestratorQueries } from "../statemachine/orchestrator/queries.js";
import type { WalRecoveryReport } from "../storage/wal-log-store.js";
import { SimDisk, type DiskOptions } from "./disk.js";
import type { SimNetwork } from "./network.js";
import { between, fork } from "./rng.js";
import { SimClock, type Scheduler } from "./scheduler.js";
import { commandTimeMs } from "./commands.js";
import { ObservedStateMachine, type AppliedRecord, type SimResult } from "./state-machine.js";
import { WalDisk } from "./wal-disk.js";

/** Bugs planted on purpose, to prove the checkers catch them. All off by default. */
export interface PlantedBugs {
  /** The disk acknowledges a synced write before it is durable (every node). */
  readonly ackBeforeDurable?: boolean;
  /** This node's state machine applies a compare-and-set as a plain put. */
  readonly casIgnoresExpectedOnNode?: NodeId;
  /**
   * Every node's lessor keeps lease deadlines across leadership changes, i.e. expires leases on
   * the clock of a leadership it lost (see `Lessor`).
   */
  readonly keepLeaseDeadlinesAcrossTerms?: boolean;
  /** The network rewrites every rejected (pre-)vote response into a granted one. */
  readonly grantAllVotes?: boolean;
  /** Figure 8: every node's core commits entries of earlier terms by counting replicas. */
  readonly figure8?: boolean;
  /** Every node's core grants votes without the §5.4.1 up-to-date check. */
  readonly noUpToDateCheck?: boolean;
  /** Every node's core leaves its vote out of the hard state, so a restart forgets it. */
  readonly forgetVote?: boolean;
  /** With the WAL disk: every fdatasync is acknowledged but makes nothing durable. */
  readonly walSkipsDatasync?: boolean;
  /**
   * With the orchestrator: a task attempt an agent abandons (the model moved it away, or it ended
   * while the node was cut off) is reported killed to the agent, but its simulated process keeps
   * running to its natural end.
   */
  readonly leakAbandonedTasks?: boolean;
  /**
   * With the orchestrator: a VM an agent stops because it is no longer placed on its node is
   * reported stopped, but its simulated process keeps running.
   */
  readonly leakMovedVms?: boolean;
  /**
   * With agent-only workers: an agent keeps its work running 4 s longer than the dead-after time
   * after it lost the cluster (a disconnect grace set longer than the servers' dead-after).
   */
  readonly agentOverstaysGrace?: boolean;
}

/**
 * A learner is promoted once at most this many entries behind (a real node's default is 100;
 * a short simulated run writes far fewer entries, so promotions would rarely wait).
 */
const PROMOTION_MAX_LAG_ENTRIES = 20;

/**
 * Which disk the nodes run on: `model` keeps a model of the `LogStore` (an ordered list of
 * durable operations); `wal` runs the real write-ahead log over a simulated file system.
 */
export type DiskKind = "model" | "wal";

/** The Raft core's switches for the planted core bugs of `bugs` (empty: none). */
export function coreBugs(bugs: PlantedBugs): CorePlantedBugs {
  return {
    ...(bugs.figure8 === true ? { countOldTermEntries: true } : {}),
    ...(bugs.noUpToDateCheck === true ? { skipUpToDateCheck: true } : {}),
    ...(bugs.forgetVote === true ? { forgetToPersistVote: true } : {}),
  };
}

/** How the simulated nodes run. */
export interface ClusterOptions {
  /** Founding voters, ids 1..n. */
  readonly initialVoters: number;
  readonly tickIntervalMs: number;
  readonly electionTicks: number;
  /**
   * Ticks between a leader's heartbeats. Default: a real node's (`defaultHeartbeatTicks`, 4 for
   * 10 election ticks).
   */
  readonly heartbeatTicks?: number;
  /** The core's limit on one append message, in bytes (small values split batches). */
  readonly maxSizePerMsgBytes: number;
  /** The runtime's default operation timeout. */
  readonly operationTimeoutMs: number;
  readonly snapshotEveryEntries: number;
  readonly snapshotTrailingEntries: number;
  readonly disk: DiskOptions;
  /** The disk the nodes run on. Default `model`. */
  readonly diskKind?: DiskKind;
  /** One-way delay between a client and a node, in ms. */
  readonly clientDelayMs: { readonly min: number; readonly max: number };
  readonly bugs: PlantedBugs;
}

/** What the cluster tells the checkers. */
export interface ClusterObserver {
  /** A replica applied an entry. */
  onApply(nodeId: NodeId, incarnation: number, record: AppliedRecord): void;
  /** A node stopped on a fatal error (an invariant failed, or corrupt storage). */
  onFatal(nodeId: NodeId, error: Error): void;
  /** WAL disk: a node's store opened (after a crash, `afterCrash`), recovering `recovery`. */
  onStorageOpened?(nodeId: NodeId, recovery: WalRecoveryReport, afterCrash: boolean): void;
  /**
   * WAL disk: a node's store refused to open with StorageCorrupt; the node stays down.
   * `expected` is true if a bit was flipped into its disk (a loud failure is then correct).
   */
  onStorageCorrupt?(nodeId: NodeId, error: StorageCorruptError, expected: boolean): void;
  /**
   * Replica `nodeId` (incarnation `incarnation`) applied an orchestrator command at `index`, or
   * restored a snapshot (`index` undefined); `model` is its model.
   */
  onModelChanged?(
    nodeId: NodeId,
    incarnation: number,
    index: number | undefined,
    model: OrchestratorQueries,
  ): void;
  /** A node's new incarnation runs (its runtime started). */
  onNodeStarted?(slot: SimNodeSlot): void;
  /** A running or paused node's process is gone (a crash, or it was shut down for good). */
  onNodeStopped?(nodeId: NodeId, incarnation: number): void;
}

/**
 * The life state of a simulated node. `starting`: its WAL is being opened (recovered);
 * `failed`: its storage failed loudly on open, and it stays down.
 */
export type NodeState = "running" | "paused" | "crashed" | "starting" | "failed" | "removed";

/** One node: its disk survives incarnations; the rest is rebuilt on each restart. */
export interface SimNodeSlot {
  readonly id: NodeId;
  readonly disk: SimDisk | WalDisk;
  state: NodeState;
  /** Starts at 1 and goes up on each restart. */
  incarnation: number;
  node: RaftNode<SimResult> | undefined;
  clock: SimClock | undefined;
  stateMachine: ObservedStateMachine | undefined;
  /** The incarnation's lessor and lease/txn service (as a real node's API has them). */
  coordination: CoordinationWiring | undefined;
  /** The incarnation's change feed (what the agent protocol's long poll follows). */
  feed: ChangeFeed | undefined;
}

/** How a client's call to a node ended. */
export type CallOutcome<T> =
  | { readonly kind: "ok"; readonly value: T }
  | { readonly kind: "error"; readonly error: unknown }
  | { readonly kind: "no-response" };

/** The simulated cluster. */
export class SimCluster {
  readonly slots = new Map<NodeId, SimNodeSlot>();
  private nextId: number;
  private readonly nodeRandom: Random;
  private readonly diskRandom: Random;
  private readonly callRandom: Random;
  /** The core's safety rules: the paper's, or with the planted core bugs of `options.bugs`. */
  private readonly coreRules: SafetyRules;

  constructor(
    private readonly scheduler: Scheduler,
    random: Random,
    private readonly network: SimNetwork,
    private readonly options: ClusterOptions,
    private readonly observer: ClusterObserver,
  ) {
    this.nodeRandom = fork(random);
    this.diskRandom = fork(random);
    this.callRandom = fork(random);
    this.nextId = options.initialVoters + 1;
    this.coreRules = plantedRules(coreBugs(options.bugs));
  }

  /** Creates and starts the founding voters. */
  bootstrap(): void {
    const voters = Array.from({ length: this.options.initialVoters }, (_, i) => i + 1);
    const confState: ConfState = {
      voters,
      learners: [],
      votersOutgoing: [],
      learnersNext: [],
      autoLeave: false,
    };
    for (const id of voters) this.createSlot(id, confState);
  }

  /** Creates and starts a brand-new node with an empty disk (to be added as a learner). */
  addNode(): NodeId {
    const id = this.nextId++;
    this.createSlot(id, undefined);
    return id;
  }

  private createSlot(id: NodeId, confState: ConfState | undefined): void {
    const slot: SimNodeSlot = {
      id,
      disk:
        this.options.diskKind === "wal"
          ? new WalDisk(
              this.scheduler,
              fork(this.diskRandom),
              { ...this.options.disk, skipDatasync: this.options.bugs.walSkipsDatasync === true },
              confState,
            )
          : new SimDisk(this.scheduler, fork(this.diskRandom), this.diskOptions(), confState),
      state: "crashed",
      incarnation: 0,
      node: undefined,
      clock: undefined,
      stateMachine: undefined,
      coordination: undefined,
      feed: undefined,
    };
    this.slots.set(id, slot);
    this.restart(id);
  }

  private diskOptions(): DiskOptions {
    return this.options.bugs.ackBeforeDurable === true
      ? { ...this.options.disk, ackBeforeDurable: true }
      : this.options.disk;
  }

  /** The slot of `id`. @throws Error if there is no such node. */
  slot(id: NodeId): SimNodeSlot {
    const slot = this.slots.get(id);
    if (slot === undefined) throw new Error(`no simulated node ${id}`);
    return slot;
  }

  /** Ids of nodes whose process exists (running or paused). */
  liveIds(): NodeId[] {
    return [...this.slots.values()]
      .filter((s) => s.state === "running" || s.state === "paused")
      .map((s) => s.id);
  }

  /** Ids of every node not removed from the cluster. */
  memberIds(): NodeId[] {
    return [...this.slots.values()].filter((s) => s.state !== "removed").map((s) => s.id);
  }

  /** The running node `id` (not paused), if any. */
  runningNode(id: NodeId): RaftNode<SimResult> | undefined {
    const slot = this.slots.get(id);
    return slot?.state === "running" ? slot.node : undefined;
  }

  /** The lease/txn service of node `id`'s process (running or paused), if any. */
  coordination(id: NodeId): CoordinationService | undefined {
    return this.slots.get(id)?.coordination?.service;
  }

  /**
   * Kills node `id`'s process: timers, deliveries and unsynced writes are gone. With `flipBit`
   * (WAL disk only) a bit of a durable byte of its disk flips too, found by the next open.
   */
  crash(id: NodeId, options: { readonly flipBit?: boolean } = {}): void {
    const slot = this.slot(id);
    if (slot.state === "starting") {
      // Killed while its WAL was opening: the open is abandoned.
      slot.clock?.kill();
      (slot.disk as WalDisk).crash(options);
      slot.clock = undefined;
      slot.state = "crashed";
      return;
    }
    if (slot.state !== "running" && slot.state !== "paused") return;
    slot.clock?.kill();
    slot.coordination?.close();
    this.observer.onNodeStopped?.(id, slot.incarnation);
    this.network.detach(id);
    if (slot.disk instanceof WalDisk) slot.disk.crash(options);
    else slot.disk.crash();
    slot.node = undefined;
    slot.clock = undefined;
    slot.stateMachine = undefined;
    slot.coordination = undefined;
    slot.feed = undefined;
    slot.state = "crashed";
  }

  /**
   * Starts a new incarnation of a crashed node from its durable disk: a new runtime and a new
   * state machine, restored from the newest snapshot with the log replayed after it.
   */
  restart(id: NodeId): void {
    const slot = this.slot(id);
    if (slot.state !== "crashed") return;
    slot.incarnation++;
    const incarnation = slot.incarnation;
    const clock = new SimClock(this.scheduler);
    const disk = slot.disk;
    if (disk instanceof SimDisk) {
      this.start(slot, clock, () => disk.open(clock));
      return;
    }
    // The WAL opens (recovers) through a chain of file-system events; the node starts after.
    slot.state = "starting";
    slot.clock = clock;
    const afterCrash = incarnation > 1;
    const current = (): boolean => slot.incarnation === incarnation && slot.state === "starting";
    disk.open(clock).then(
      (store) => {
        if (store === undefined || !current()) return;
        this.observer.onStorageOpened?.(id, store.inner.recovery, afterCrash);
        this.start(slot, clock, () => store);
      },
      (error: unknown) => {
        if (!current()) return;
        clock.kill();
        slot.clock = undefined;
        slot.state = "failed";
        if (error instanceof StorageCorruptError && this.observer.onStorageCorrupt !== undefined) {
          this.observer.onStorageCorrupt(id, error, disk.corrupted);
        } else {
          this.observer.onFatal(id, error instanceof Error ? error : new Error(String(error)));
        }
      },
    );
  }

  private start(slot: SimNodeSlot, clock: SimClock, openStore: () => LogStore): void {
    const id = slot.id;
    const incarnation = slot.incarnation;
    const transport = this.network.attach(id, clock);
    const logStore = openStore();
    slot.clock = clock;
    slot.state = "running";
    const onApply = (record: AppliedRecord): void => this.observer.onApply(id, incarnation, record);
    const casBug = this.options.bugs.casIgnoresExpectedOnNode === id;
    try {
      // The node a real one is, on the simulated platform: only the clock, randomness, disk,
      // network and "later" differ, and limits are scaled to a short run.
      const composed = composeNode({
        id,
        platform: {
          clock,
          random: fork(this.nodeRandom),
          logStore,
          transport,
          // A zero-delay event on the node's clock: held while it is paused, gone with a crash.
          defer: (callback) => void clock.setTimer(0, callback),
          commandTimeMs: () => commandTimeMs(clock.now()),
        },
        timing: {
          tickIntervalMs: this.options.tickIntervalMs,
          electionTicks: this.options.electionTicks,
          ...(this.options.heartbeatTicks === undefined
            ? {}
            : { heartbeatTicks: this.options.heartbeatTicks }),
          snapshotEveryEntries: this.options.snapshotEveryEntries,
        },
        tuning: {
          maxSizePerMsgBytes: this.options.maxSizePerMsgBytes,
          operationTimeoutMs: this.options.operationTimeoutMs,
          snapshotTrailingEntries: this.options.snapshotTrailingEntries,
          promotionMaxLagEntries: PROMOTION_MAX_LAG_ENTRIES,
          rules: this.coreRules,
          ...(this.options.bugs.keepLeaseDeadlinesAcrossTerms === true
            ? { plantedKeepDeadlinesAcrossTerms: true }
            : {}),
        },
        onFatal: (error) => this.observer.onFatal(id, error),
        // Set on the slot before the runtime restores a snapshot into it (in its constructor).
        instrument: (stack, machine) =>
          (slot.stateMachine = new ObservedStateMachine(stack, machine, {
            onApply,
            onModelChanged: (index) =>
              this.observer.onModelChanged?.(id, incarnation, index, machine.orchestrator),
            ...(casBug ? { casIgnoresExpected: true } : {}),
          })),
      });
      slot.node = composed.node;
      slot.coordination = composed.coordination;
      slot.feed = composed.feed;
      composed.node.start();
      composed.coordination.start();
      this.observer.onNodeStarted?.(slot);
    } catch (error) {
      this.observer.onFatal(id, error instanceof Error ? error : new Error(String(error)));
      this.crash(id);
    }
  }

  /** Stops node `id`'s process as SIGSTOP would: its timers and deliveries are held. */
  pause(id: NodeId): void {
    const slot = this.slot(id);
    if (slot.state !== "running") return;
    slot.clock?.pause();
    slot.state = "paused";
  }

  /** Resumes a paused node: what was held runs now. */
  resume(id: NodeId): void {
    const slot = this.slot(id);
    if (slot.state !== "paused") return;
    slot.clock?.resume();
    slot.state = "running";
  }

  /** Shuts a node that left the cluster down for good. */
  decommission(id: NodeId): void {
    this.crash(id);
    this.slot(id).state = "removed";
  }

  /**
   * A client's request to node `id`: it travels to the node, runs `fn` there (held while the
   * node is paused), and the answer travels back. A crashed node refuses the connection; an
   * answer that does not arrive within `timeoutMs` is "no-response" (outcome unknown).
   */
  call<T>(
    id: NodeId,
    fn: (node: RaftNode<SimResult>) => Promise<T>,
    timeoutMs: number,
  ): Promise<CallOutcome<T>> {
    return new Promise<CallOutcome<T>>((resolve) => {
      let settled = false;
      const settle = (outcome: CallOutcome<T>): void => {
        if (settled) return;
        settled = true;
        timer.cancel();
        resolve(outcome);
      };
      const timer = this.scheduler.schedule(timeoutMs, () => settle({ kind: "no-response" }));
      const delay = (): number =>
        between(this.callRandom, this.options.clientDelayMs.min, this.options.clientDelayMs.max);
      this.scheduler.schedule(delay(), () => {
        const slot = this.slots.get(id);
        const clock = slot?.clock;
        if (slot === undefined || slot.node === undefined || clock === undefined) {
          const refused = new UnavailableError(`node ${id} refused the connection`);
          this.scheduler.schedule(delay(), () => settle({ kind: "error", error: refused }));
          return;
        }
        const incarnation = slot.incarnation;
        clock.fire(() => {
          const node = slot.node;
          if (node === undefined || slot.incarnation !== incarnation) return;
          const answer = (outcome: CallOutcome<T>): void => {
            if (slot.incarnation !== incarnation || slot.clock?.isDead !== false) return;
            this.scheduler.schedule(delay(), () => settle(outcome));
          };
          let promise: Promise<T>;
          try {
            promise = fn(node);
          } catch (error) {
            promise = Promise.reject(error as Error);
          }
          promise.then(
            (value) => answer({ kind: "ok", value }),
            (error: unknown) => answer({ kind: "error", error }),
          );
        });
      });
    });
  }
}
