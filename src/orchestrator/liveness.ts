/**
 * The leader's worker liveness monitor (design brief §4, "Liveness"): a worker the leader has not
 * heard from for `deadAfterMs` is marked offline by a proposal, whose apply makes its tasks lost
 * (retried elsewhere while attempts remain) and moves its running VMs.
 *
 * "Heard from" is Raft's own traffic: the leader's progress tracker marks a peer recently active
 * whenever a message from it arrives (check-quorum resets the marks every election timeout), so
 * sampling it more often than that tells when each peer was last heard. A node that is not a
 * member any more is never heard from and goes offline the same way. The leader itself is
 * always alive. On becoming leader every worker gets a full `deadAfterMs` of grace, since the
 * new leader has no history.
 */
import type { Clock, TimerHandle } from "../common/clock.js";
import type { NodeId } from "../raft/types.js";
import type { OrchestratorQueries } from "../statemachine/orchestrator/queries.js";
import type { Logger } from "../common/logger.js";
import type { Proposer } from "./agent/ports.js";

/** Default time without a word from a worker before it is marked offline. */
export const DEFAULT_WORKER_DEAD_AFTER_MS = 10_000;

/** What the monitor reads from the node. */
export interface LivenessView {
  /** This node's id. */
  readonly nodeId: NodeId;
  /** True while this node is the leader. */
  isLeader(): boolean;
  /** Peers the leader heard from since the last reset of the marks (empty on a follower). */
  recentlyActivePeers(): ReadonlySet<NodeId>;
}

/** Options of {@link LivenessMonitor}. */
export interface LivenessMonitorOptions {
  readonly view: LivenessView;
  readonly queries: OrchestratorQueries;
  /** Proposes on this node (it is the leader when it proposes). */
  readonly proposer: Proposer;
  readonly clock: Clock;
  readonly log: Logger;
  /** Default {@link DEFAULT_WORKER_DEAD_AFTER_MS}. */
  readonly deadAfterMs?: number;
  /** How often to sample; keep it below the election timeout. Default 100 ms. */
  readonly sampleEveryMs?: number;
}

/** See the module comment. */
export class LivenessMonitor {
  readonly #options: LivenessMonitorOptions;
  readonly #deadAfterMs: number;
  readonly #lastHeard = new Map<NodeId, number>();
  readonly #proposing = new Set<NodeId>();
  #wasLeader = false;
  #lastSampleMs: number | undefined;
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(options: LivenessMonitorOptions) {
    this.#options = options;
    this.#deadAfterMs = options.deadAfterMs ?? DEFAULT_WORKER_DEAD_AFTER_MS;
  }

  /** Starts sampling. */
  start(): void {
    this.#schedule();
  }

  /** Stops sampling. */
  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
  }

  /** One sample (exposed for tests). Throws nothing. */
  sample(): void {
    const { view, clock, queries } = this.#options;
    const now = clock.now();
    if (!view.isLeader()) {
      this.#wasLeader = false;
      this.#lastHeard.clear();
      return;
    }
    const workers = queries.workers();
    // A monitor that did not run for half the dead-after time (its process was paused or
    // starved) cannot tell silence from its own sleep: like a new leader, it starts over.
    const slept =
      this.#lastSampleMs !== undefined && now - this.#lastSampleMs > this.#deadAfterMs / 2;
    this.#lastSampleMs = now;
    if (!this.#wasLeader || slept) {
      this.#wasLeader = true;
      for (const w of workers) this.#lastHeard.set(w.nodeId, now);
    }
    for (const id of view.recentlyActivePeers()) this.#lastHeard.set(id, now);
    this.#lastHeard.set(view.nodeId, now);
    for (const worker of workers) {
      if (worker.status === "offline") {
        // Forget when it was last heard: once it registers again it gets a fresh grace period,
        // rather than being judged by the silence that made it offline.
        this.#lastHeard.delete(worker.nodeId);
        continue;
      }
      const heard = this.#lastHeard.get(worker.nodeId);
      if (heard === undefined) {
        // Registered after this node became leader: its grace starts now.
        this.#lastHeard.set(worker.nodeId, now);
        continue;
      }
      if (now - heard >= this.#deadAfterMs) this.#markOffline(worker.nodeId, now - heard);
    }
  }

  #markOffline(nodeId: NodeId, silentMs: number): void {
    if (this.#proposing.has(nodeId)) return;
    this.#proposing.add(nodeId);
    this.#options.log.warn("worker not heard from; marking it offline", {
      worker: nodeId,
      silentMs: Math.round(silentMs),
    });
    this.#options.proposer
      .propose({ type: "markWorkerOffline", nodeId })
      .catch((error: unknown) =>
        this.#options.log.warn("could not mark worker offline", {
          worker: nodeId,
          error: (error as Error).message,
        }),
      )
      .finally(() => this.#proposing.delete(nodeId));
  }

  #schedule(): void {
    this.#timer = this.#options.clock.setTimer(this.#options.sampleEveryMs ?? 100, () => {
      if (this.#closed) return;
      this.sample();
      this.#schedule();
    });
  }
}
