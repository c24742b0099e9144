/**
 * The leader's drain deadline monitor: a worker drained with a deadline keeps its running tasks
 * until log time passes the deadline recorded in the replicated model (`drainDeadlineMs`); then
 * the leader proposes `drainDeadlineReached`, whose apply moves what is left (attempt given back)
 * and makes the worker `drained`.
 *
 * Apply never reads a clock, so something must notice that time has passed: this monitor, on
 * whichever node leads. It reads the deadlines from the applied model, never from its own memory,
 * so a new leader picks up every pending deadline on its first sample, and a deadline that passed
 * while there was no leader is acted on at once. It samples every `sampleEveryMs` and, when a
 * deadline is nearer than that, wakes at the deadline itself. A proposal the model refuses (log
 * time still before the deadline, after a leader change between clocks that disagree) is simply
 * made again on a later sample; the command is idempotent, so a duplicate changes nothing.
 */
import { alignedDelayMs, type Clock, type TimerHandle } from "../common/clock.js";
import type { Logger } from "../common/logger.js";
import type { NodeId } from "../raft/types.js";
import type { OrchestratorQueries } from "../statemachine/orchestrator/queries.js";
import type { Proposer } from "./agent/ports.js";

/** Default time between samples when no deadline is nearer. */
export const DEFAULT_DRAIN_SAMPLE_MS = 1000;

/** Options of {@link DrainDeadlineMonitor}. */
export interface DrainDeadlineMonitorOptions {
  /** True while this node is the leader. */
  readonly isLeader: () => boolean;
  readonly queries: OrchestratorQueries;
  /** Proposes on this node (it is the leader when it proposes). */
  readonly proposer: Proposer;
  /** The clock proposals take their `proposedAtMs` from (log time is made of it). */
  readonly clock: Clock;
  readonly log: Logger;
  /** Default {@link DEFAULT_DRAIN_SAMPLE_MS}. */
  readonly sampleEveryMs?: number;
}

/** See the module comment. */
export class DrainDeadlineMonitor {
  readonly #options: DrainDeadlineMonitorOptions;
  readonly #sampleEveryMs: number;
  readonly #proposing = new Set<NodeId>();
  #timer: TimerHandle | undefined;
  #closed = false;

  constructor(options: DrainDeadlineMonitorOptions) {
    this.#options = options;
    this.#sampleEveryMs = options.sampleEveryMs ?? DEFAULT_DRAIN_SAMPLE_MS;
  }

  /** Starts sampling. */
  start(): void {
    this.#schedule(this.#sampleEveryMs);
  }

  /** Stops sampling. */
  close(): void {
    this.#closed = true;
    this.#timer?.cancel();
  }

  /**
   * One sample (exposed for tests): proposes `drainDeadlineReached` for each worker whose
   * deadline has passed on this leader's clock, and returns how long until the next sample
   * should run. Throws nothing.
   */
  sample(): number {
    const { isLeader, queries, clock } = this.#options;
    if (!isLeader()) return this.#sampleEveryMs;
    const now = clock.now();
    let nextMs = this.#sampleEveryMs;
    for (const worker of queries.workers()) {
      const deadline = worker.drainDeadlineMs;
      if (worker.status !== "draining" || deadline === undefined) continue;
      if (deadline <= now) this.#propose(worker.nodeId, now - deadline);
      else nextMs = Math.min(nextMs, deadline - now);
    }
    return nextMs;
  }

  #propose(nodeId: NodeId, lateMs: number): void {
    if (this.#proposing.has(nodeId)) return;
    this.#proposing.add(nodeId);
    const { log, proposer } = this.#options;
    log.info("drain deadline passed; moving the worker's remaining tasks", {
      worker: nodeId,
      lateMs: Math.round(lateMs),
    });
    proposer
      .propose({ type: "drainDeadlineReached", nodeId })
      .catch((error: unknown) =>
        log.warn("could not end a drain at its deadline; will try again", {
          worker: nodeId,
          error: (error as Error).message,
        }),
      )
      .finally(() => this.#proposing.delete(nodeId));
  }

  /** A deadline sooner than a sample is kept to; samples go on the grid of the node's checks. */
  #schedule(delayMs: number): void {
    const { clock } = this.#options;
    const alignedMs =
      delayMs < this.#sampleEveryMs ? delayMs : alignedDelayMs(clock.now(), this.#sampleEveryMs);
    this.#timer = clock.setTimer(alignedMs, () => {
      if (this.#closed) return;
      this.#schedule(this.sample());
    });
  }
}
