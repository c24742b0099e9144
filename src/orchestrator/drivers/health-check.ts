/**
 * A VM's health check on the node that runs it: a probe every `intervalMs`, each limited to
 * `timeoutMs`; after `failureThreshold` failures in a row the guest is unhealthy, and one success
 * makes it healthy again. What a probe is (a TCP connection through QEMU's forward, a command
 * through the guest agent) is the driver's; this file only counts and times.
 *
 * {@link HealthTally} is the counting on its own (no time, no I/O), {@link watchHealth} the loop on
 * the `Clock` port, so both are tested with a manual clock. The first probe runs at once (the
 * guest has just announced readiness, so its services should be up), the next ones `intervalMs`
 * after the start of the previous one (the timeout is at most the interval: probes never overlap).
 *
 * Unhealthy is observed, never acted on: the supervisor reports it and the restart policy does
 * not apply (a guest that stays up but fails its check keeps running; stop or restart it by hand).
 */
import type { Clock } from "../../common/clock.js";
import type { VmHealthCheck } from "../../statemachine/orchestrator/types.js";
import { delay } from "./timing.js";

/** The longest probe failure reason kept (the report carries it as the VM's last error). */
const MAX_REASON_CHARS = 512;

/** A change of health: `healthy` false with the reason after the threshold, true on recovery. */
export interface HealthChange {
  readonly healthy: boolean;
  /** Why it turned unhealthy (the failures in a row and the last one's reason); "" on recovery. */
  readonly reason: string;
}

/** Counts probe outcomes into health changes (see the module comment). */
export class HealthTally {
  #failuresInRow = 0;
  #healthy = true;

  /** @param failureThreshold failures in a row that make the guest unhealthy (at least 1). */
  constructor(private readonly failureThreshold: number) {
    if (!Number.isInteger(failureThreshold) || failureThreshold < 1) {
      throw new RangeError(`failureThreshold must be an integer ≥ 1, got ${failureThreshold}`);
    }
  }

  /** True until the threshold is reached, and again after a success. */
  get healthy(): boolean {
    return this.#healthy;
  }

  /** Takes a success; returns the change it makes (back to healthy), or undefined. */
  success(): HealthChange | undefined {
    this.#failuresInRow = 0;
    if (this.#healthy) return undefined;
    this.#healthy = true;
    return { healthy: true, reason: "" };
  }

  /** Takes a failure; returns the change it makes (to unhealthy, once), or undefined. */
  failure(reason: string): HealthChange | undefined {
    this.#failuresInRow += 1;
    if (!this.#healthy || this.#failuresInRow < this.failureThreshold) return undefined;
    this.#healthy = false;
    const times = this.#failuresInRow === 1 ? "once" : `${this.#failuresInRow} times in a row`;
    return {
      healthy: false,
      reason: `health check failed ${times}: ${reason.slice(0, MAX_REASON_CHARS)}`,
    };
  }
}

/**
 * One probe: resolves when the guest is healthy, rejects with an Error saying why not. It must
 * give up soon after `signal` aborts (the probe's timeout, or the end of the watch).
 */
export type HealthProbe = (signal: AbortSignal) => Promise<void>;

/** What {@link watchHealth} needs. */
export interface WatchHealthOptions {
  readonly clock: Clock;
  readonly check: Pick<VmHealthCheck, "intervalMs" | "timeoutMs" | "failureThreshold">;
  readonly probe: HealthProbe;
  /** Called on each change of health (never twice in a row with the same `healthy`). */
  readonly onChange: (change: HealthChange) => void;
}

/** A running health watch. */
export interface HealthWatch {
  /** Ends the watch: no probe starts and no change is reported after this. Idempotent. */
  stop(): void;
  /** Settles once the loop has ended (after {@link stop}). Never rejects. */
  readonly done: Promise<void>;
}

/** Starts probing at once; see the module comment. Throws nothing. */
export function watchHealth(options: WatchHealthOptions): HealthWatch {
  const { clock, check, probe, onChange } = options;
  const tally = new HealthTally(check.failureThreshold);
  const stopped = new AbortController();
  const loop = async (): Promise<void> => {
    while (!stopped.signal.aborted) {
      const startedMs = clock.now();
      const outcome = await probeWithin(clock, probe, check.timeoutMs, stopped.signal);
      if (stopped.signal.aborted) return;
      const change = outcome === undefined ? tally.success() : tally.failure(outcome);
      if (change !== undefined) onChange(change);
      const waitMs = Math.max(0, check.intervalMs - (clock.now() - startedMs));
      if (!(await delay(clock, waitMs, stopped.signal))) return;
    }
  };
  return { stop: () => stopped.abort(), done: loop() };
}

/** Runs one probe under its timeout: undefined if it passed, else the reason. Never rejects. */
async function probeWithin(
  clock: Clock,
  probe: HealthProbe,
  timeoutMs: number,
  stopped: AbortSignal,
): Promise<string | undefined> {
  const limit = new AbortController();
  const onStop = (): void => limit.abort();
  stopped.addEventListener("abort", onStop, { once: true });
  let timedOut = false;
  const timer = clock.setTimer(timeoutMs, () => {
    timedOut = true;
    limit.abort();
  });
  // The probe may not settle promptly on abort: the timeout decides, whatever it does later.
  const expired = new Promise<string>((resolve) =>
    limit.signal.addEventListener("abort", () => resolve(`timed out after ${timeoutMs} ms`), {
      once: true,
    }),
  );
  try {
    return await Promise.race([
      probe(limit.signal).then(
        () => (timedOut ? `timed out after ${timeoutMs} ms` : undefined),
        (error: unknown) =>
          timedOut
            ? `timed out after ${timeoutMs} ms`
            : error instanceof Error
              ? error.message
              : String(error),
      ),
      expired,
    ]);
  } finally {
    timer.cancel();
    stopped.removeEventListener("abort", onStop);
    limit.abort();
  }
}
