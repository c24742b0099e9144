/**
 * The supervision loop both VM drivers share: start a run, report it running, and when it ends by
 * itself apply the restart policy (backoff, limit); stop on request. What a run is (a command, a
 * QEMU with its monitor) is the driver's {@link Launcher}.
 */
import type { Clock } from "../../common/clock.js";
import { CancelledError, UnavailableError } from "../../common/errors.js";
import type { RestartPolicy } from "../../statemachine/orchestrator/types.js";
import { MAX_REPORTED_ERROR_BYTES } from "./limits.js";
import { truncateUtf8 } from "./output-capture.js";
import type { HealthChange, HealthWatch } from "./health-check.js";
import { describeExit, type ExitStatus } from "./process-group.js";
import { decideAfterExit } from "./restart-policy.js";
import { delay } from "./timing.js";
import type {
  MigrationStats,
  MigrationTarget,
  VmHandle,
  VmObservation,
  VmObservedStatus,
  VmStopMethod,
  VmStopResult,
} from "./vm-driver.js";

/** One run of a VM, as its driver started it. */
export interface LaunchedRun {
  readonly pid: number;
  /** Settles (never rejects) once the run has ended and nothing of it is left. */
  readonly exited: Promise<ExitStatus>;
  /** Stops the run the driver's way; resolves, once it has exited, with how. Never rejects. */
  stop(graceMs: number): Promise<VmStopMethod>;
  /**
   * When the run has a guest that announces readiness: resolves once it did (the VM is then
   * `running`; until then `booting`), rejects with the reason when it will not (timeout; the
   * message carries the last console lines). The supervisor then kills the run and treats it as
   * a failure. Absent: the run is `running` as soon as it is launched.
   */
  readonly ready?: Promise<void>;
  /**
   * When the run has a health check: starts it (see `health-check.ts`); the supervisor calls it
   * once the VM is `running` and stops the watch when the run ends or is stopped. Each change
   * turns the VM `unhealthy` (with the reason as its last error) or `running` again (with the
   * last error it had before).
   */
  watchHealth?(onChange: (change: HealthChange) => void): HealthWatch;
  /** Sends the running VM away (see `VmHandle.migrate`); absent: the run cannot migrate. */
  migrate?(to: MigrationTarget): Promise<MigrationStats>;
  /** Runs the VM here again after a completed migration (see `VmHandle.resume`). */
  resume?(): Promise<void>;
  /** An incoming run: where its QEMU waits for the stream, once it does (see `VmObservation`). */
  readonly incomingUri?: string;
  /** An incoming run of a VM with a disk: where the disk takes the source's copy. */
  readonly incomingDiskUri?: string;
}

/** How a driver starts runs of one VM. */
export interface Launcher {
  /**
   * Starts a run and resolves once it is running (for QEMU: its monitor answered). Rejects with
   * an error saying why it could not start, leaving nothing running; rejects with
   * `CancelledError` when `signal` aborts first.
   */
  launch(signal: AbortSignal): Promise<LaunchedRun>;
  /** Writes one line about the supervision into the VM's log. */
  note(line: string): void;
  /** Called once after the final status (to flush and close the log); `settled` waits for it. */
  close(): Promise<void>;
}

/** What a supervisor needs. */
export interface SupervisorOptions {
  readonly name: string;
  readonly policy: RestartPolicy;
  readonly clock: Clock;
  readonly launcher: Launcher;
  readonly onChange: (observation: VmObservation) => void;
  readonly previousRestarts: number;
  /** The grace period of a stop that names none. */
  readonly defaultGraceMs: number;
  /**
   * The first run is an incoming migration: if it fails before it is `running`, the VM fails for
   * good (the source still runs it; a restart here would boot a second copy).
   */
  readonly incoming?: boolean;
}

/** Supervises one VM from its first start until it is stopped or fails for good. */
export class Supervisor implements VmHandle {
  readonly name: string;
  readonly settled: Promise<VmObservation>;
  private observation: VmObservation;
  private readonly stopController = new AbortController();
  private stopGraceMs = 0;
  private current: LaunchedRun | undefined;
  private health: HealthWatch | undefined;
  /** The last error from before the guest turned unhealthy, given back when it recovers. */
  private errorBeforeUnhealthy = "";
  private stopMethod: Promise<VmStopMethod> | undefined;
  /** True once a run reached `running` (the guest is up); for {@link SupervisorOptions.incoming}. */
  private everRan = false;
  private stopResult: Promise<VmStopResult> | undefined;

  /** Starts the first run on the next microtask (so `onChange` never runs inside `start`). */
  constructor(private readonly options: SupervisorOptions) {
    this.name = options.name;
    this.observation = {
      name: options.name,
      status: "starting",
      restarts: options.previousRestarts,
      lastError: "",
      pid: null,
      restartInMs: null,
    };
    this.settled = Promise.resolve()
      .then(() => this.supervise())
      .then(async (final) => {
        // The log is best effort: failing to close it does not change how the VM ended.
        await options.launcher.close().catch(() => undefined);
        return final;
      });
  }

  /** @inheritdoc */
  observe(): VmObservation {
    return this.observation;
  }

  /** @inheritdoc */
  stop(options?: { readonly graceMs?: number }): Promise<VmStopResult> {
    this.stopResult ??= this.stopOnce(options?.graceMs ?? this.options.defaultGraceMs);
    return this.stopResult;
  }

  private async stopOnce(graceMs: number): Promise<VmStopResult> {
    if (isFinal(this.observation.status)) {
      return { observation: this.observation, method: "not-running" };
    }
    this.stopGraceMs = graceMs;
    this.stopController.abort();
    if (this.current !== undefined) this.stopRun(this.current);
    const observation = await this.settled;
    return { observation, method: await (this.stopMethod ?? Promise.resolve("not-running")) };
  }

  private stopRun(run: LaunchedRun): void {
    this.health?.stop();
    this.update({ status: "stopping" });
    this.options.launcher.note(`stopping (grace ${this.stopGraceMs} ms)`);
    this.stopMethod = run.stop(this.stopGraceMs);
  }

  private get stopRequested(): boolean {
    return this.stopController.signal.aborted;
  }

  private async supervise(): Promise<VmObservation> {
    const { launcher, policy, clock } = this.options;
    this.update({});
    for (;;) {
      let failure: string | undefined;
      try {
        const run = await launcher.launch(this.stopController.signal);
        this.current = run;
        if (run.incomingUri !== undefined) {
          this.update({
            incomingUri: run.incomingUri,
            ...(run.incomingDiskUri === undefined ? {} : { incomingDiskUri: run.incomingDiskUri }),
          });
        }
        if (this.stopRequested) this.stopRun(run);
        else if (run.ready !== undefined) {
          this.update({ status: "booting", pid: run.pid, restartInMs: null });
          launcher.note(`booting as pid ${run.pid}`);
          failure = await this.awaitReady(run, run.ready);
        } else {
          this.update({ status: "running", pid: run.pid, restartInMs: null });
          launcher.note(`running as pid ${run.pid}`);
        }
        if (!this.stopRequested && this.observation.status === "running") {
          this.health = run.watchHealth?.((change) => this.onHealth(change));
        }
        const exit = await run.exited;
        this.health?.stop();
        this.health = undefined;
        this.current = undefined;
        if (failure === undefined && (exit.code !== 0 || exit.signal !== null)) {
          failure = describeExit(exit);
        }
        launcher.note(`pid ${run.pid} ${describeExit(exit)}`);
      } catch (error) {
        if (!(error instanceof CancelledError && this.stopRequested)) {
          failure = error instanceof Error ? error.message : String(error);
          launcher.note(`could not start: ${failure}`);
        }
      }
      if (this.stopRequested) return this.finish("stopped");
      if (this.options.incoming === true && !this.everRan) {
        const why = failure ?? "the machine ended before the migration completed";
        return this.finish("failed", truncateUtf8(why, MAX_REPORTED_ERROR_BYTES));
      }
      const decision = decideAfterExit(policy, this.observation.restarts, failure === undefined);
      const lastError =
        failure === undefined
          ? this.observation.lastError
          : truncateUtf8(failure, MAX_REPORTED_ERROR_BYTES);
      if (decision.action !== "restart") return this.finish(decision.action, lastError);

      this.update({ status: "starting", pid: null, lastError, restartInMs: decision.delayMs });
      launcher.note(
        `restart ${this.observation.restarts + 1} of ${policy.maxRestarts} in ${decision.delayMs} ms`,
      );
      if (!(await delay(clock, decision.delayMs, this.stopController.signal))) {
        return this.finish("stopped");
      }
      this.update({ restarts: this.observation.restarts + 1, restartInMs: null });
    }
  }

  /**
   * Waits for a booting run's guest: `running` once it is ready; on a readiness failure the run
   * is killed (stop with no grace) and the failure returned. A run that exits first failed too,
   * even with exit code 0 (a guest that reboots at once: qboot cannot load the kernel into too
   * little memory, measured at 64 MB); a stop asked meanwhile returns undefined.
   */
  private async awaitReady(run: LaunchedRun, ready: Promise<void>): Promise<string | undefined> {
    const outcome = await Promise.race([
      ready.then(
        () => ({ kind: "ready" as const }),
        (error: unknown) => ({ kind: "failed" as const, error }),
      ),
      run.exited.then(() => ({ kind: "exited" as const })),
    ]);
    if (this.stopRequested) return undefined;
    if (outcome.kind === "exited") {
      return `the machine ${describeExit(await run.exited)} before its guest announced readiness`;
    }
    if (outcome.kind === "ready") {
      this.update({ status: "running" });
      this.options.launcher.note(`guest ready; running as pid ${run.pid}`);
      return undefined;
    }
    const failure = outcome.error instanceof Error ? outcome.error.message : String(outcome.error);
    this.options.launcher.note(`guest not ready: ${failure}`);
    await run.stop(0);
    return failure;
  }

  /** A change of the running guest's health: `unhealthy` or `running` again (never while stopping). */
  private onHealth(change: HealthChange): void {
    const { status } = this.observation;
    if (this.stopRequested || (status !== "running" && status !== "unhealthy")) return;
    if (change.healthy) {
      this.update({ status: "running", lastError: this.errorBeforeUnhealthy });
      this.options.launcher.note("health check passed again; running");
    } else {
      const lastError = truncateUtf8(change.reason, MAX_REPORTED_ERROR_BYTES);
      this.errorBeforeUnhealthy = this.observation.lastError;
      this.update({ status: "unhealthy", lastError });
      this.options.launcher.note(`unhealthy: ${change.reason}`);
    }
  }

  private finish(
    status: "stopped" | "failed",
    lastError = this.observation.lastError,
  ): VmObservation {
    this.update({ status, pid: null, lastError, restartInMs: null });
    this.options.launcher.note(status === "failed" ? `failed for good: ${lastError}` : "stopped");
    return this.observation;
  }

  /** @inheritdoc */
  migrate(to: MigrationTarget): Promise<MigrationStats> {
    const run = this.current;
    const status = this.observation.status;
    if (run?.migrate === undefined || (status !== "running" && status !== "unhealthy")) {
      return Promise.reject(
        new UnavailableError(
          `VM ${this.name} is ${status} here, not running; it cannot be migrated now`,
        ),
      );
    }
    return run.migrate(to);
  }

  /** @inheritdoc */
  resume(): Promise<void> {
    return this.current?.resume?.() ?? Promise.resolve();
  }

  private update(change: Partial<Omit<VmObservation, "name">>): void {
    if (change.status === "running") this.everRan = true;
    this.observation = { ...this.observation, ...change };
    const observation = this.observation;
    try {
      this.options.onChange(observation);
    } catch (error) {
      // A throwing callback is the agent's bug: surface it without breaking supervision.
      setImmediate(() => {
        throw error;
      });
    }
  }
}

function isFinal(status: VmObservedStatus): boolean {
  return status === "stopped" || status === "failed";
}
