/**
 * The nemesis: injects the run's faults at random times (partitions, one-way partitions,
 * clogged nodes and links, crashes with restarts, pauses), changes membership (add a learner,
 * promote it, remove a voter) in runs that ask for it, and heals everything at the end of the
 * fault phase.
 */
import { isBlixardError } from "../common/errors.js";
import type { Random } from "../common/random.js";
import { MessageType, Role, type NodeId } from "../raft/types.js";
import type { SimCluster } from "./cluster.js";
import type { NetworkFaults, SimNetwork } from "./network.js";
import { between, chance, pick, shuffled, type TraceHash } from "./rng.js";
import type { Scheduler } from "./scheduler.js";
import type { TraceTail } from "./trace-tail.js";
import { WalDisk } from "./wal-disk.js";

/** The kinds of fault the nemesis injects by default. */
export const FAULT_KINDS = [
  "partition",
  "one-way",
  "clog-node",
  "clog-link",
  "crash",
  "pause",
] as const;
/**
 * Every kind of fault, including those only injected when asked for: `power-loss` crashes every
 * node at once and restarts each 1–50 ms later (a fresh election race among nodes that lost
 * whatever was not durable). `bitflip` (WAL disk only) crashes a node and flips one bit of a
 * durable byte of its disk before it restarts: the restart must fail loudly (StorageCorrupt).
 */
export const ALL_FAULT_KINDS = [...FAULT_KINDS, "power-loss", "bitflip"] as const;

/** A crash meant for the next flush of a WAL disk comes at the latest this long after, in ms. */
const CRASH_DURING_FLUSH_WITHIN_MS = 200;

/** One kind of fault. */
export type FaultKind = (typeof ALL_FAULT_KINDS)[number];

/** What the nemesis does during the fault phase. */
export interface NemesisOptions {
  /** Message-level faults during the fault phase. */
  readonly network: NetworkFaults;
  /** Message-level behaviour once healed. */
  readonly calmNetwork: NetworkFaults;
  /** Gap between injected faults, in ms. */
  readonly faultIntervalMs: { readonly min: number; readonly max: number };
  /** How long one fault lasts before it heals, in ms. */
  readonly faultDurationMs: { readonly min: number; readonly max: number };
  /** Fault kinds to inject (empty: none). */
  readonly kinds: readonly FaultKind[];
  /** Add, promote and remove members during the run. */
  readonly membershipChanges: boolean;
  /**
   * Probability that a node that just granted a vote (not a pre-vote) crashes at once and
   * restarts 1–5 ms later: the targeted fault for a vote that was not durable. Default 0.
   */
  readonly crashAfterVoteRate?: number;
  /** Voters kept at least / at most by membership changes. */
  readonly minVoters: number;
  readonly maxVoters: number;
}

/** The nemesis of one run. */
export class Nemesis {
  /** Faults injected, by kind (membership changes too). */
  readonly counts: Record<string, number> = {};
  /** Every fault with its time, for reports. */
  readonly log: string[] = [];
  /** Keeps the last faults for failure reports. */
  tail: TraceTail | undefined;
  private active = false;
  private readonly promotable = new Set<NodeId>();

  constructor(
    private readonly scheduler: Scheduler,
    private readonly random: Random,
    private readonly cluster: SimCluster,
    private readonly network: SimNetwork,
    private readonly options: NemesisOptions,
    private readonly trace: TraceHash,
  ) {}

  /** Records a fault injected from elsewhere (a targeted schedule) like one of its own. */
  note(kind: string, detail: string): void {
    this.record(kind, detail);
  }

  private record(kind: string, detail: string): void {
    this.counts[kind] = (this.counts[kind] ?? 0) + 1;
    const line = `${this.scheduler.now()} ms: ${kind} ${detail}`;
    this.log.push(line);
    this.trace.add(line);
    this.tail?.add(this.scheduler.now(), { kind: "fault", subject: `${kind} ${detail}` });
  }

  /** Starts injecting faults until {@link healAll}. */
  start(): void {
    this.active = true;
    this.network.setFaults(this.options.network);
    const crashAfterVoteRate = this.options.crashAfterVoteRate ?? 0;
    if (crashAfterVoteRate > 0) {
      this.network.onSend = (m) => {
        if (m.type !== MessageType.VoteResp || m.reject || !this.active) return;
        if (!chance(this.random, crashAfterVoteRate)) return;
        const id = m.from;
        // After the sending event: the vote has left (and the hard state was handed to disk).
        this.scheduler.schedule(0, () => {
          if (!this.active || this.cluster.slot(id).state !== "running") return;
          this.cluster.crash(id);
          this.record("crash-after-vote", String(id));
          this.scheduler.schedule(between(this.random, 1, 5), () => {
            this.cluster.restart(id);
            this.record("restart", String(id));
          });
        });
      };
    }
    if (this.options.kinds.length > 0) this.scheduleNextFault();
    if (this.options.membershipChanges) void this.membershipLoop();
  }

  private scheduleNextFault(): void {
    const { min, max } = this.options.faultIntervalMs;
    this.scheduler.schedule(between(this.random, min, max), () => {
      if (!this.active) return;
      this.injectFault(pick(this.random, this.options.kinds));
      this.scheduleNextFault();
    });
  }

  private duration(): number {
    return between(this.random, this.options.faultDurationMs.min, this.options.faultDurationMs.max);
  }

  /** Heals `fn` after the fault's duration, unless everything was healed first. */
  private later(fn: () => void): void {
    this.scheduler.schedule(this.duration(), () => {
      if (this.active) fn();
    });
  }

  private injectFault(kind: FaultKind): void {
    const ids = this.cluster.memberIds();
    if (ids.length < 2) return;
    const net = this.network;
    switch (kind) {
      case "partition": {
        const order = shuffled(this.random, ids);
        const cut = between(this.random, 1, order.length - 1);
        const groups = [order.slice(0, cut), order.slice(cut)];
        net.partition(groups);
        this.record(kind, JSON.stringify(groups));
        this.later(() => net.healPartitions());
        return;
      }
      case "one-way": {
        const [from, to] = shuffled(this.random, ids) as [NodeId, NodeId];
        net.blockOneWay(from, to);
        this.record(kind, `${from}->${to}`);
        this.later(() => net.healPartitions());
        return;
      }
      case "clog-node": {
        const id = pick(this.random, ids);
        net.clogNode(id);
        this.record(kind, String(id));
        this.later(() => net.unclogNode(id));
        return;
      }
      case "clog-link": {
        const [from, to] = shuffled(this.random, ids) as [NodeId, NodeId];
        net.clogLink(from, to);
        this.record(kind, `${from}->${to}`);
        this.later(() => net.unclogLink(from, to));
        return;
      }
      case "crash": {
        const live = this.cluster.liveIds();
        if (live.length === 0) return;
        const id = pick(this.random, live);
        const disk = this.cluster.slot(id).disk;
        // On the WAL disk, half the crashes come during a flush (torn writes; see WalDisk).
        if (disk instanceof WalDisk && chance(this.random, 0.5)) {
          disk.crashDuringNextFlush(() => {
            if (this.active) this.cluster.crash(id);
          }, CRASH_DURING_FLUSH_WITHIN_MS);
        } else {
          this.cluster.crash(id);
        }
        this.record(kind, String(id));
        this.later(() => {
          this.cluster.restart(id);
          this.record("restart", String(id));
        });
        return;
      }
      case "bitflip": {
        const live = this.cluster.liveIds();
        if (live.length === 0) return;
        const id = pick(this.random, live);
        this.cluster.crash(id, { flipBit: true });
        this.record(kind, String(id));
        this.later(() => {
          this.cluster.restart(id);
          this.record("restart", String(id));
        });
        return;
      }
      case "power-loss": {
        const live = this.cluster.liveIds();
        for (const id of live) this.cluster.crash(id);
        this.record(kind, JSON.stringify(live));
        for (const id of live) {
          this.scheduler.schedule(between(this.random, 1, 50), () => {
            if (!this.active) return;
            this.cluster.restart(id);
            this.record("restart", String(id));
          });
        }
        return;
      }
      case "pause": {
        const running = this.cluster
          .liveIds()
          .filter((id) => this.cluster.slot(id).state === "running");
        if (running.length === 0) return;
        const id = pick(this.random, running);
        this.cluster.pause(id);
        this.record(kind, String(id));
        this.later(() => this.cluster.resume(id));
        return;
      }
    }
  }

  /** Ends the fault phase: partitions, clogs, crashes and pauses all heal; the network calms. */
  healAll(): void {
    this.active = false;
    this.network.onSend = undefined;
    this.network.setFaults(this.options.calmNetwork);
    this.network.healAll();
    for (const slot of this.cluster.slots.values()) {
      if (slot.state === "crashed") this.cluster.restart(slot.id);
      else if (slot.state === "paused") this.cluster.resume(slot.id);
    }
    this.record("heal-all", "");
  }

  // -----------------------------------------------------------------------------------------
  // Membership changes

  private leader(): NodeId | undefined {
    for (const id of this.cluster.liveIds()) {
      if (this.cluster.runningNode(id)?.isLeader === true) return id;
    }
    return undefined;
  }

  private async membershipLoop(): Promise<void> {
    while (this.active) {
      await new Promise<void>((resolve) =>
        this.scheduler.schedule(between(this.random, 700, 2000), resolve),
      );
      if (!this.active) return;
      const leaderId = this.leader();
      const leader = leaderId === undefined ? undefined : this.cluster.runningNode(leaderId);
      if (leader === undefined || leaderId === undefined) continue;
      const config = leader.status().config;
      const learner = [...this.promotable].find((id) => config.learners.includes(id));
      if (learner !== undefined) {
        await this.change("promote", leaderId, learner, (n) => n.promote(learner));
        continue;
      }
      const voters = config.voters;
      if (config.votersOutgoing.length > 0) continue;
      const canAdd = voters.length < this.options.maxVoters && this.everyVoterCompacted(voters);
      const canRemove = voters.length > this.options.minVoters;
      if (canAdd && (!canRemove || chance(this.random, 0.5))) {
        const id = this.cluster.addNode();
        this.record("add-node", String(id));
        if (await this.change("add-learner", leaderId, id, (n) => n.addLearner(id))) {
          this.promotable.add(id);
        }
      } else if (canRemove) {
        const id = pick(this.random, voters);
        if (await this.change("remove", leaderId, id, (n) => n.removeMember(id))) {
          this.cluster.decommission(id);
          this.record("decommission", String(id));
        }
      }
    }
  }

  /**
   * A new node learns the configuration only from a snapshot (it cannot apply conf changes on
   * top of an empty one), so every voter that could lead must have compacted its log.
   */
  private everyVoterCompacted(voters: readonly NodeId[]): boolean {
    return voters.every((id) => {
      const slot = this.cluster.slots.get(id);
      if (slot === undefined) return false;
      const first = slot.disk.store?.firstIndex() ?? slot.disk.durableFirstIndex();
      return first > 1 && slot.disk.durableFirstIndex() > 1;
    });
  }

  private async change(
    kind: string,
    leaderId: NodeId,
    target: NodeId,
    fn: (node: NonNullable<ReturnType<SimCluster["runningNode"]>>) => Promise<unknown>,
  ): Promise<boolean> {
    let nodeId = leaderId;
    for (let attempt = 0; attempt < 5 && this.active; attempt++) {
      const outcome = await this.cluster.call(nodeId, fn, 3000);
      if (outcome.kind === "ok") {
        this.record(kind, `${target} (via ${nodeId})`);
        return true;
      }
      const code =
        outcome.kind === "error" && isBlixardError(outcome.error) ? outcome.error.code : "none";
      if (code === "INVALID_ARGUMENT") return false;
      await new Promise<void>((resolve) => this.scheduler.schedule(300, resolve));
      nodeId = this.leader() ?? nodeId;
      if (this.cluster.runningNode(nodeId)?.status().role !== Role.Leader) continue;
    }
    this.record(`${kind}-gave-up`, String(target));
    return false;
  }
}
