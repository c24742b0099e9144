/**
 * Delivers an agent's reports (proposals) to the cluster: one in flight per key, the newest
 * report for a key replacing one not yet sent, retried with backoff while the cluster cannot
 * take it (no leader, overloaded, timeouts) and dropped when the cluster refuses it for good
 * (the model moved on: CONFLICT, or INVALID_ARGUMENT). Reports are idempotent in the model
 * (they name the node and the attempt), so a retry of one that did apply is harmless.
 *
 * Batching: the reports queued within one turn, or while the previous batch is in flight, go
 * out together as one `agentReports` command (one request, one log entry; see `report-batch.ts`
 * for its bounds); a lone report goes as its own command, as before. One batch is in flight at a
 * time, so under load batches grow with the cluster's latency instead of the requests
 * multiplying. Each report of a batch keeps its own fate: the batch answers one outcome per
 * report, and each is settled as if it had been sent alone (applied, retried, or dropped).
 * A batch that fails as a whole with a transient error retries each report with its own
 * backoff; one refused as a whole for good (INVALID_ARGUMENT, TOO_LARGE, …: one malformed
 * report, or a server or cluster that does not take batches yet) sends each report on its own
 * instead, and INVALID_ARGUMENT also stops batching for {@link SINGLES_AFTER_REFUSAL_MS}, so an
 * agent talking to a cluster mid-upgrade costs one refused request per pause, not per report.
 * Commands that are not agent reports (or carry no node) are always sent on their own.
 */
import type { Clock, TimerHandle } from "../../common/clock.js";
import { isBlixardError } from "../../common/errors.js";
import type { Logger } from "../../common/logger.js";
import type { AgentReport, OrchestratorCommand } from "../../statemachine/orchestrator/commands.js";
import type { Proposer } from "./ports.js";
import {
  MAX_BATCH_TEXT_CHARS,
  MAX_REPORTS_PER_BATCH,
  batchOutcomes,
  batchableReport,
  reportTextChars,
} from "./report-batch.js";

/** Codes after which retrying the same report cannot help. */
const FINAL_CODES = new Set(["CONFLICT", "INVALID_ARGUMENT", "NOT_FOUND", "TOO_LARGE"]);
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 2000;
/** Batches in flight at once (see the module comment). */
const MAX_BATCHES_IN_FLIGHT = 1;
/** How long reports go one by one after a batch was refused as INVALID_ARGUMENT. */
export const SINGLES_AFTER_REFUSAL_MS = 30_000;

interface Slot {
  /** The report to send next, if a newer one arrived while one was in flight. */
  next: OrchestratorCommand | undefined;
  inFlight: boolean;
  attempt: number;
  timer: TimerHandle | undefined;
  /** In the ready queue. */
  queued: boolean;
  /** `next` must go on its own (it was in a batch refused as a whole). */
  alone: boolean;
}

/** Why a report was not applied. */
interface Failure {
  readonly code: string;
  readonly message: string;
  readonly command: OrchestratorCommand;
}

/** See the module comment. */
export class Reporter {
  readonly #slots = new Map<string, Slot>();
  /** Keys with a report to send now, in the order they became ready. */
  #ready: string[] = [];
  #flushScheduled = false;
  #batchesInFlight = 0;
  /** Until then (clock time), reports go one by one. */
  #singlesUntilMs = -Infinity;
  #closed = false;

  constructor(
    private readonly proposer: Proposer,
    private readonly clock: Clock,
    private readonly log: Logger,
  ) {}

  /** Queues `command` under `key`, replacing an unsent report of the same key. Throws nothing. */
  report(key: string, command: OrchestratorCommand): void {
    if (this.#closed) return;
    let slot = this.#slots.get(key);
    if (slot === undefined) {
      slot = {
        next: undefined,
        inFlight: false,
        attempt: 0,
        timer: undefined,
        queued: false,
        alone: false,
      };
      this.#slots.set(key, slot);
    }
    slot.next = command;
    slot.attempt = 0;
    slot.alone = false;
    if (!slot.inFlight && slot.timer === undefined) this.#enqueue(key, slot);
  }

  /** True while a report of `key` is queued or in flight. */
  pending(key: string): boolean {
    return this.#slots.has(key);
  }

  /** Stops sending; queued reports are dropped. */
  close(): void {
    this.#closed = true;
    for (const slot of this.#slots.values()) slot.timer?.cancel();
    this.#slots.clear();
    this.#ready = [];
  }

  /**
   * Puts `key` in the ready queue and schedules a flush: at the end of this turn, so the reports
   * the same event causes join one batch; or, for a retry (`fromTimer`), after the other timers
   * due now, so the reports of one failed batch, retried at the same time, go out together.
   */
  #enqueue(key: string, slot: Slot, fromTimer = false): void {
    if (!slot.queued) {
      slot.queued = true;
      this.#ready.push(key);
    }
    if (this.#flushScheduled) return;
    this.#flushScheduled = true;
    if (fromTimer) this.clock.setTimer(0, () => this.#flush());
    else queueMicrotask(() => this.#flush());
  }

  /** Sends what is ready: singles at once, batchable reports as one batch when none is in flight. */
  #flush(): void {
    this.#flushScheduled = false;
    if (this.#closed) return;
    const batching = this.clock.now() >= this.#singlesUntilMs;
    const keys: string[] = [];
    const reports: AgentReport[] = [];
    let textChars = 0;
    const waiting: string[] = [];
    for (const key of this.#ready) {
      const slot = this.#slots.get(key);
      if (slot === undefined) continue;
      if (slot.next === undefined) {
        slot.queued = false;
        continue;
      }
      const report = slot.alone || !batching ? undefined : batchableReport(slot.next);
      if (report === undefined) {
        slot.queued = false;
        this.#sendAlone(key, slot);
        continue;
      }
      const fits =
        this.#batchesInFlight < MAX_BATCHES_IN_FLIGHT &&
        reports.length < MAX_REPORTS_PER_BATCH &&
        (reports.length === 0 ||
          (report.nodeId === reports[0]?.nodeId &&
            textChars + reportTextChars(report) <= MAX_BATCH_TEXT_CHARS));
      if (!fits) {
        waiting.push(key);
        continue;
      }
      keys.push(key);
      reports.push(report);
      textChars += reportTextChars(report);
    }
    this.#ready = waiting;
    if (reports.length === 1) this.#sendOne(keys[0] as string, reports[0] as AgentReport);
    else if (reports.length > 1) this.#sendBatch(keys, reports);
  }

  /** Sends a report that may not be batched on its own, outside the batch bound. */
  #sendAlone(key: string, slot: Slot): void {
    const command = slot.next as OrchestratorCommand;
    slot.next = undefined;
    slot.inFlight = true;
    this.proposer.propose(command).then(
      () => this.#settled(key, slot, undefined),
      (error: unknown) => this.#settled(key, slot, failureOf(error, command)),
    );
  }

  /** Sends a lone batchable report as its own command; it holds the batch slot meanwhile. */
  #sendOne(key: string, report: AgentReport): void {
    const slot = this.#take(key);
    this.#batchesInFlight++;
    this.proposer.propose(report).then(
      () => this.#batchDone(() => this.#settled(key, slot, undefined)),
      (error: unknown) => this.#batchDone(() => this.#settled(key, slot, failureOf(error, report))),
    );
  }

  #sendBatch(keys: readonly string[], reports: readonly AgentReport[]): void {
    const slots = keys.map((key) => this.#take(key));
    this.#batchesInFlight++;
    const nodeId = (reports[0] as AgentReport).nodeId;
    this.proposer.propose({ type: "agentReports", nodeId, reports }).then(
      (answer) => {
        let outcomes;
        try {
          outcomes = batchOutcomes(answer, reports.length);
        } catch (error) {
          this.#batchDone(() => this.#batchFailed(keys, slots, reports, error));
          return;
        }
        this.#batchDone(() =>
          outcomes.forEach((outcome, i) => {
            const report = reports[i] as AgentReport;
            const failure = outcome.ok
              ? undefined
              : { code: String(outcome.code), message: String(outcome.message), command: report };
            this.#settled(keys[i] as string, slots[i] as Slot, failure);
          }),
        );
      },
      (error: unknown) => this.#batchDone(() => this.#batchFailed(keys, slots, reports, error)),
    );
  }

  /** Marks `key`'s queued report in flight and returns its slot. */
  #take(key: string): Slot {
    const slot = this.#slots.get(key) as Slot;
    slot.next = undefined;
    slot.inFlight = true;
    slot.queued = false;
    return slot;
  }

  /** Frees the batch slot, settles each report, then sends what waited. */
  #batchDone(settle: () => void): void {
    this.#batchesInFlight--;
    settle();
    if (!this.#closed && this.#ready.length > 0 && !this.#flushScheduled) {
      this.#flushScheduled = true;
      queueMicrotask(() => this.#flush());
    }
  }

  /** A batch refused or lost as a whole; see the module comment. */
  #batchFailed(
    keys: readonly string[],
    slots: readonly Slot[],
    reports: readonly AgentReport[],
    error: unknown,
  ): void {
    const failure = failureOf(error, reports[0] as AgentReport);
    if (!FINAL_CODES.has(failure.code)) {
      keys.forEach((key, i) =>
        this.#settled(key, slots[i] as Slot, { ...failure, command: reports[i] as AgentReport }),
      );
      return;
    }
    if (failure.code === "INVALID_ARGUMENT") {
      this.#singlesUntilMs = this.clock.now() + SINGLES_AFTER_REFUSAL_MS;
    }
    this.log.info("a batch of reports was refused as a whole; sending each on its own", {
      reports: reports.length,
      code: failure.code,
      error: failure.message,
    });
    keys.forEach((key, i) => {
      const slot = slots[i] as Slot;
      slot.inFlight = false;
      if (this.#closed) return;
      if (slot.next === undefined) {
        slot.next = reports[i] as AgentReport;
        slot.alone = true;
      }
      this.#enqueue(key, slot);
    });
  }

  #settled(key: string, slot: Slot, failure: Failure | undefined): void {
    slot.inFlight = false;
    if (this.#closed) return;
    if (failure !== undefined && slot.next === undefined) {
      const { code, message, command } = failure;
      if (FINAL_CODES.has(code)) {
        this.log.info("report refused by the cluster; dropped", {
          report: command.type,
          key,
          code,
          error: message,
        });
      } else {
        // Retry the same report later, unless a newer one arrives meanwhile.
        slot.next = command;
        const delay = Math.min(MAX_RETRY_MS, FIRST_RETRY_MS * 2 ** slot.attempt++);
        if (slot.attempt === 4) {
          this.log.warn("report not accepted yet; retrying", {
            report: command.type,
            key,
            code,
            error: message,
          });
        }
        slot.timer = this.clock.setTimer(delay, () => {
          slot.timer = undefined;
          this.#next(key, slot, true);
        });
        return;
      }
    }
    this.#next(key, slot);
  }

  /** Queues `key`'s next report, or forgets the key when there is none. */
  #next(key: string, slot: Slot, fromTimer = false): void {
    if (this.#closed) return;
    if (slot.next === undefined) {
      if (!slot.inFlight) this.#slots.delete(key);
      return;
    }
    this.#enqueue(key, slot, fromTimer);
  }
}

/** The code and message of a rejection (INTERNAL for an untyped one). */
function failureOf(error: unknown, command: OrchestratorCommand): Failure {
  return {
    code: isBlixardError(error) ? error.code : "INTERNAL",
    message: (error as Error | undefined)?.message ?? String(error),
    command,
  };
}
