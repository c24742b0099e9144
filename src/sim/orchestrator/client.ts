/**
 * A simulated user of the orchestrator API: proposes orchestrator commands to the cluster the way
 * a correct SDK does, with a client session (one sequence number per command, the same on every
 * retry, so a retried command applies once), following NOT_LEADER hints, backing off on
 * UNAVAILABLE, OVERLOADED, timeouts and lost answers, and giving up after a while (the outcome is
 * then unknown, and the next command opens a new session).
 */
import { NotLeaderError, isBlixardError } from "../../common/errors.js";
import type { Random } from "../../common/random.js";
import type { NodeId } from "../../raft/types.js";
import type {
  OrchestratorCommand,
  OrchestratorResult,
} from "../../statemachine/orchestrator/commands.js";
import type { SimCluster } from "../cluster.js";
import { orchestratorCommandEntry } from "../commands.js";
import { between, pick } from "../rng.js";
import type { Scheduler } from "../scheduler.js";
import type { SimResult } from "../state-machine.js";

/** How a command ended for its caller. */
export type ClientOutcome =
  | { readonly kind: "ok"; readonly result: OrchestratorResult }
  /** The model refused it (CONFLICT, NOT_FOUND, INVALID_ARGUMENT, …): it was not applied. */
  | { readonly kind: "refused"; readonly code: string; readonly message: string }
  /** No answer in time: it may or may not have applied. */
  | { readonly kind: "unknown" };

/** Timing of a client. */
export interface ClientTiming {
  /** How long one attempt waits for its answer. */
  readonly attemptTimeoutMs: number;
  /** A command is given up after this long. */
  readonly giveUpAfterMs: number;
  readonly backoffMs: { readonly min: number; readonly max: number };
}

/** One sessioned orchestrator client. */
export class OrchestratorClient {
  #session = 0;
  #sequence = 0;
  #leaderGuess: NodeId | undefined;

  constructor(
    private readonly name: string,
    private readonly scheduler: Scheduler,
    private readonly random: Random,
    private readonly cluster: SimCluster,
    private readonly timing: ClientTiming,
  ) {}

  /** Proposes `command` until it is answered or given up. Never rejects. */
  async propose(command: OrchestratorCommand): Promise<ClientOutcome> {
    const { scheduler, timing } = this;
    const data = orchestratorCommandEntry(command, {
      nowMs: scheduler.now(),
      session: { clientId: `${this.name}-${this.#session}`, sequence: ++this.#sequence },
    });
    const giveUpAtMs = scheduler.now() + timing.giveUpAfterMs;
    let target = this.#leaderGuess ?? this.#randomMember();
    while (scheduler.now() < giveUpAtMs) {
      const outcome = await this.cluster.call<SimResult>(
        target,
        (node) => node.propose(data),
        timing.attemptTimeoutMs,
      );
      let next: NodeId | undefined;
      if (outcome.kind === "ok") {
        const result = outcome.value;
        if (result.ok) {
          this.#leaderGuess = target;
          return { kind: "ok", result: result.value as OrchestratorResult };
        }
        const { code, reason, message } = result.error;
        if (reason === "SESSION_EXPIRED") break;
        if (code !== "OVERLOADED" && code !== "UNAVAILABLE") {
          this.#leaderGuess = target;
          return { kind: "refused", code, message };
        }
        next = target;
      } else if (outcome.kind === "error" && outcome.error instanceof NotLeaderError) {
        const hint = outcome.error.leaderHint?.id;
        if (hint !== undefined && hint !== target) {
          target = hint;
          continue;
        }
      } else if (outcome.kind === "error" && !isBlixardError(outcome.error)) {
        return { kind: "refused", code: "INTERNAL", message: String(outcome.error) };
      }
      this.#leaderGuess = next;
      target = next ?? this.#randomMember();
      await this.#sleep(between(this.random, timing.backoffMs.min, timing.backoffMs.max));
    }
    // The session may hold the sequence forever: start a fresh one.
    this.#session++;
    this.#sequence = 0;
    return { kind: "unknown" };
  }

  #randomMember(): NodeId {
    return pick(this.random, this.cluster.memberIds());
  }

  #sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => this.scheduler.schedule(ms, resolve));
  }
}
