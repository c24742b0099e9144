/**
 * What the service layer reports about the work it does, as a port: the raft service calls it,
 * the Prometheus registry (`metrics.ts`) implements it, tests may ignore it.
 */
import type { ReadConsistency } from "./service.js";

/** Observations of the service layer. */
export interface ServiceMetricsSink {
  /**
   * A proposal finished: `outcome` is `applied` or the error code (or state machine reason) that
   * refused it; `durationMs` runs from proposing to the result being applied here.
   */
  proposalFinished(outcome: string, durationMs: number): void;
  /** A read finished; `durationMs` includes the ReadIndex round of a linearizable read. */
  readFinished(consistency: ReadConsistency, outcome: string, durationMs: number): void;
}

/** A sink that records nothing. */
export const NO_SERVICE_METRICS: ServiceMetricsSink = Object.freeze({
  proposalFinished: () => undefined,
  readFinished: () => undefined,
});
