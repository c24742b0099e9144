import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { MAX_RESTART_BACKOFF_MS } from "../../../src/orchestrator/drivers/limits.js";
import {
  decideAfterExit,
  restartDelayMs,
} from "../../../src/orchestrator/drivers/restart-policy.js";
import type { RestartPolicy } from "../../../src/statemachine/orchestrator/types.js";

const policyArbitrary = fc.record<RestartPolicy>({
  mode: fc.constantFrom("never", "on-failure"),
  maxRestarts: fc.integer({ min: 0, max: 1_000 }),
  backoffMs: fc.integer({ min: 0, max: 120_000 }),
});

describe("restart policy", () => {
  it("doubles from backoffMs and stops at 30 s", () => {
    const policy: RestartPolicy = { mode: "on-failure", maxRestarts: 10, backoffMs: 500 };
    expect([0, 1, 2, 3, 4, 5, 6, 7, 100, 10_000].map((n) => restartDelayMs(policy, n))).toEqual([
      500, 1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000, 30_000,
    ]);
  });

  it("never restarts a clean exit, whatever the policy and count", () => {
    fc.assert(
      fc.property(policyArbitrary, fc.nat(2_000), (policy, restarts) => {
        expect(decideAfterExit(policy, restarts, true)).toEqual({ action: "stopped" });
      }),
    );
  });

  it("restarts a failure only under on-failure and while fewer than maxRestarts were made", () => {
    fc.assert(
      fc.property(policyArbitrary, fc.nat(2_000), (policy, restarts) => {
        const decision = decideAfterExit(policy, restarts, false);
        const allowed = policy.mode === "on-failure" && restarts < policy.maxRestarts;
        expect(decision.action).toBe(allowed ? "restart" : "failed");
        if (decision.action === "restart") {
          expect(decision.delayMs).toBe(restartDelayMs(policy, restarts));
        }
      }),
    );
  });

  it("waits between min(backoffMs, 30 s) and 30 s, never less than the previous wait", () => {
    fc.assert(
      fc.property(policyArbitrary, fc.nat(2_000), (policy, restarts) => {
        const delay = restartDelayMs(policy, restarts);
        expect(delay).toBeLessThanOrEqual(MAX_RESTART_BACKOFF_MS);
        expect(delay).toBeGreaterThanOrEqual(Math.min(policy.backoffMs, MAX_RESTART_BACKOFF_MS));
        if (restarts > 0)
          expect(delay).toBeGreaterThanOrEqual(restartDelayMs(policy, restarts - 1));
        expect(Number.isFinite(delay)).toBe(true);
      }),
    );
  });
});
