/**
 * A continuous check of the agent-only workers (`orchestrator-cut-off-agent-runs-work`): an agent
 * that has had no heartbeat acknowledged for longer than its disconnect grace (the workers'
 * dead-after time) must have stopped all its work, give or take the time a stop takes. The
 * leader marks such an agent offline and places its work elsewhere from then on, so work still
 * running there could run twice, and would be work the cluster no longer knows about.
 *
 * The time is counted from the send time of the last acknowledged heartbeat (or the agent's
 * start), as measured at the link, independently of the agent's own guard.
 */
import type { NodeId } from "../../raft/types.js";
import type { Violation } from "../checkers/violation.js";
import type { SimAgentFleet } from "./agent-fleet.js";
import type { SimProcessTable } from "./processes.js";

/** Time a stop may take after the grace ran out: a task's kill is ms, a VM's stop up to 800 ms. */
export const CUT_OFF_STOP_SLACK_MS = 1000;

/** Watches the agent-only workers' processes while they are cut off. */
export class CutOffWatch {
  readonly violations: Violation[] = [];

  constructor(
    private readonly fleet: SimAgentFleet,
    private readonly processes: SimProcessTable,
    /** The grace the cluster relies on (the dead-after time). */
    private readonly graceMs: number,
  ) {}

  /** Looks at every agent's processes now (call periodically). */
  observe(nowMs: number): void {
    if (this.violations.length > 0) return;
    const silentSince = new Map<NodeId, number>();
    for (const id of this.fleet.ids) {
      const host = this.fleet.host(id);
      if (host === undefined) continue;
      silentSince.set(id, Math.max(host.startedAtMs, host.acks.lastSentAtMs ?? 0));
    }
    for (const p of this.processes.running()) {
      const since = silentSince.get(p.nodeId);
      if (since === undefined) continue;
      const silentMs = nowMs - since;
      if (silentMs <= this.graceMs + CUT_OFF_STOP_SLACK_MS) continue;
      const what = p.kind === "task" ? `task ${p.name} attempt ${p.attempt}` : `VM ${p.name}`;
      this.violations.push({
        property: "orchestrator-cut-off-agent-runs-work",
        message:
          `${what} still runs on agent ${p.nodeId}, which has had no heartbeat acknowledged ` +
          `for ${silentMs} ms (grace ${this.graceMs} ms): the cluster may have placed it elsewhere`,
        atMs: nowMs,
      });
      return;
    }
  }
}
