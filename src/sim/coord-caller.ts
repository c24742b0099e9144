/**
 * How a simulated coordination client reaches the cluster: a call goes to the node it believes
 * leads (over the simulated client link, held while that node is paused), and is retried the
 * way the SDK retries: at the hinted leader on NOT_LEADER, after a backoff on UNAVAILABLE,
 * TIMEOUT, OVERLOADED or no answer, until the caller's give-up time. Retrying a write is safe
 * only if the caller made it idempotent (a session, or a command that is harmless twice).
 */
import { isBlixardError, NotLeaderError, UnavailableError } from "../common/errors.js";
import type { Random } from "../common/random.js";
import type { CoordinationService } from "../api/coord-service.js";
import type { RaftNode } from "../node/raft-node.js";
import type { NodeId } from "../raft/types.js";
import type { SimCluster } from "./cluster.js";
import { between, pick } from "./rng.js";
import type { Scheduler } from "./scheduler.js";
import type { SimResult } from "./state-machine.js";

/** How a call ended. */
export type CallResult<T> =
  | { readonly kind: "ok"; readonly value: T }
  /** The cluster answered with an error no retry fixes (e.g. NOT_FOUND). */
  | { readonly kind: "refused"; readonly error: unknown }
  /** No answer before the give-up time: a write may or may not have happened. */
  | { readonly kind: "gave-up" };

const RETRIED_CODES: ReadonlySet<string> = new Set(["UNAVAILABLE", "TIMEOUT", "OVERLOADED"]);

/** One client's way to the cluster (its own leader guess and random stream). */
export class CoordCaller {
  private leaderGuess: NodeId | undefined;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly cluster: SimCluster,
    private readonly random: Random,
    private readonly attemptTimeoutMs: number,
  ) {}

  /** Sleeps `ms` of virtual time. */
  sleep(ms: number): Promise<void> {
    return new Promise<void>((resolve) => this.scheduler.schedule(ms, resolve));
  }

  /** Runs `fn` on the leader's service and node, retrying until `giveUpAtMs`. Throws nothing. */
  async call<T>(
    fn: (service: CoordinationService, node: RaftNode<SimResult>) => Promise<T>,
    giveUpAtMs: number,
  ): Promise<CallResult<T>> {
    let target = this.leaderGuess ?? this.someMember();
    while (this.scheduler.now() < giveUpAtMs) {
      const outcome = await this.cluster.call(
        target,
        (node) => {
          const service = this.cluster.coordination(target);
          if (service === undefined) throw new UnavailableError(`node ${target} is starting`);
          return fn(service, node);
        },
        this.attemptTimeoutMs,
      );
      if (outcome.kind === "ok") {
        this.leaderGuess = target;
        return { kind: "ok", value: outcome.value };
      }
      const error = outcome.kind === "error" ? outcome.error : undefined;
      if (error instanceof NotLeaderError) {
        const hint = error.leaderHint?.id;
        if (hint !== undefined && hint !== target) {
          target = hint;
          continue;
        }
      } else if (isBlixardError(error) && !RETRIED_CODES.has(error.code)) {
        return { kind: "refused", error };
      } else if (error !== undefined && !isBlixardError(error)) {
        return { kind: "refused", error };
      }
      this.leaderGuess = undefined;
      await this.sleep(between(this.random, 20, 150));
      target = this.someMember();
    }
    return { kind: "gave-up" };
  }

  /** A node that believes it leads if there is one, else any member. */
  private someMember(): NodeId {
    const leaders = this.cluster
      .liveIds()
      .filter((id) => this.cluster.runningNode(id)?.isLeader === true);
    return pick(this.random, leaders.length > 0 ? leaders : this.cluster.memberIds());
  }
}
