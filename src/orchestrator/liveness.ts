/**
 * The leader's worker liveness monitor (design brief §4, "Liveness"): a worker the leader has not
 * heard from for `deadAfterMs` is marked offline by a proposal, whose apply makes its tasks lost
 * (retried elsewhere while attempts remain) and moves its running VMs.
 *
 * "Heard from" is Raft's own traffic: the node records when any message from each peer last
 * arrived (a follower answers every heartbeat), so a sample every second or so is enough for a
 * dead-after time of seconds, and an idle node wakes for it rarely. A node that is not a
 * member any more is never heard from and goes offline the same way. The leader itself is
 * always alive. On becoming leader every worker gets a full `deadAfterMs` of grace, since the
 * new leader has no history.
 */
import { alignedDelayMs, type Clock, type TimerHandle } from "../common/clock.js";
import type { NodeId } from "../raft/types.js";
import type { OrchestratorQueries } from "../statemachine/orchestrator/queries.js";
import type { Logger } from "../common/logger.js";
import type { Proposer } from "./agent/ports.js";

/** Default time without a word from a worker before it is marked offline. */
export const DEFAULT_WORKER_DEAD_AFTER_MS = 10_000;

/** Default time between samples: a small part of the dead-after time. */
export const DEFAULT_LIVENESS_SAMPLE_MS = 1000;

/** What the monitor reads from the node. */
export interface LivenessView {
  /** This node's id. */
  readonly nodeId: NodeId;
  /** True while this node is the leader. */
  isLeader(): boolean;
  /** When a message from `peer` last arrived, on the monitor's clock; undefined if never. */
  lastHeardMs(peer: NodeId): number | undefined;
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
  /**
   * How often to sample; well below `deadAfterMs` (a gap over half of it counts as this monitor
   * having slept). Default {@link DEFAULT_LIVENESS_SAMPLE_MS}, or a quarter of `deadAfterMs` if
   * that is shorter.
   */
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
    this.#lastHeard.set(view.nodeId, now);
    for (const worker of workers) {
      if (worker.status === "offline") {
        // Forget when it was last heard: once it registers again it gets a fresh grace period,
        // rather than being judged by the silence that made it offline.
        this.#lastHeard.delete(worker.nodeId);
        continue;
      }
      let heard = this.#lastHeard.get(worker.nodeId);
      if (heard === undefined) {
        // Registered after this node became leader: its grace starts now.
        this.#lastHeard.set(worker.nodeId, now);
        continue;
      }
      const arrived = view.lastHeardMs(worker.nodeId);
      if (arrived !== undefined && arrived > heard) {
        heard = arrived;
        this.#lastHeard.set(worker.nodeId, heard);
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
      // Applied: the silence is spent. A worker that registers again before the next sample
      // (which would otherwise never see it offline) gets a fresh grace, not the same silence
      // once more: judged by it, each of its new attempts was marked lost at the next sample.
      .then(() => this.#lastHeard.delete(nodeId))
      .catch((error: unknown) =>
        this.#options.log.warn("could not mark worker offline", {
          worker: nodeId,
          error: (error as Error).message,
        }),
      )
      .finally(() => this.#proposing.delete(nodeId));
  }

  /** On the grid of the node's other periodic checks (alignedDelayMs): no wake-up of its own. */
  #schedule(): void {
    const { clock } = this.#options;
    const everyMs =
      this.#options.sampleEveryMs ?? Math.min(DEFAULT_LIVENESS_SAMPLE_MS, this.#deadAfterMs / 4);
    this.#timer = clock.setTimer(alignedDelayMs(clock.now(), everyMs), () => {
      if (this.#closed) return;
      this.sample();
      this.#schedule();
    });
  }
}
