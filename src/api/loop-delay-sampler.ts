/**
 * How late this process's event loop runs: a timer of its own records, each time it runs, how
 * long after its due time it ran (a stall of the loop delays every timer and every message
 * alike). The sampling interval adapts to the loop's work: `busyIntervalMs` (20 ms) after a
 * period in which the loop was busy at least {@link BUSY_UTILIZATION} of the time, else the next
 * multiple of `idleIntervalMs` (250 ms) on the clock, the grid the node's other periodic checks
 * use (`alignedDelayMs`), so that an idle node's samples share their wake-ups. Node's
 * `monitorEventLoopDelay` samples at a fixed rate instead: at 20 ms it woke an idle node 50
 * times a second, two thirds of all its wake-ups (cheap ones, no JavaScript runs: with the
 * other idle changes, removing them took 10–25 % off an idle node's CPU, not two thirds).
 *
 * What the slower idle rate gives up: a stall that starts while the loop idles is seen only if
 * it lasts past the pending sample's due time, so one shorter than the idle interval may be
 * missed and a longer one is reported up to that interval short. Stalls that matter (those
 * that cost an election or cut off an agent, hundreds of ms) are always seen; and the sample
 * after a stall finds the loop busy and samples every 20 ms again.
 */
import { createHistogram, performance, type EventLoopUtilization } from "node:perf_hooks";
import { alignedDelayMs } from "../common/clock.js";

/** Busy fraction of a period (event loop utilization) from which the next one is sampled finely. */
const BUSY_UTILIZATION = 0.05;

/** Options of a {@link LoopDelaySampler}. */
export interface LoopDelaySamplerOptions {
  /** Interval after a busy period, in ms. Default 20. */
  readonly busyIntervalMs?: number;
  /** The grid idle samples are taken on, in ms. Default 250. */
  readonly idleIntervalMs?: number;
  /** The clock of that grid, epoch ms (default: the real clock's, as `SystemClock`'s). */
  readonly now?: () => number;
  /**
   * The loop's utilization since `previous` (default: Node's
   * `performance.eventLoopUtilization`); only tests replace it.
   */
  readonly utilization?: (previous?: EventLoopUtilization) => EventLoopUtilization;
}

/** See the module comment. Not started until {@link start}; its timer never keeps the process alive. */
export class LoopDelaySampler {
  readonly #busyIntervalMs: number;
  readonly #idleIntervalMs: number;
  readonly #utilization: (previous?: EventLoopUtilization) => EventLoopUtilization;
  readonly #now: () => number;
  /** Lateness of each sample since the last reset, in ns (the histogram takes integers ≥ 1). */
  readonly #lateNs = createHistogram();
  #timer: NodeJS.Timeout | undefined;
  #intervalMs: number;
  #dueAtMs = 0;
  #lastUtilization: EventLoopUtilization | undefined;
  /** Samples taken since start (not reset by {@link reset}): for tests and diagnostics. */
  #samples = 0;

  constructor(options: LoopDelaySamplerOptions = {}) {
    this.#busyIntervalMs = options.busyIntervalMs ?? 20;
    this.#idleIntervalMs = options.idleIntervalMs ?? 250;
    this.#utilization =
      options.utilization ?? ((previous) => performance.eventLoopUtilization(previous));
    this.#now = options.now ?? (() => performance.timeOrigin + performance.now());
    this.#intervalMs = this.#busyIntervalMs;
  }

  /** Starts sampling (at the busy interval). Idempotent. */
  start(): void {
    if (this.#timer !== undefined) return;
    this.#lastUtilization = this.#utilization();
    this.#intervalMs = this.#busyIntervalMs;
    this.#arm();
  }

  /** Stops sampling; what was recorded stays readable. */
  stop(): void {
    if (this.#timer !== undefined) clearTimeout(this.#timer);
    this.#timer = undefined;
  }

  /** Samples recorded since the last {@link reset}. */
  get count(): number {
    return this.#lateNs.count;
  }

  /** Samples taken since {@link start}. */
  get samples(): number {
    return this.#samples;
  }

  /** The delay the next sample was armed with, in ms. */
  get intervalMs(): number {
    return this.#intervalMs;
  }

  /** The latest sample since the last {@link reset}, in seconds (0 if none). */
  get maxSeconds(): number {
    return this.count === 0 ? 0 : this.#lateNs.max / 1e9;
  }

  /** The 99th percentile of the samples since the last {@link reset}, in seconds (0 if none). */
  get p99Seconds(): number {
    return this.count === 0 ? 0 : this.#lateNs.percentile(99) / 1e9;
  }

  /** Forgets the samples (each scrape reports the period since the previous one). */
  reset(): void {
    this.#lateNs.reset();
  }

  #arm(): void {
    this.#dueAtMs = performance.now() + this.#intervalMs;
    this.#timer = setTimeout(() => this.#sample(), this.#intervalMs);
    this.#timer.unref();
  }

  #sample(): void {
    const lateMs = performance.now() - this.#dueAtMs;
    // A timer can run a fraction of a millisecond early (Node's loop clock is whole ms).
    this.#lateNs.record(Math.max(1, Math.round(lateMs * 1e6)));
    this.#samples++;
    const now = this.#utilization();
    const period = this.#utilization(this.#lastUtilization);
    this.#lastUtilization = now;
    this.#intervalMs =
      period.utilization >= BUSY_UTILIZATION
        ? this.#busyIntervalMs
        : alignedDelayMs(this.#now(), this.#idleIntervalMs);
    this.#arm();
  }
}
