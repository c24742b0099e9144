/**
 * Delivers an agent's reports (proposals) to the cluster: one in flight per key, the newest
 * report for a key replacing one not yet sent, retried with backoff while the cluster cannot
 * take it (no leader, overloaded, timeouts) and dropped when the cluster refuses it for good
 * (the model moved on: CONFLICT, or INVALID_ARGUMENT). Reports are idempotent in the model
 * (they name the node and the attempt), so a retry of one that did apply is harmless.
 */
import type { Clock, TimerHandle } from "../../common/clock.js";
import { isBlixardError } from "../../common/errors.js";
import type { OrchestratorCommand } from "../../statemachine/orchestrator/commands.js";
import type { Logger } from "../../common/logger.js";
import type { Proposer } from "./ports.js";

/** Codes after which retrying the same report cannot help. */
const FINAL_CODES = new Set(["CONFLICT", "INVALID_ARGUMENT", "NOT_FOUND", "TOO_LARGE"]);
const FIRST_RETRY_MS = 100;
const MAX_RETRY_MS = 2000;

interface Slot {
  /** The report to send next, if a newer one arrived while one was in flight. */
  next: OrchestratorCommand | undefined;
  inFlight: boolean;
  attempt: number;
  timer: TimerHandle | undefined;
}

/** See the module comment. */
export class Reporter {
  readonly #slots = new Map<string, Slot>();
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
      slot = { next: undefined, inFlight: false, attempt: 0, timer: undefined };
      this.#slots.set(key, slot);
    }
    slot.next = command;
    slot.attempt = 0;
    if (!slot.inFlight && slot.timer === undefined) this.#send(key, slot);
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
  }

  #send(key: string, slot: Slot): void {
    const command = slot.next;
    if (command === undefined || this.#closed) {
      if (!slot.inFlight) this.#slots.delete(key);
      return;
    }
    slot.next = undefined;
    slot.inFlight = true;
    this.proposer.propose(command).then(
      () => this.#settled(key, slot, undefined),
      (error: unknown) => this.#settled(key, slot, { error, command }),
    );
  }

  #settled(
    key: string,
    slot: Slot,
    failure: { readonly error: unknown; readonly command: OrchestratorCommand } | undefined,
  ): void {
    slot.inFlight = false;
    if (this.#closed) return;
    if (failure !== undefined && slot.next === undefined) {
      const { error, command } = failure;
      const code = isBlixardError(error) ? error.code : "INTERNAL";
      if (FINAL_CODES.has(code)) {
        this.log.info("report refused by the cluster; dropped", {
          report: command.type,
          key,
          code,
          error: (error as Error).message,
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
            error: (error as Error).message,
          });
        }
        slot.timer = this.clock.setTimer(delay, () => {
          slot.timer = undefined;
          this.#send(key, slot);
        });
        return;
      }
    }
    this.#send(key, slot);
  }
}
