/**
 * The simulated network: a {@link Transport} per node incarnation, with per-message delay,
 * loss, duplication, reordering (through random delays), symmetric and one-way partitions and
 * clogged nodes or links, every choice drawn from the run's seeded random.
 */
import type { Random } from "../common/random.js";
import type { SnapshotDelivery, Transport, TransportHandlers } from "../node/ports.js";
import { MessageType, type Message, type NodeId } from "../raft/types.js";
import { between, chance, type TraceHash } from "./rng.js";
import type { Scheduler, SimClock } from "./scheduler.js";
import type { TraceTail } from "./trace-tail.js";

/** The message-level fault rates of a run. */
export interface NetworkFaults {
  /** Smallest one-way delay, in ms. */
  readonly minDelayMs: number;
  /** Largest one-way delay, in ms (random delays also reorder messages). */
  readonly maxDelayMs: number;
  /** Probability that a message is lost. */
  readonly lossRate: number;
  /** Probability that a message is delivered twice. */
  readonly duplicateRate: number;
}

/** A fault-free network with 1–10 ms delays. */
export const CALM_NETWORK: NetworkFaults = Object.freeze({
  minDelayMs: 1,
  maxDelayMs: 10,
  lossRate: 0,
  duplicateRate: 0,
});

/** Counters of what the network did. */
export interface NetworkStats {
  sent: number;
  delivered: number;
  lost: number;
  duplicated: number;
  blocked: number;
  held: number;
  /** Snap messages sent. */
  snapshotsSent: number;
  /** The most snapshots ever in flight on one link in one term (sent, outcome not yet known). */
  maxSnapshotsInFlightPerLink: number;
}

/** Rewrites or drops (undefined) a message in flight: how planted transport bugs are injected. */
export type MessageInterceptor = (message: Message) => Message | undefined;

/** Ends a snapshot's flight: reports its outcome to the sender (once). */
type SnapshotDone = (outcome: SnapshotDelivery) => void;

/** A message on its way, with the report of its outcome if it is a snapshot. */
interface InFlight {
  readonly message: Message;
  readonly done: SnapshotDone | undefined;
}

interface Endpoint {
  readonly clock: SimClock;
  onMessages: ((messages: readonly Message[]) => void) | undefined;
  onUnreachable: ((peer: NodeId) => void) | undefined;
  onSnapshotStatus: TransportHandlers["onSnapshotStatus"] | undefined;
  closed: boolean;
  readonly lastUnreachableMs: Map<NodeId, number>;
}

/** Reports of an unreachable peer, at most one per peer per this long. */
const UNREACHABLE_REPORT_INTERVAL_MS = 200;

/**
 * The network between simulated nodes. Each {@link attach} makes a transport for one
 * incarnation of a node; a crashed incarnation is {@link detach}ed and receives nothing more.
 */
export class SimNetwork {
  private faults: NetworkFaults;
  private readonly endpoints = new Map<NodeId, Endpoint>();
  private readonly blockedLinks = new Set<string>();
  private readonly cloggedNodes = new Set<NodeId>();
  private readonly cloggedLinks = new Set<string>();
  private held: InFlight[] = [];
  private readonly snapshotsInFlight = new Map<string, number>();
  /** Per snapshot in flight: what takes it out of its link's count when a clog stalls it. */
  private readonly stallSnapshot = new WeakMap<SnapshotDone, () => void>();
  /**
   * How fast snapshot data crosses a link, in bytes per ms: a snapshot's delay grows by its
   * size divided by this (large-state runs make it slow, so snapshots are in flight across
   * many heartbeats). Undefined: a snapshot travels like any message.
   */
  snapshotBytesPerMs: number | undefined;
  /** Keeps the last deliveries for failure reports. */
  tail: TraceTail | undefined;
  /** Sees every message a node sends (the nemesis's targeted faults hook in here). */
  onSend: ((message: Message) => void) | undefined;
  /** Planted bugs hook in here; the default passes every message unchanged. */
  interceptor: MessageInterceptor | undefined;
  readonly stats: NetworkStats = {
    sent: 0,
    delivered: 0,
    lost: 0,
    duplicated: 0,
    blocked: 0,
    held: 0,
    snapshotsSent: 0,
    maxSnapshotsInFlightPerLink: 0,
  };

  constructor(
    private readonly scheduler: Scheduler,
    private readonly random: Random,
    faults: NetworkFaults,
    private readonly trace: TraceHash,
  ) {
    this.faults = faults;
  }

  /** Changes the message-level fault rates (e.g. to calm the network when faults heal). */
  setFaults(faults: NetworkFaults): void {
    this.faults = faults;
  }

  /** The transport of a new incarnation of node `id`, whose timers and deliveries use `clock`. */
  attach(id: NodeId, clock: SimClock): Transport {
    const endpoint: Endpoint = {
      clock,
      onMessages: undefined,
      onUnreachable: undefined,
      onSnapshotStatus: undefined,
      closed: false,
      lastUnreachableMs: new Map(),
    };
    this.endpoints.set(id, endpoint);
    return {
      send: (messages) => {
        if (endpoint.closed) return;
        for (const m of messages) this.send(endpoint, m);
      },
      listen: (handlers) => {
        endpoint.onMessages = handlers.onMessages;
        endpoint.onUnreachable = handlers.onUnreachable;
        endpoint.onSnapshotStatus = handlers.onSnapshotStatus;
      },
      close: () => {
        endpoint.closed = true;
        return Promise.resolve();
      },
    };
  }

  /** Cuts off node `id`'s current incarnation (it crashed): nothing reaches it any more. */
  detach(id: NodeId): void {
    const endpoint = this.endpoints.get(id);
    if (endpoint !== undefined) endpoint.closed = true;
    this.endpoints.delete(id);
  }

  /** Only nodes in the same group can talk; messages across groups are dropped (both ways). */
  partition(groups: readonly (readonly NodeId[])[]): void {
    for (const [i, a] of groups.entries()) {
      for (const [j, b] of groups.entries()) {
        if (i === j) continue;
        for (const from of a) for (const to of b) this.blockedLinks.add(linkKey(from, to));
      }
    }
  }

  /** Drops every message from `from` to `to` (but not back). */
  blockOneWay(from: NodeId, to: NodeId): void {
    this.blockedLinks.add(linkKey(from, to));
  }

  /** Lets messages from `from` to `to` through again (undoes {@link blockOneWay}). */
  unblockOneWay(from: NodeId, to: NodeId): void {
    this.blockedLinks.delete(linkKey(from, to));
  }

  /** Removes every partition and one-way block. */
  healPartitions(): void {
    this.blockedLinks.clear();
  }

  /** Holds every message to or from `id` until {@link unclogNode}. */
  clogNode(id: NodeId): void {
    this.cloggedNodes.add(id);
  }

  /** Releases a clogged node's held messages (with fresh delays). */
  unclogNode(id: NodeId): void {
    this.cloggedNodes.delete(id);
    this.releaseHeld();
  }

  /** Holds every message from `from` to `to` until {@link unclogLink}. */
  clogLink(from: NodeId, to: NodeId): void {
    this.cloggedLinks.add(linkKey(from, to));
  }

  /** Releases a clogged link's held messages (with fresh delays). */
  unclogLink(from: NodeId, to: NodeId): void {
    this.cloggedLinks.delete(linkKey(from, to));
    this.releaseHeld();
  }

  /** Removes every partition and clog. */
  healAll(): void {
    this.healPartitions();
    this.cloggedNodes.clear();
    this.cloggedLinks.clear();
    this.releaseHeld();
  }

  /**
   * True if messages from `from` to `to` do not get through now (a partition, a one-way block or
   * a clog): how the simulated agents' forwarded requests, which travel beside raft's traffic,
   * learn that the link is cut.
   */
  linkCut(from: NodeId, to: NodeId): boolean {
    return this.isBlocked(from, to) || this.isClogged(from, to);
  }

  private isBlocked(from: NodeId, to: NodeId): boolean {
    return this.blockedLinks.has(linkKey(from, to));
  }

  private isClogged(from: NodeId, to: NodeId): boolean {
    return (
      this.cloggedNodes.has(from) ||
      this.cloggedNodes.has(to) ||
      this.cloggedLinks.has(linkKey(from, to))
    );
  }

  private send(sender: Endpoint, original: Message): void {
    this.stats.sent++;
    this.onSend?.(original);
    const done =
      original.type === MessageType.Snap ? this.snapshotLeft(sender, original) : undefined;
    const m = this.interceptor === undefined ? original : this.interceptor(original);
    if (m === undefined) {
      done?.("failure");
      return;
    }
    if (this.isBlocked(m.from, m.to) || !this.endpoints.has(m.to)) {
      this.stats.blocked++;
      this.reportUnreachable(sender, m.to);
      done?.("failure");
      return;
    }
    if (chance(this.random, this.faults.lossRate)) {
      this.stats.lost++;
      // A real link notices a lost stream only when it breaks: report it after a transit time.
      if (done !== undefined) this.scheduler.schedule(this.transitMs(m), () => done("failure"));
      return;
    }
    this.dispatch({ message: m, done });
    if (chance(this.random, this.faults.duplicateRate)) {
      this.stats.duplicated++;
      this.dispatch({ message: m, done: undefined });
    }
  }

  /**
   * Counts a snapshot into its link's flight and returns what ends the flight: the outcome is
   * reported to the sender's current incarnation (through its clock), once.
   */
  private snapshotLeft(sender: Endpoint, m: Message): SnapshotDone {
    this.stats.snapshotsSent++;
    // Per link and term: a leader that lost and regained leadership may legitimately start a
    // new snapshot while its old term's one is still crossing.
    const link = `${linkKey(m.from, m.to)}@${m.term}`;
    const inFlight = (this.snapshotsInFlight.get(link) ?? 0) + 1;
    this.snapshotsInFlight.set(link, inFlight);
    this.stats.maxSnapshotsInFlightPerLink = Math.max(
      this.stats.maxSnapshotsInFlightPerLink,
      inFlight,
    );
    let ended = false;
    let counted = true;
    const uncount = (): void => {
      if (!counted) return;
      counted = false;
      this.snapshotsInFlight.set(link, (this.snapshotsInFlight.get(link) ?? 1) - 1);
    };
    const done: SnapshotDone = (outcome) => {
      if (ended) return;
      ended = true;
      uncount();
      sender.clock.fire(() => {
        if (!sender.closed) sender.onSnapshotStatus?.(m.to, outcome);
      });
    };
    this.stallSnapshot.set(done, uncount);
    return done;
  }

  /** A message's one-way delay: a random latency, plus a snapshot's size over the link speed. */
  private transitMs(m: Message): number {
    const latencyMs = between(this.random, this.faults.minDelayMs, this.faults.maxDelayMs);
    const bytes = m.snapshot?.data.byteLength ?? 0;
    if (bytes === 0 || this.snapshotBytesPerMs === undefined) return latencyMs;
    return latencyMs + Math.ceil(bytes / this.snapshotBytesPerMs);
  }

  private dispatch(flight: InFlight): void {
    this.scheduler.schedule(this.transitMs(flight.message), () => this.arrive(flight));
  }

  private arrive(flight: InFlight): void {
    const { message: m, done } = flight;
    if (this.isBlocked(m.from, m.to)) {
      this.stats.blocked++;
      done?.("failure");
      return;
    }
    if (this.isClogged(m.from, m.to)) {
      this.stats.held++;
      // A snapshot stalled behind a clog stops counting toward the one-in-flight property: the
      // released backlog may carry the follower's append responses, which take the leader out of
      // snapshot state, and it may then legitimately start another (etcd's raft does the same).
      if (done !== undefined) this.stallSnapshot.get(done)?.();
      this.held.push(flight);
      return;
    }
    const endpoint = this.endpoints.get(m.to);
    if (endpoint === undefined || endpoint.closed || endpoint.clock.isDead) {
      done?.("failure");
      return;
    }
    // As with TCP, a snapshot is finished once it crossed the link, whether or not the peer's
    // process (perhaps paused) has read it yet; what the sender sends next comes after it.
    done?.("finish");
    endpoint.clock.fire(() => {
      if (endpoint.closed || endpoint.onMessages === undefined) return;
      this.stats.delivered++;
      this.trace.add(this.scheduler.now(), m.type, m.from, m.to, m.term, m.index, m.entries.length);
      this.tail?.add(this.scheduler.now(), { kind: "deliver", subject: m });
      endpoint.onMessages([m]);
    });
  }

  private releaseHeld(): void {
    const held = this.held;
    this.held = [];
    for (const flight of held) this.dispatch(flight);
  }

  private reportUnreachable(sender: Endpoint, peer: NodeId): void {
    const nowMs = this.scheduler.now();
    const last = sender.lastUnreachableMs.get(peer);
    if (last !== undefined && nowMs - last < UNREACHABLE_REPORT_INTERVAL_MS) return;
    sender.lastUnreachableMs.set(peer, nowMs);
    const delayMs = this.faults.maxDelayMs;
    this.scheduler.schedule(delayMs, () =>
      sender.clock.fire(() => {
        if (!sender.closed) sender.onUnreachable?.(peer);
      }),
    );
  }
}

function linkKey(from: NodeId, to: NodeId): string {
  return `${from}>${to}`;
}
