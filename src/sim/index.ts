/**
 * The deterministic simulator's public face: run a seeded simulation of a Blixard cluster
 * (a real node's composition: runtime, cluster state machine, lessor; simulated clock, network and disk) and check it.
 */
export {
  runSimulation,
  replayCommand,
  type SimulationOptions,
  type SimulationReport,
} from "./run.js";
export type { PlantedBugs } from "./cluster.js";
export { ALL_FAULT_KINDS, FAULT_KINDS, type FaultKind } from "./nemesis.js";
export type { NetworkFaults } from "./network.js";
export type { Violation } from "./checkers/violation.js";
export { checkLinearizable, type LinearizabilityResult } from "./checkers/linearizability.js";
export type { HistoryOperation, KvInput, KvOutput } from "./history.js";
export { Scheduler, SimClock } from "./scheduler.js";
