/**
 * Large-state runs: a background writer that grows the state with big values on keys of its
 * own (never the workload's, so the linearizability history is unaffected), through whichever
 * node leads. Its outcomes are ignored; the safety checker still sees every applied entry.
 * It draws no randomness, so it changes nothing in runs without it.
 */
import type { SimCluster } from "./cluster.js";
import type { Scheduler } from "./scheduler.js";
import { kvCommandEntry } from "./commands.js";

/** How the ballast writes. */
export interface BallastOptions {
  /** Distinct ballast keys (the state holds about keys × valueBytes). */
  readonly keys: number;
  readonly valueBytes: number;
  /** One write every this many ms. */
  readonly intervalMs: number;
}

/** The background writer of a large-state run. */
export class Ballast {
  private written = 0;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly cluster: SimCluster,
    private readonly options: BallastOptions,
  ) {}

  /** Writes proposed so far. */
  get proposed(): number {
    return this.written;
  }

  /** Writes until `stop()` returns true. */
  start(stop: () => boolean): void {
    const step = (): void => {
      if (stop()) return;
      this.writeOnce();
      this.scheduler.schedule(this.options.intervalMs, step);
    };
    this.scheduler.schedule(this.options.intervalMs, step);
  }

  private writeOnce(): void {
    const leader = this.cluster
      .liveIds()
      .map((id) => this.cluster.runningNode(id))
      .find((node) => node?.isLeader === true);
    if (leader === undefined) return;
    const n = this.written++;
    const value = new Uint8Array(this.options.valueBytes).fill(n % 251);
    const data = kvCommandEntry(
      { op: "put", key: `ballast-${n % this.options.keys}`, value },
      { nowMs: this.scheduler.now() },
    );
    leader.propose(data).catch(() => undefined);
  }
}
