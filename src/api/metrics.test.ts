import { describe, expect, it } from "vitest";
import { EMPTY_CONF_STATE } from "../raft/types.js";
import { ApiMetrics } from "./metrics.js";
import type { NodeStatusView } from "./service.js";

const STATUS: NodeStatusView = {
  id: 1,
  term: 1,
  role: "leader",
  leader: 1,
  commitIndex: 0,
  appliedIndex: 0,
  lastIndex: 0,
  snapshotIndex: 0,
  pendingProposals: 0,
  proposalsForwarded: 0,
  protocolVersion: 2,
  clusterProtocolVersion: 2,
  forwardedEntriesApplied: 0,
  firstForwardedIndex: 0,
  forwardedProposalsRefused: 0,
  leadTransferee: undefined,
  config: EMPTY_CONF_STATE,
  progress: new Map(),
  stopped: false,
};

/** The value of an unlabelled-but-for-node_id gauge in an exposition. */
function gauge(text: string, name: string): number {
  const line = text.split("\n").find((l) => l.startsWith(`${name}{`));
  return Number(line?.split(" ").at(-1));
}

describe("ApiMetrics", () => {
  it("reports how long the event loop stalled since the previous scrape", async () => {
    // Sampled every 20 ms busy or idle: with the default 250 ms idle grid a stall that starts
    // while the loop idles is seen only if it outlasts the pending sample's due time (a
    // documented trade-off, loop-delay-sampler.test.ts), which a 150 ms stall may not.
    const metrics = new ApiMetrics(1, { loopDelay: { busyIntervalMs: 20, idleIntervalMs: 20 } });
    await new Promise((resolve) => setTimeout(resolve, 30));
    // A deliberate stall of 150 ms: the next scrape must say the loop ran at least 100 ms late.
    const until = performance.now() + 150;
    while (performance.now() < until) {
      // busy
    }
    await new Promise((resolve) => setTimeout(resolve, 30));
    const text = await metrics.render(STATUS);
    expect(gauge(text, "blixard_event_loop_delay_max_seconds")).toBeGreaterThanOrEqual(0.1);
    expect(gauge(text, "blixard_event_loop_delay_p99_seconds")).toBeGreaterThan(0);
    // Reset at each scrape: the stall is not reported twice.
    await new Promise((resolve) => setTimeout(resolve, 30));
    const next = await metrics.render(STATUS);
    expect(gauge(next, "blixard_event_loop_delay_max_seconds")).toBeLessThan(
      gauge(text, "blixard_event_loop_delay_max_seconds"),
    );
  });
});
