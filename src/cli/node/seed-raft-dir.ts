/**
 * Writes a raft log directory that starts from a given state: a snapshot of the state machine at
 * an index and term, a configuration of the given voters, and a hard state that commits the
 * snapshot. Both ways of building a cluster from existing state use it: restoring a backup
 * (`operator snapshot restore`) and turning a survivor into a one-member cluster
 * (`node start --force-new-cluster`). A node started on such a directory restores the snapshot
 * into its state machine, as after receiving one from a leader, and campaigns in a later term.
 */
import { readdir } from "node:fs/promises";
import { InvalidArgumentError } from "../../common/errors.js";
import type { NodeId } from "../../raft/types.js";
import { NodeFileSystem } from "../../storage/node-fs.js";
import { WalLogStore } from "../../storage/wal-log-store.js";

/** The state a new raft directory starts from. */
export interface SeedState {
  /** The voters of the new configuration (no learners). */
  readonly voters: readonly NodeId[];
  /** The log index the state is at (> 0). */
  readonly index: number;
  /** The term of the entry at `index`. */
  readonly term: number;
  /** The state machine's snapshot bytes at `index`. */
  readonly data: Uint8Array;
  /** The hard state's term, if later than `term` (a survivor keeps the term it reached). */
  readonly currentTerm?: number;
}

/**
 * Creates the raft directory `raftDir` holding `state` and nothing else.
 * @throws InvalidArgumentError if `raftDir` already holds a log, or `state.index` is 0.
 */
export async function seedRaftDir(raftDir: string, state: SeedState): Promise<void> {
  if (state.index <= 0) {
    throw new InvalidArgumentError("a state at log index 0 is empty: nothing to restore");
  }
  if (state.voters.length === 0) throw new InvalidArgumentError("a configuration needs a voter");
  const fs = new NodeFileSystem();
  if ((await filesIn(raftDir)) > 0) {
    throw new InvalidArgumentError(
      `${raftDir} already holds a raft log; give an empty data directory`,
    );
  }
  const confState = {
    voters: [...state.voters],
    learners: [],
    votersOutgoing: [],
    learnersNext: [],
    autoLeave: false,
  };
  const store = await WalLogStore.open(raftDir, { fs, confState });
  try {
    await store.save(
      {
        snapshot: {
          metadata: { index: state.index, term: state.term, confState },
          data: state.data,
        },
        entries: [],
        hardState: {
          term: Math.max(state.term, state.currentTerm ?? 0),
          vote: 0,
          commit: state.index,
        },
      },
      { sync: true },
    );
  } finally {
    await store.close();
  }
}

/** How many entries directory `dir` holds (0 if it does not exist). */
async function filesIn(dir: string): Promise<number> {
  try {
    return (await readdir(dir)).length;
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === "ENOENT") return 0;
    throw error;
  }
}
