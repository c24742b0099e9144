/**
 * What a supervised VM does when its process ends by itself: the restart policy as a pure
 * function, so its arithmetic is tested apart from any process.
 */
import type { RestartPolicy } from "../../statemachine/orchestrator/types.js";
import { MAX_RESTART_BACKOFF_MS } from "./limits.js";

/** The decision after an exit: stay stopped, give up as failed, or restart after a delay. */
export type AfterExit =
  | { readonly action: "stopped" }
  | { readonly action: "failed" }
  | { readonly action: "restart"; readonly delayMs: number };

/**
 * The wait before restart number `restartsSoFar + 1`: `backoffMs · 2^restartsSoFar`, at most
 * {@link MAX_RESTART_BACKOFF_MS}.
 */
export function restartDelayMs(policy: RestartPolicy, restartsSoFar: number): number {
  const firstMs = Math.max(0, policy.backoffMs);
  // 2^30 is far past the cap; clamping the exponent keeps the product finite.
  return Math.min(MAX_RESTART_BACKOFF_MS, firstMs * 2 ** Math.min(Math.max(0, restartsSoFar), 30));
}

/**
 * Decides after a run ended by itself. A clean exit (code 0) stays stopped under every policy; a
 * failure (another code, a signal, a start that failed) restarts under `on-failure` while fewer
 * than `maxRestarts` restarts were made, and is final otherwise.
 */
export function decideAfterExit(
  policy: RestartPolicy,
  restartsSoFar: number,
  cleanExit: boolean,
): AfterExit {
  if (cleanExit) return { action: "stopped" };
  if (policy.mode === "never" || restartsSoFar >= policy.maxRestarts) return { action: "failed" };
  return { action: "restart", delayMs: restartDelayMs(policy, restartsSoFar) };
}
