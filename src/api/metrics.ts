/**
 * The node's Prometheus metrics (prom-client). Raft gauges are read from the service's status
 * at each scrape; counters and histograms are fed by the service layer (proposals, reads) and
 * the HTTP layer (requests, forwards). One registry per server, so several nodes can share a
 * process (tests) without mixing their series.
 */
import { Counter, Gauge, Histogram, Registry } from "prom-client";
import { Role } from "../raft/types.js";
import { CounterTally } from "./counter-tally.js";
import type { CommandMetrics, ReadConsistency } from "../node/command-port.js";
import { LoopDelaySampler, type LoopDelaySamplerOptions } from "./loop-delay-sampler.js";
import type { NodeStatusView } from "./service.js";

/** Latency buckets in seconds: 0.5 ms to 10 s. */
const LATENCY_BUCKETS_SECONDS = [
  0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10,
];

/** Per-peer message counters, as the transport keeps them (cumulative). */
export interface PeerTraffic {
  readonly sent: number;
  readonly received: number;
  readonly dropped: number;
  readonly snapshotsSent: number;
  readonly snapshotsReceived: number;
  /**
   * Copies of control messages sent back on the connection the peer dialled (peer protocol 3),
   * and those the peer sent back: apart from `sent` and `received`, which count each once.
   */
  readonly sentBack: number;
  readonly receivedBack: number;
  /** Copies of control messages sent to the peer as UDP datagrams, and those it sent this node. */
  readonly sentByDatagram: number;
  readonly receivedByDatagram: number;
}

/** Fsync latency buckets in seconds: 50 µs to 2.5 s. */
const FSYNC_BUCKETS_SECONDS = [
  0.00005, 0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1, 2.5,
];

/** The metrics of one API server. */
export class ApiMetrics implements CommandMetrics {
  /** The registry to expose. */
  readonly registry = new Registry();
  readonly #term: Gauge;
  readonly #role: Gauge<"role">;
  readonly #leader: Gauge;
  readonly #leaderChanges: Counter;
  readonly #commitIndex: Gauge;
  readonly #appliedIndex: Gauge;
  readonly #lastIndex: Gauge;
  readonly #snapshotIndex: Gauge;
  readonly #pendingProposals: Gauge;
  readonly #members: Gauge<"suffrage">;
  readonly #proposals: Counter<"namespace" | "outcome">;
  readonly #proposalLatency: Histogram<"namespace" | "outcome">;
  readonly #readLatency: Histogram<"namespace" | "consistency" | "outcome">;
  readonly #httpRequests: Counter<"method" | "route" | "status">;
  /** Counted here, handed to the counters as they are read (see counter-tally.ts). */
  readonly #httpTally = new CounterTally<"method" | "route" | "status">([
    "method",
    "route",
    "status",
  ]);
  readonly #proposalTally = new CounterTally<"namespace" | "outcome">(["namespace", "outcome"]);
  readonly #forwarded: Counter<"outcome">;
  readonly #proposalsForwarded: Counter;
  /** The runtime's forwarded-proposal count at the last sample, to turn it into increments. */
  #proposalsForwardedSeen = 0;
  readonly #fsyncLatency: Histogram;
  readonly #peerMessages: Counter<"peer" | "direction">;
  readonly #peerSnapshots: Counter<"peer" | "direction">;
  /** The transport's counters at the last scrape, to turn them into counter increments. */
  readonly #peerSeen = new Map<number, PeerTraffic>();
  #peerSource: (() => ReadonlyMap<number, PeerTraffic>) | undefined;
  #lastLeader: number | undefined;
  /**
   * How late this process's event loop ran since the previous scrape: a stall here delays
   * heartbeats, votes and every answer alike, so it explains elections and cut-off agents.
   * Sampled every 20 ms while the loop works and every 250 ms while it idles
   * (loop-delay-sampler.ts: a fixed 20 ms made half of an idle node's wake-ups).
   */
  readonly #loopDelay: LoopDelaySampler;
  readonly #loopDelayMax: Gauge;
  readonly #loopDelayP99: Gauge;

  /**
   * Registers every metric, labelled with `nodeId`. `options.loopDelay` sets the loop-delay
   * sampler's intervals (tests: a fixed interval, so that a stall is always seen). Throws nothing.
   */
  constructor(nodeId: number, options: { readonly loopDelay?: LoopDelaySamplerOptions } = {}) {
    this.#loopDelay = new LoopDelaySampler(options.loopDelay);
    const registers = [this.registry];
    this.registry.setDefaultLabels({ node_id: String(nodeId) });
    const gauge = (name: string, help: string): Gauge => new Gauge({ name, help, registers });
    this.#term = gauge("blixard_raft_term", "The current raft term.");
    this.#loopDelayMax = gauge(
      "blixard_event_loop_delay_max_seconds",
      "The longest the event loop was late since the previous scrape (a stall delays everything).",
    );
    this.#loopDelayP99 = gauge(
      "blixard_event_loop_delay_p99_seconds",
      "The 99th percentile of how late the event loop ran since the previous scrape.",
    );
    this.#loopDelay.start();
    this.#role = new Gauge({
      name: "blixard_raft_role",
      help: "1 for the role this node is in, 0 for the others.",
      labelNames: ["role"],
      registers,
    });
    this.#leader = gauge("blixard_raft_leader_id", "The leader this node knows of (0: none).");
    this.#leaderChanges = new Counter({
      name: "blixard_raft_leader_changes_total",
      help: "Changes of the known leader this node observed.",
      registers,
    });
    this.#commitIndex = gauge("blixard_raft_commit_index", "The highest committed log index.");
    this.#appliedIndex = gauge("blixard_raft_applied_index", "The highest applied log index.");
    this.#lastIndex = gauge("blixard_raft_last_index", "The last index in this node's log.");
    this.#snapshotIndex = gauge("blixard_raft_snapshot_index", "The newest snapshot's index.");
    this.#pendingProposals = gauge(
      "blixard_raft_pending_proposals",
      "Proposals waiting to be applied on this node.",
    );
    this.#members = new Gauge({
      name: "blixard_raft_members",
      help: "Members of the configuration by suffrage.",
      labelNames: ["suffrage"],
      registers,
    });
    this.#proposals = new Counter({
      name: "blixard_proposals_total",
      help: "Proposals by command namespace and outcome: applied, or the error code or reason that refused them.",
      labelNames: ["namespace", "outcome"],
      registers,
      collect: () => this.#proposalTally.flushTo(this.#proposals),
    });
    this.#proposalLatency = new Histogram({
      name: "blixard_proposal_apply_latency_seconds",
      help: "From proposing a command to its result being applied on this node, by namespace.",
      labelNames: ["namespace", "outcome"],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    });
    this.#readLatency = new Histogram({
      name: "blixard_read_latency_seconds",
      help: "Reads by namespace and consistency; linearizable ones include the ReadIndex round.",
      labelNames: ["namespace", "consistency", "outcome"],
      buckets: LATENCY_BUCKETS_SECONDS,
      registers,
    });
    this.#httpRequests = new Counter({
      name: "blixard_http_requests_total",
      help: "HTTP requests served, by method, route and status.",
      labelNames: ["method", "route", "status"],
      registers,
      collect: () => this.#httpTally.flushTo(this.#httpRequests),
    });
    this.#forwarded = new Counter({
      name: "blixard_http_forwarded_total",
      help: "Requests forwarded to the leader, by outcome (the leader's status, or error).",
      labelNames: ["outcome"],
      registers,
    });
    this.#proposalsForwarded = new Counter({
      name: "blixard_proposals_forwarded_total",
      help: "Writes this follower handed to the leader over the peer transport (no HTTP hop).",
      registers,
    });
    this.#fsyncLatency = new Histogram({
      name: "blixard_wal_fsync_duration_seconds",
      help:
        "Durable writes of the write-ahead log, one per group-committed batch: the O_DSYNC " +
        "write (or the write's fdatasync where the file system has no durable writes).",
      buckets: FSYNC_BUCKETS_SECONDS,
      registers,
    });
    this.#peerMessages = new Counter({
      name: "blixard_peer_messages_total",
      help:
        "Raft messages per peer: sent, received, or dropped (queue full, peer unreachable); " +
        "sent_back and received_back count the second copies of votes, and of heartbeats and " +
        "their answers while answers are late, which travel on the other connection of the pair; " +
        "sent_datagram and received_datagram count the same copies sent as UDP datagrams.",
      labelNames: ["peer", "direction"],
      registers,
    });
    this.#peerSnapshots = new Counter({
      name: "blixard_peer_snapshots_total",
      help: "Snapshots sent to and received from each peer.",
      labelNames: ["peer", "direction"],
      registers,
    });
  }

  /** Records one durable write (or fdatasync) of the write-ahead log. Throws nothing. */
  observeFsync(durationMs: number): void {
    this.#fsyncLatency.observe(durationMs / 1000);
  }

  /** Where per-peer traffic counters are read at each scrape (the peer transport). */
  setPeerTrafficSource(source: () => ReadonlyMap<number, PeerTraffic>): void {
    this.#peerSource = source;
  }

  #observePeers(): void {
    const source = this.#peerSource;
    if (source === undefined) return;
    for (const [id, now] of source()) {
      const before = this.#peerSeen.get(id);
      const peer = String(id);
      const add = (
        counter: Counter<"peer" | "direction">,
        direction: string,
        delta: number,
      ): void => {
        // A counter never goes down; a restarted link's counters begin again from the new value.
        if (delta > 0) counter.inc({ peer, direction }, delta);
      };
      add(this.#peerMessages, "sent", now.sent - (before?.sent ?? 0));
      add(this.#peerMessages, "received", now.received - (before?.received ?? 0));
      add(this.#peerMessages, "dropped", now.dropped - (before?.dropped ?? 0));
      add(this.#peerMessages, "sent_back", now.sentBack - (before?.sentBack ?? 0));
      add(this.#peerMessages, "received_back", now.receivedBack - (before?.receivedBack ?? 0));
      add(this.#peerMessages, "sent_datagram", now.sentByDatagram - (before?.sentByDatagram ?? 0));
      add(
        this.#peerMessages,
        "received_datagram",
        now.receivedByDatagram - (before?.receivedByDatagram ?? 0),
      );
      add(this.#peerSnapshots, "sent", now.snapshotsSent - (before?.snapshotsSent ?? 0));
      add(
        this.#peerSnapshots,
        "received",
        now.snapshotsReceived - (before?.snapshotsReceived ?? 0),
      );
      this.#peerSeen.set(id, now);
    }
  }

  /** @inheritdoc */
  proposalFinished(namespace: string, outcome: string, durationMs: number): void {
    this.#proposalTally.add(namespace, outcome);
    this.#proposalLatency.observe(
      { namespace, outcome: outcome === "applied" ? "applied" : "refused" },
      durationMs / 1000,
    );
  }

  /** @inheritdoc */
  readFinished(
    namespace: string,
    consistency: ReadConsistency,
    outcome: string,
    durationMs: number,
  ): void {
    this.#readLatency.observe({ namespace, consistency, outcome }, durationMs / 1000);
  }

  /** Counts one HTTP request. Throws nothing. */
  httpRequest(method: string, route: string, status: number): void {
    this.#httpTally.add(method, route, status);
  }

  /** Counts one forwarded request. Throws nothing. */
  forwarded(outcome: string): void {
    this.#forwarded.inc({ outcome });
  }

  /**
   * Counts a leader change if `leader` (0: none known) differs from the last leader seen. The
   * node calls it on every change of its raft state, so no change is missed between scrapes.
   * Throws nothing.
   */
  observeLeader(leader: number): void {
    if (this.#lastLeader !== undefined && leader !== 0 && leader !== this.#lastLeader) {
      this.#leaderChanges.inc();
    }
    if (leader !== 0) this.#lastLeader = leader;
  }

  /** Updates the raft gauges from a status and counts a leader change. Throws nothing. */
  observeStatus(status: NodeStatusView): void {
    const leader = status.leader ?? 0;
    this.observeLeader(leader);
    this.#term.set(status.term);
    for (const role of Object.values(Role)) this.#role.set({ role }, role === status.role ? 1 : 0);
    this.#leader.set(leader);
    this.#commitIndex.set(status.commitIndex);
    this.#appliedIndex.set(status.appliedIndex);
    this.#lastIndex.set(status.lastIndex);
    this.#snapshotIndex.set(status.snapshotIndex);
    this.#pendingProposals.set(status.pendingProposals);
    const forwarded = status.proposalsForwarded - this.#proposalsForwardedSeen;
    if (forwarded > 0) this.#proposalsForwarded.inc(forwarded);
    this.#proposalsForwardedSeen = status.proposalsForwarded;
    this.#members.set(
      { suffrage: "voter" },
      new Set([...status.config.voters, ...status.config.votersOutgoing]).size,
    );
    this.#members.set({ suffrage: "learner" }, status.config.learners.length);
  }

  /** The Prometheus text exposition after refreshing the gauges from `status`. */
  async render(status: NodeStatusView): Promise<string> {
    this.observeStatus(status);
    this.#observePeers();
    this.#loopDelayMax.set(this.#loopDelay.maxSeconds);
    this.#loopDelayP99.set(this.#loopDelay.p99Seconds);
    this.#loopDelay.reset();
    return this.registry.metrics();
  }
}
