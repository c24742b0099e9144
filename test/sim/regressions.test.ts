/**
 * Seeds that once failed outside the ranges `npm test` runs, each kept with what was wrong:
 *
 * - 900265 (5 nodes, WAL disk) and 920074 (now 920079, see below): the settle check declared the cluster settled while a
 *   removed member's worker was still online in the model, before the leader's liveness monitor
 *   had marked it offline and moved its VMs (a checker bug: the model was right, only not yet).
 * - 920068: an agent's report that a requested stop had ended was applied twice (the retry of a
 *   report whose outcome the agent did not learn); the second copy turned the VM, which had been
 *   started again, back into "stopped", which reads "exited by itself" and is never restarted
 *   (a product bug: the report now says it ends a requested stop, and a stale copy is ignored).
 * - 5311430: "did not settle within 40000 ms of the heal" while node 1 was still running tasks
 *   back to back: VMs filled nodes 2 and 3, so 37 s of queued tasks ran one after another on
 *   node 1, never idle (a checker bug: the bound now adds the queued work's run time).
 * - 189 with 5 agent-only workers: a removed member whose process ran on kept sending pre-votes
 *   to the leader, whose liveness view counted them as hearing from it, so its worker stayed
 *   online for ever with work placed on it (a product bug: only members are heard now).
 * - 138 with 5 agent-only workers: an agent whose view was behind (it still showed a VM wanted
 *   stopped) reported the VM stopped after the user had started it again; the model read
 *   "exited by itself" and never restarted it (a product bug: that report now says it ends a
 *   requested stop, and the model ignores it once the VM is wanted running again).
 *
 * - 7600109 and 7600279 (5 nodes, WAL disk): "VM … is running on node N in the model, but no
 *   process of it runs there", 23 ms and 4 ms after a simulated VM crashed, before its agent could
 *   report it: the crash had been drawn at launch under the faults but came due after the heal
 *   (a simulator bug: a crash is a fault, and one due after the heal no longer happens).
 * - 7300859 with 5 agent-only workers: "did not settle": a task assigned to agent 1004 for 90 s
 *   while the agent polled, every second, a removed member whose process ran on (its removal
 *   committed although the nemesis gave up waiting for it): that server answered with its stale
 *   index 45, behind the agent's 128, and the agent polled it again (a product bug: a server
 *   still behind the index asked about after the wait now answers UNAVAILABLE, and the agent
 *   moves on to another server). 7301390 (a VM scheduled on agent 1005 for 40 s) was the same.
 * - 7500021 and 7500031 with --disk wal --large-state (also 7500080, 7500102): "2 snapshots were
 *   in flight to one follower in one term at once": a node leading again while its older term's
 *   snapshot was still crossing sent a new one (a Progress lives one term), and the older one's
 *   late report cleared the newer one's in-flight flag, so a third went out beside the second
 *   (a product bug: the core now tracks unreported snapshots per peer across terms).
 *
 * Those run with `heartbeatTicks: 1` were found when a simulated leader heartbeat every tick; they
 * keep that interval so that each still replays the run that failed (a real node's 4 ticks gives
 * other runs). Seeds 189
 * and 138 no longer replay theirs: since the change feed wakes the agent hub through the node's
 * clock, an agent-only worker's long-poll returns when its assignments change instead of at its
 * timeout, so runs with --agents took another course from then on.
 */
import { describe, expect, it } from "vitest";
import { runSimulation, type SimulationOptions } from "../../src/sim/run.js";

const CASES: readonly {
  readonly name: string;
  readonly options: SimulationOptions;
  /** The seed's faults include member removals (the first three were about removals). */
  readonly removals: boolean;
}[] = [
  {
    name: "900265 --nodes 5 --disk wal --orchestrator",
    options: { seed: 900265, nodes: 5, disk: "wal", orchestrator: true, heartbeatTicks: 1 },
    removals: true,
  },
  {
    // Was 920074 (the first seed found); a change of what the nodes do at a start (the agent's
    // catch-up barrier) moved that run off its member removal, and 920079 has two.
    name: "920079 --orchestrator",
    options: { seed: 920079, orchestrator: true, heartbeatTicks: 1 },
    removals: true,
  },
  {
    name: "920068 --orchestrator",
    options: { seed: 920068, orchestrator: true, heartbeatTicks: 1 },
    removals: true,
  },
  {
    name: "189 --orchestrator --agents 5",
    options: { seed: 189, orchestrator: true, agents: 5 },
    removals: false,
  },
  {
    name: "138 --orchestrator --agents 5",
    options: { seed: 138, orchestrator: true, agents: 5 },
    removals: false,
  },
  {
    name: "7600109 --nodes 5 --disk wal --orchestrator",
    options: { seed: 7600109, nodes: 5, disk: "wal", orchestrator: true },
    removals: true,
  },
  {
    name: "7600279 --nodes 5 --disk wal --orchestrator",
    options: { seed: 7600279, nodes: 5, disk: "wal", orchestrator: true },
    removals: true,
  },
  {
    name: "7300859 --orchestrator --agents 5",
    options: { seed: 7300859, orchestrator: true, agents: 5 },
    removals: true,
  },
  {
    name: "7301390 --orchestrator --agents 5",
    options: { seed: 7301390, orchestrator: true, agents: 5 },
    removals: true,
  },
  {
    name: "5311430 --orchestrator",
    options: { seed: 5311430, orchestrator: true, heartbeatTicks: 1 },
    removals: false,
  },
];

/** Seeds without the orchestrator: every checker passes (nothing to settle). */
const KV_CASES: readonly { readonly name: string; readonly options: SimulationOptions }[] = [
  {
    name: "7500021 --disk wal --large-state",
    options: { seed: 7500021, disk: "wal", largeState: true },
  },
  {
    name: "7500031 --disk wal --large-state",
    options: { seed: 7500031, disk: "wal", largeState: true },
  },
];

describe("simulator regressions", () => {
  for (const { name, options } of KV_CASES) {
    it(`seed ${name} passes every checker`, async () => {
      const report = await runSimulation(options);
      expect(report.violations.map((v) => `[${v.property}] ${v.message}`)).toEqual([]);
      expect(report.network.snapshotsSent).toBeGreaterThan(0);
    }, 120_000);
  }

  for (const { name, options, removals } of CASES) {
    it(`seed ${name} passes every checker and settles`, async () => {
      const report = await runSimulation(options);
      expect(report.violations.map((v) => `[${v.property}] ${v.message}`)).toEqual([]);
      expect(report.orchestrator?.settledAfterHealMs).toBeDefined();
      if (removals) expect(report.faultsInjected["remove"] ?? 0).toBeGreaterThan(0);
    }, 120_000);
  }
});
