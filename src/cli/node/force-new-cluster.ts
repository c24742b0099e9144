/**
 * Disaster recovery (`node start --force-new-cluster`, as etcd's flag and Nomad's peers.json):
 * when a majority of the members is lost for good, no leader can ever be elected again and no
 * membership change can commit. This rewrites a survivor's data directory offline into a
 * one-member cluster of itself that keeps all of its state:
 *
 * 1. the log is replayed into a fresh state machine: the newest snapshot, then every entry the
 *    log holds, including entries past the known commit index (they may have been committed by
 *    the lost majority and acknowledged to clients; with the others gone this log is the only
 *    record, as etcd does);
 * 2. the old raft directory is kept beside it (`raft.before-force-new-cluster-<ms>`);
 * 3. a new raft directory starts from a snapshot of that state with this node as the only voter;
 * 4. the member list forgets every other member.
 *
 * UNSAFE by design: if a lost member was in fact alive and the cluster still had a quorum
 * elsewhere, there are now two clusters that diverge. Never restart the lost members on their old
 * data directories; grow the new cluster with `node start --join`.
 */
import { commandOf } from "../../node/forwarded-proposal.js";
import { rename } from "node:fs/promises";
import { join } from "node:path";
import { InvalidArgumentError } from "../../common/errors.js";
import { EntryType, type NodeId } from "../../raft/types.js";
import { ClusterStateMachine } from "../../statemachine/cluster/cluster-state-machine.js";
import { NodeFileSystem } from "../../storage/node-fs.js";
import { WalLogStore } from "../../storage/wal-log-store.js";
import type { JsonLogger } from "../log.js";
import { PersistentMemberDirectory } from "./member-store.js";
import { confStateIds } from "./membership.js";
import { seedRaftDir } from "./seed-raft-dir.js";

/** Entries read from the log at once while replaying. */
const REPLAY_BATCH_BYTES = 16 * 1024 * 1024;

/** What a forced new cluster was built from. */
export interface ForcedCluster {
  /** The log index the new cluster starts at (the survivor's last entry). */
  readonly index: number;
  readonly term: number;
  /** The survivor's commit index: entries after it were kept though not known committed. */
  readonly commitIndex: number;
  /** The members of the configuration before. */
  readonly previousMembers: readonly NodeId[];
  /** Where the old raft directory was kept. */
  readonly keptRaftDir: string;
}

/**
 * Rewrites `<dataDir>/raft` into a one-member cluster of `selfId` (see the module comment). Does
 * nothing and returns undefined when the configuration already is this node alone.
 * @throws UnavailableError if the data directory is in use (a node runs on it).
 * @throws StorageCorruptError if the log is damaged.
 * @throws InvalidArgumentError if the log is empty (nothing to recover) or `selfId` is not in it.
 */
export async function forceNewCluster(
  dataDir: string,
  selfId: NodeId,
  options: { readonly log: JsonLogger; readonly apiScheme: "http:" | "https:" },
): Promise<ForcedCluster | undefined> {
  const log = options.log;
  const raftDir = join(dataDir, "raft");
  const store = await WalLogStore.open(raftDir, { fs: new NodeFileSystem() });
  let state: { index: number; term: number; commit: number; currentTerm: number; data: Uint8Array };
  let previousMembers: NodeId[];
  try {
    const { hardState, confState } = store.initialState();
    previousMembers = confStateIds(confState);
    if (
      confState.voters.length === 1 &&
      confState.voters[0] === selfId &&
      previousMembers.length === 1
    ) {
      log.info("--force-new-cluster: this node already is a one-member cluster; nothing to do");
      return undefined;
    }
    if (!previousMembers.includes(selfId)) {
      throw new InvalidArgumentError(
        `node ${selfId} is not a member of the configuration in its log (${previousMembers.join(", ")}); ` +
          "only a member can recover the cluster",
      );
    }
    const snapshot = store.snapshot();
    const machine = new ClusterStateMachine();
    if (snapshot.metadata.index > 0) machine.restore(snapshot.data);
    const last = store.lastIndex();
    for (let next = store.firstIndex(); next <= last;) {
      const batch = store.entries(next, last + 1, REPLAY_BATCH_BYTES);
      for (const entry of batch) {
        // Membership changes are replaced by the new configuration; empty entries are no-ops.
        if (entry.type === EntryType.Normal && entry.data.length > 0) {
          // A write a follower forwarded is in the runtime's envelope: apply what it carries.
          machine.apply({ index: entry.index, term: entry.term, data: commandOf(entry.data) });
        }
      }
      next += batch.length;
    }
    if (last === 0) {
      throw new InvalidArgumentError(`${raftDir} holds no state: there is nothing to recover`);
    }
    state = {
      index: last,
      term: store.term(last),
      commit: hardState.commit,
      currentTerm: hardState.term,
      data: machine.snapshot(),
    };
  } finally {
    await store.close();
  }

  const keptRaftDir = `${raftDir}.before-force-new-cluster-${Date.now()}`;
  log.warn(
    "FORCE-NEW-CLUSTER: rewriting this node's data into a one-member cluster of itself. UNSAFE: " +
      "if the other members still form a quorum somewhere, there are now two diverging clusters. " +
      "Never restart the lost members on their old data; add new members with --join",
    {
      previousMembers,
      index: state.index,
      commitIndex: state.commit,
      entriesPastCommit: Math.max(0, state.index - state.commit),
      keptRaftDir,
    },
  );
  await rename(raftDir, keptRaftDir);
  await seedRaftDir(raftDir, {
    voters: [selfId],
    index: state.index,
    term: state.term,
    currentTerm: state.currentTerm,
    data: state.data,
  });
  const directory = await PersistentMemberDirectory.load(dataDir, [], log, options.apiScheme);
  for (const [id] of directory.entries()) if (id !== selfId) directory.delete(id);
  await directory.flush();
  return {
    index: state.index,
    term: state.term,
    commitIndex: state.commit,
    previousMembers,
    keptRaftDir,
  };
}
