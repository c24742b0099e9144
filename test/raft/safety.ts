import { coreOf } from "../../src/raft/testing.js";
/**
 * A checker of Raft's safety properties (Raft paper, Figure 3, plus the bookkeeping invariants
 * of the RawNode contract) over a {@link TestCluster}. Call {@link SafetyChecker.observe} after
 * every step of a schedule; it throws a {@link SafetyViolation} naming the property, the nodes
 * and the entries involved as soon as one is broken.
 *
 * What is remembered across observations (so crashed and restarted nodes are covered):
 * - the leader of every term ever seen (election safety);
 * - each current leader's log as of the last observation (leader append-only);
 * - every entry known committed, with an upper bound of the term it was committed in
 *   (committed entries never change; leader completeness);
 * - every applied entry by index, and a digest of each node's state machine (state machine
 *   safety), carried through snapshots and restarts;
 * - each node's commit and applied index per incarnation (monotonicity) and its persisted
 *   (term, vote) history (one vote per term).
 */
import type { RawNode } from "../../src/raft/rawnode.js";
import { NONE, type Entry, type NodeId, type Snapshot } from "../../src/raft/types.js";
import { text, type TestCluster, type TestNode } from "./cluster.js";

/** A broken safety property. `property` is a stable short name, the message says what and where. */
export class SafetyViolation extends Error {
  constructor(
    readonly property: string,
    detail: string,
  ) {
    super(`safety violation [${property}]: ${detail}`);
    this.name = "SafetyViolation";
  }
}

/**
 * The state of a node's (model) state machine: how many commands it applied up to `index` and a
 * digest of them in order. Snapshots carry it as their data, so a node that catches up from a
 * snapshot, or restarts from one, continues from the state it had at the snapshot's index.
 */
export interface AppState {
  readonly index: number;
  readonly count: number;
  readonly digest: number;
}

const EMPTY_APP_STATE: AppState = { index: 0, count: 0, digest: 0x811c9dc5 };

const encoder = new TextEncoder();
const decoder = new TextDecoder();

/** Encodes an application state as snapshot data. */
export function encodeAppState(state: AppState): Uint8Array {
  return encoder.encode(JSON.stringify(state));
}

/** Decodes snapshot data (empty data is the initial, empty state). */
export function decodeAppState(snapshot: Snapshot): AppState {
  if (snapshot.data.length === 0) {
    if (snapshot.metadata.index !== 0) {
      throw new SafetyViolation(
        "snapshot",
        `snapshot at index ${snapshot.metadata.index} carries no application state`,
      );
    }
    return EMPTY_APP_STATE;
  }
  const parsed = JSON.parse(decoder.decode(snapshot.data)) as AppState;
  return { index: parsed.index, count: parsed.count, digest: parsed.digest };
}

function mix(hash: number, value: number): number {
  let h = hash;
  // FNV-1a over the four bytes of value.
  for (let shift = 0; shift < 32; shift += 8) {
    h ^= (value >>> shift) & 0xff;
    h = Math.imul(h, 0x01000193) >>> 0;
  }
  return h;
}

function applyToState(state: AppState, entry: Entry): AppState {
  let digest = mix(mix(state.digest, entry.index), entry.term);
  for (let i = 0; i < entry.data.length; i++) {
    digest ^= entry.data[i] as number;
    digest = Math.imul(digest, 0x01000193) >>> 0;
  }
  return { index: entry.index, count: state.count + 1, digest };
}

function sameBytes(a: Uint8Array, b: Uint8Array): boolean {
  if (a === b) return true;
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) return false;
  return true;
}

/** True if two entries are identical: index, term, type and data. */
export function sameEntry(a: Entry, b: Entry): boolean {
  return (
    a === b ||
    (a.index === b.index && a.term === b.term && a.type === b.type && sameBytes(a.data, b.data))
  );
}

/** `index@term:"data"`, for failure messages. */
export function describeEntry(e: Entry | undefined): string {
  if (e === undefined) return "<none>";
  const data = e.data.length === 0 ? "" : JSON.stringify(text(e.data));
  return `${e.index}@${e.term}${e.type === 0 ? "" : "(conf)"}:${data}`;
}

/** A node's whole log (storage plus unstable) as seen at one observation. */
interface LogView {
  /** Index of `entries[0]`. */
  readonly first: number;
  readonly entries: readonly Entry[];
}

function lastIndexOf(view: LogView): number {
  return view.first + view.entries.length - 1;
}

function entryAt(view: LogView, index: number): Entry | undefined {
  return index >= view.first ? view.entries[index - view.first] : undefined;
}

function logView(node: TestNode): LogView {
  const log = coreOf(node.raw).raftLog;
  const first = log.firstIndex();
  const last = log.lastIndex();
  return {
    first,
    entries: last < first ? [] : log.slice(first, last + 1, Number.MAX_SAFE_INTEGER),
  };
}

/** An entry known committed, and an upper bound of the term it was committed in. */
interface CommittedRecord {
  readonly entry: Entry;
  readonly commitTerm: number;
}

/** What the checker remembers of one node. */
interface NodeTrack {
  /** The incarnation observed last (a restart replaces the RawNode). */
  raw: RawNode;
  incarnation: number;
  commit: number;
  appliedIndex: number;
  /** How many of `node.applied` were folded into `state`. */
  consumed: number;
  /** Index of the last entry taken from `node.applied` (they must come in increasing order). */
  lastAppliedEntry: number;
  state: AppState;
  /** How many of `node.readStates` were checked. */
  readsConsumed: number;
  /** Persisted vote per term, and the highest persisted term. */
  readonly votes: Map<number, NodeId>;
  persistedTerm: number;
}

/** A leader's log at the last observation, for the append-only check. */
interface LeaderLog {
  readonly raw: RawNode;
  readonly term: number;
  readonly view: LogView;
}

/** Options of a {@link SafetyChecker}. */
export interface SafetyCheckerOptions {
  /**
   * Check that every ReadState answers at least the commit index known when its read was
   * issued (see {@link SafetyChecker.noteReadIssued}). Sound only for safe (ReadIndex) reads;
   * lease-based reads depend on bounded clock drift, which random ticking does not provide.
   */
  readonly checkReads?: boolean;
}

/** Observes a TestCluster and throws a {@link SafetyViolation} when a safety property breaks. */
export class SafetyChecker {
  /** The leader of each term seen so far (including leaders that crashed since). */
  readonly leaders = new Map<number, NodeId>();
  /** Committed entries by index. */
  private readonly committed: (CommittedRecord | undefined)[] = [];
  /** The first application of each index (entries with data only). */
  private readonly appliedByIndex: (Entry | undefined)[] = [];
  /** The application state digest reached at each applied index. */
  private readonly stateAt = new Map<number, AppState>();
  private readonly tracks = new Map<NodeId, NodeTrack>();
  private readonly leaderLogs = new Map<NodeId, LeaderLog>();
  /** Read request context -> the highest committed index known when it was issued. */
  private readonly reads = new Map<string, number>();
  private readonly checkReads: boolean;
  /** Number of observations so far; the step named in failure messages. */
  observations = 0;
  /** Highest index known committed. */
  maxCommitted = 0;

  constructor(
    readonly cluster: TestCluster,
    options: SafetyCheckerOptions = {},
  ) {
    this.checkReads = options.checkReads ?? false;
  }

  /**
   * Checks every property against the cluster's current state.
   * @param where describes the step just taken, for the failure message.
   * @throws SafetyViolation on the first property found broken.
   */
  observe(where = ""): void {
    this.observations++;
    try {
      this.check();
    } catch (error) {
      if (error instanceof SafetyViolation) {
        error.message += ` (observation ${this.observations}${where === "" ? "" : `, after ${where}`})`;
      }
      throw error;
    }
  }

  /** The model state machine of `id`, brought up to date with what it applied. */
  appState(id: NodeId): AppState {
    return this.syncApplied(this.cluster.node(id)).state;
  }

  /** Records a read issued now with `context`: its answer must be at least today's commit. */
  noteReadIssued(context: Uint8Array): void {
    this.reads.set(text(context), this.maxCommitted);
  }

  /** Highest term any node has reached. */
  maxTerm(): number {
    let max = 0;
    for (const node of this.cluster.nodes.values()) max = Math.max(max, coreOf(node.raw).term);
    return max;
  }

  private check(): void {
    const views = new Map<NodeId, LogView>();
    const maxTerm = this.maxTerm();
    for (const node of this.cluster.nodes.values()) {
      this.checkPersistedVote(node);
      if (!node.up) continue;
      const view = logView(node);
      views.set(node.id, view);
      this.checkIndexes(node, view);
      this.checkCommittedPrefix(node, view, maxTerm);
    }
    for (const node of this.cluster.nodes.values()) {
      if (!node.up) continue;
      const view = views.get(node.id) as LogView;
      this.syncApplied(node);
      this.checkLeader(node, view);
    }
    this.checkLogMatching(views);
    if (this.checkReads) this.checkReadStates();
  }

  /** One vote per term in what the node persisted; the persisted term never decreases. */
  private checkPersistedVote(node: TestNode): void {
    const track = this.track(node);
    const { hardState } = node.storage.initialState();
    if (hardState.term < track.persistedTerm) {
      throw new SafetyViolation(
        "term monotonic",
        `node ${node.id} persisted term ${hardState.term} after term ${track.persistedTerm}`,
      );
    }
    track.persistedTerm = hardState.term;
    if (hardState.vote === NONE) return;
    const earlier = track.votes.get(hardState.term);
    if (earlier !== undefined && earlier !== hardState.vote) {
      throw new SafetyViolation(
        "one vote per term",
        `node ${node.id} voted for ${earlier} and then ${hardState.vote} in term ${hardState.term}`,
      );
    }
    track.votes.set(hardState.term, hardState.vote);
  }

  /** Commit and applied indexes only grow (per incarnation) and stay within the log. */
  private checkIndexes(node: TestNode, view: LogView): void {
    const track = this.track(node);
    const log = coreOf(node.raw).raftLog;
    const commit = log.committed;
    const persistedCommit = node.storage.initialState().hardState.commit;
    if (commit < persistedCommit) {
      throw new SafetyViolation(
        "monotonic commit",
        `node ${node.id} commit ${commit} is below its persisted commit ${persistedCommit}`,
      );
    }
    if (commit < track.commit) {
      throw new SafetyViolation(
        "monotonic commit",
        `node ${node.id} commit went from ${track.commit} down to ${commit}`,
      );
    }
    const last = lastIndexOf(view);
    if (commit > last) {
      throw new SafetyViolation(
        "commit within log",
        `node ${node.id} commit ${commit} is past its last index ${last}`,
      );
    }
    if (node.appliedIndex < track.appliedIndex) {
      throw new SafetyViolation(
        "monotonic applied",
        `node ${node.id} applied index went from ${track.appliedIndex} down to ${node.appliedIndex}`,
      );
    }
    if (node.appliedIndex > commit || log.applied > commit) {
      throw new SafetyViolation(
        "applied within commit",
        `node ${node.id} applied ${node.appliedIndex} (raft applied ${log.applied}) past commit ${commit}`,
      );
    }
    if (log.applied !== node.appliedIndex) {
      // Between Readies (none is outstanding here) raft's applied index is the application's.
      throw new SafetyViolation(
        "applied bookkeeping",
        `node ${node.id} raft applied ${log.applied} differs from the applied index ${node.appliedIndex}`,
      );
    }
    track.commit = commit;
    track.appliedIndex = node.appliedIndex;
  }

  /**
   * Entries up to a node's commit index are committed: record them, and check they equal what
   * was recorded before (committed entries never change, on any node).
   */
  private checkCommittedPrefix(node: TestNode, view: LogView, maxTerm: number): void {
    const commit = coreOf(node.raw).raftLog.committed;
    for (let index = Math.max(view.first, 1); index <= commit; index++) {
      const entry = entryAt(view, index) as Entry;
      const record = this.committed[index];
      if (record === undefined) {
        this.committed[index] = { entry, commitTerm: maxTerm };
      } else if (!sameEntry(record.entry, entry)) {
        throw new SafetyViolation(
          "committed entries never change",
          `node ${node.id} has ${describeEntry(entry)} at committed index ${index}, ` +
            `but ${describeEntry(record.entry)} was committed there`,
        );
      }
    }
    if (commit > this.maxCommitted) this.maxCommitted = commit;
  }

  /** Election safety, leader append-only, leader completeness. */
  private checkLeader(node: TestNode, view: LogView): void {
    const r = coreOf(node.raw);
    if (r.role !== "leader") {
      this.leaderLogs.delete(node.id);
      return;
    }
    const term = r.term;
    const known = this.leaders.get(term);
    if (known !== undefined && known !== node.id) {
      throw new SafetyViolation(
        "election safety",
        `nodes ${known} and ${node.id} were both leader in term ${term}`,
      );
    }
    const previous = this.leaderLogs.get(node.id);
    if (previous !== undefined && previous.raw === node.raw && previous.term === term) {
      this.checkAppendOnly(node.id, term, previous.view, view);
    } else {
      this.checkCompleteness(node.id, term, view);
    }
    this.leaders.set(term, node.id);
    this.leaderLogs.set(node.id, { raw: node.raw, term, view });
  }

  private checkAppendOnly(id: NodeId, term: number, before: LogView, after: LogView): void {
    const beforeLast = lastIndexOf(before);
    const afterLast = lastIndexOf(after);
    if (afterLast < beforeLast) {
      throw new SafetyViolation(
        "leader append-only",
        `leader ${id} of term ${term} shrank its log from last index ${beforeLast} to ${afterLast}`,
      );
    }
    for (let index = Math.max(before.first, after.first); index <= beforeLast; index++) {
      const was = entryAt(before, index) as Entry;
      const now = entryAt(after, index) as Entry;
      if (!sameEntry(was, now)) {
        throw new SafetyViolation(
          "leader append-only",
          `leader ${id} of term ${term} replaced ${describeEntry(was)} by ${describeEntry(now)}`,
        );
      }
    }
  }

  /**
   * A new leader's log holds every entry committed in an earlier term (that it has not
   * compacted). Later entries reach it only by its own appends, which the append-only check
   * covers.
   */
  private checkCompleteness(id: NodeId, term: number, view: LogView): void {
    const last = lastIndexOf(view);
    for (let index = Math.max(view.first, 1); index < this.committed.length; index++) {
      const record = this.committed[index];
      if (record === undefined || record.commitTerm >= term) continue;
      const entry = index <= last ? entryAt(view, index) : undefined;
      if (entry === undefined || !sameEntry(entry, record.entry)) {
        throw new SafetyViolation(
          "leader completeness",
          `leader ${id} of term ${term} has ${describeEntry(entry)} at index ${index}, ` +
            `but ${describeEntry(record.entry)} was committed there by term ${record.commitTerm}`,
        );
      }
    }
  }

  /**
   * Log matching: if two logs hold an entry with the same index and term, they are identical in
   * every entry up to it (over the indexes both still hold).
   */
  private checkLogMatching(views: ReadonlyMap<NodeId, LogView>): void {
    const ids = [...views.keys()];
    for (let i = 0; i < ids.length; i++) {
      for (let j = i + 1; j < ids.length; j++) {
        const a = views.get(ids[i] as NodeId) as LogView;
        const b = views.get(ids[j] as NodeId) as LogView;
        const lo = Math.max(a.first, b.first);
        let matched: Entry | undefined;
        for (let index = Math.min(lastIndexOf(a), lastIndexOf(b)); index >= lo; index--) {
          const ea = entryAt(a, index) as Entry;
          const eb = entryAt(b, index) as Entry;
          if (matched === undefined) {
            if (ea.term !== eb.term) continue;
            matched = ea;
          }
          if (!sameEntry(ea, eb)) {
            throw new SafetyViolation(
              "log matching",
              `nodes ${ids[i]} and ${ids[j]} both hold ${describeEntry(matched)}, but at index ` +
                `${index} have ${describeEntry(ea)} and ${describeEntry(eb)}`,
            );
          }
        }
      }
    }
  }

  /**
   * State machine safety: folds what the node applied since the last observation into its
   * model state, checking every applied entry against every other application of its index.
   */
  private syncApplied(node: TestNode): NodeTrack {
    const track = this.track(node);
    const snapshot = node.storage.snapshot();
    const snapIndex = snapshot.metadata.index;
    while (track.consumed < node.applied.length) {
      const entry = node.applied[track.consumed] as Entry;
      if (entry.index > snapIndex && track.state.index < snapIndex) {
        this.installSnapshot(node, track, snapshot);
      }
      this.checkApplied(node, track, entry);
      track.consumed++;
    }
    if (track.state.index < snapIndex) this.installSnapshot(node, track, snapshot);
    // No-ops and conf changes are applied too, without changing the model state.
    if (node.appliedIndex > track.state.index) {
      track.state = { ...track.state, index: node.appliedIndex };
    }
    this.checkStateAt(node.id, track.state);
    return track;
  }

  private installSnapshot(node: TestNode, track: NodeTrack, snapshot: Snapshot): void {
    const state = decodeAppState(snapshot);
    if (state.index !== snapshot.metadata.index) {
      throw new SafetyViolation(
        "snapshot",
        `node ${node.id} installed a snapshot at index ${snapshot.metadata.index} holding the state at ${state.index}`,
      );
    }
    this.checkStateAt(node.id, state);
    track.state = state;
    track.lastAppliedEntry = Math.max(track.lastAppliedEntry, state.index);
  }

  private checkApplied(node: TestNode, track: NodeTrack, entry: Entry): void {
    if (entry.index <= track.lastAppliedEntry) {
      throw new SafetyViolation(
        "state machine safety",
        `node ${node.id} applied ${describeEntry(entry)} after index ${track.lastAppliedEntry}`,
      );
    }
    const first = this.appliedByIndex[entry.index];
    if (first === undefined) {
      this.appliedByIndex[entry.index] = entry;
    } else if (!sameEntry(first, entry)) {
      throw new SafetyViolation(
        "state machine safety",
        `node ${node.id} applied ${describeEntry(entry)} where ${describeEntry(first)} was applied before`,
      );
    }
    const record = this.committed[entry.index];
    if (record !== undefined && !sameEntry(record.entry, entry)) {
      throw new SafetyViolation(
        "state machine safety",
        `node ${node.id} applied ${describeEntry(entry)} but ${describeEntry(record.entry)} is committed there`,
      );
    }
    track.lastAppliedEntry = entry.index;
    track.state = applyToState(track.state, entry);
  }

  private checkStateAt(id: NodeId, state: AppState): void {
    const known = this.stateAt.get(state.index);
    if (known === undefined) {
      this.stateAt.set(state.index, state);
    } else if (known.count !== state.count || known.digest !== state.digest) {
      throw new SafetyViolation(
        "state machine safety",
        `node ${id} reached state ${JSON.stringify(state)} at index ${state.index}, ` +
          `another node ${JSON.stringify(known)}`,
      );
    }
  }

  /** A safe read is answered with at least the commit index known when it was issued. */
  private checkReadStates(): void {
    for (const node of this.cluster.nodes.values()) {
      const track = this.track(node);
      while (track.readsConsumed < node.readStates.length) {
        const rs = node.readStates[track.readsConsumed++];
        if (rs === undefined) continue;
        const key = text(rs.requestCtx);
        const floor = this.reads.get(key);
        if (floor !== undefined && rs.index < floor) {
          throw new SafetyViolation(
            "linearizable read",
            `node ${node.id} got read ${JSON.stringify(key)} at index ${rs.index}, ` +
              `but index ${floor} was already committed when it was issued`,
          );
        }
      }
    }
  }

  /** The node's track, reset to the node's restarted state on a new incarnation. */
  private track(node: TestNode): NodeTrack {
    let track = this.tracks.get(node.id);
    if (track === undefined) {
      track = {
        raw: node.raw,
        incarnation: 0,
        commit: 0,
        appliedIndex: 0,
        consumed: 0,
        lastAppliedEntry: 0,
        state: EMPTY_APP_STATE,
        readsConsumed: 0,
        votes: new Map(),
        persistedTerm: 0,
      };
      this.tracks.set(node.id, track);
    } else if (track.raw !== node.raw) {
      // A restart: volatile state starts again from what was persisted.
      track.raw = node.raw;
      track.incarnation++;
      track.commit = 0;
      track.appliedIndex = 0;
      track.consumed = 0;
      track.readsConsumed = 0;
      const snapshot = node.storage.snapshot();
      track.state = decodeAppState(snapshot);
      track.lastAppliedEntry = snapshot.metadata.index;
    }
    return track;
  }
}
