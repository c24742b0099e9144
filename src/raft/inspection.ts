import type { Raft } from "./raft.js";
import type { ConfState, NodeId, Role } from "./types.js";

/**
 * A read-only, live view of one node's core, for the runtime and the simulator's checkers (see
 * {@link RawNode.inspect}). Reading it changes nothing and allocates nothing, so a checker may
 * read it after every event; unlike `RawNode.status()` it copies no peer progress.
 */
export interface RaftInspection {
  readonly id: NodeId;
  /** The current term. */
  readonly term: number;
  /** Whom this node voted for in the current term, NONE if nobody. */
  readonly vote: NodeId;
  readonly role: Role;
  /** The leader this node follows (or itself), NONE when unknown. */
  readonly leader: NodeId;
  /** The voter a leadership transfer is handing over to, NONE when none runs. */
  readonly leadTransferee: NodeId;
  /** The highest index known committed. */
  readonly commit: number;
  /** The highest index the application reported applied. */
  readonly applied: number;
  /** The first index still in the log (the one after the snapshot). */
  readonly firstIndex: number;
  /** The last index in the log. */
  readonly lastIndex: number;
  /** The term of the entry at `index`; 0 if it is compacted away or not in the log. */
  termAt(index: number): number;
  /** The configuration in force (shared and immutable: built once per configuration). */
  confState(): ConfState;
}

/** The {@link RaftInspection} of one core: getters over its fields, never setters. */
export class CoreInspection implements RaftInspection {
  readonly #core: Raft;

  constructor(core: Raft) {
    this.#core = core;
  }

  get id(): NodeId {
    return this.#core.id;
  }

  get term(): number {
    return this.#core.term;
  }

  get vote(): NodeId {
    return this.#core.vote;
  }

  get role(): Role {
    return this.#core.role;
  }

  get leader(): NodeId {
    return this.#core.lead;
  }

  get leadTransferee(): NodeId {
    return this.#core.leadTransferee;
  }

  get commit(): number {
    return this.#core.raftLog.committed;
  }

  get applied(): number {
    return this.#core.raftLog.applied;
  }

  get firstIndex(): number {
    return this.#core.raftLog.firstIndex();
  }

  get lastIndex(): number {
    return this.#core.raftLog.lastIndex();
  }

  termAt(index: number): number {
    return this.#core.raftLog.termOrZero(index);
  }

  confState(): ConfState {
    return this.#core.trk.confState();
  }
}
