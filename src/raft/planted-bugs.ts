/**
 * Deliberate bugs, for the simulator's self-test only: it plants one and must then report a
 * violation, which proves its checkers can fail. No configuration reaches these switches; only
 * {@link plantBugs} sets them, and only tests and the simulator call it.
 */
export interface PlantedBugs {
  /** Figure 8: commit an entry of an earlier term by counting replicas. */
  readonly countOldTermEntries?: boolean;
  /** Grant votes without the §5.4.1 up-to-date check. */
  readonly skipUpToDateCheck?: boolean;
  /** Leave the vote out of the hard state handed to storage, so a restart forgets it. */
  readonly forgetToPersistVote?: boolean;
}

/** No bugs: what every production node runs with. */
export const NO_PLANTED_BUGS: PlantedBugs = Object.freeze({});

/** Anything carrying the switches (the core's `Raft`). */
export interface HasPlantedBugs {
  plantedBugs: PlantedBugs;
}

/** Plants `bugs` in a node's core (`rawNode.raft`). Test and simulator use only. */
export function plantBugs(core: HasPlantedBugs, bugs: PlantedBugs): void {
  core.plantedBugs = Object.freeze({ ...bugs });
}
