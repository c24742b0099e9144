/**
 * Targeted nemesis schedules: scripted fault sequences that drive the cluster into one classic
 * corner, still deterministic from the seed (which nodes play which part, and every delay).
 *
 * `figure8` replays Figure 8 of the Raft paper: a leader A writes entries that reach only B;
 * a rival C wins a later term and writes its own entries alone; A (or B) wins again and
 * replicates its old-term entries to a majority; the moment that leader's commit index stands
 * on an entry of an earlier term (which a correct leader never does: it only counts replicas of
 * its own term's entries), it is cut off, and C, whose last term is higher, can win again and
 * overwrite what was "committed". With the planted Figure 8 bug this ends in a log-matching or
 * state-machine-safety violation; without it the trigger never fires.
 */
import type { Random } from "../common/random.js";
import type { RaftNode } from "../node/raft-node.js";
import { Role, type NodeId } from "../raft/types.js";
import type { SimCluster } from "./cluster.js";
import type { SimNetwork } from "./network.js";
import { shuffled } from "./rng.js";
import type { Scheduler } from "./scheduler.js";
import type { SimResult } from "./state-machine.js";

/** The targeted schedules a run can ask for. */
export const SCHEDULES = ["figure8"] as const;
/** One targeted schedule. */
export type ScheduleName = (typeof SCHEDULES)[number];

/** How long the script lets the old leader write entries only its partner receives, in ms. */
const OLD_ENTRIES_MS = 400;
/** How long a phase may wait for its leader before the script heals and starts over, in ms. */
const PHASE_LIMIT_MS = 4000;
/** How long the rival gets to win back the cluster before the script starts over, in ms. */
const RIVAL_MS = 3000;

type Phase = "wait-leader" | "old-entries" | "wait-rival" | "re-elect" | "watch-commit" | "rival";

/** A core's term, role, commit index and the term of the entry there (its inspection seam). */
function core(node: RaftNode<SimResult> | undefined) {
  const view = node?.inspect();
  if (view === undefined) return undefined;
  return {
    term: view.term,
    role: view.role,
    commit: view.commit,
    commitTerm: view.termAt(view.commit),
  };
}

/** The Figure 8 script; call {@link observe} after every event. */
export class Figure8Schedule {
  private phase: Phase = "wait-leader";
  private phaseStartMs = 0;
  private a: NodeId = 0;
  private b: NodeId = 0;
  private rival: NodeId = 0;
  private rivalTerm = 0;
  private leader: NodeId = 0;
  private rest: NodeId[] = [];
  private reunited = false;
  private commitBefore = 0;
  private active = true;

  constructor(
    private readonly scheduler: Scheduler,
    private readonly random: Random,
    private readonly cluster: SimCluster,
    private readonly network: SimNetwork,
    private readonly record: (kind: string, detail: string) => void,
  ) {}

  /** Ends the script (the fault phase is over). */
  stop(): void {
    this.active = false;
  }

  private enter(phase: Phase): void {
    this.phase = phase;
    this.phaseStartMs = this.scheduler.now();
  }

  private partition(groups: NodeId[][]): void {
    this.network.healPartitions();
    this.network.partition(groups);
    this.record("figure8-partition", JSON.stringify(groups));
  }

  private leaderAmong(ids: readonly NodeId[], aboveTerm: number): NodeId | undefined {
    for (const id of ids) {
      const state = core(this.cluster.runningNode(id));
      if (state !== undefined && state.role === Role.Leader && state.term > aboveTerm) return id;
    }
    return undefined;
  }

  private restart(): void {
    this.network.healPartitions();
    this.record("figure8-heal", this.phase);
    this.enter("wait-leader");
  }

  /** Advances the script; cheap when nothing changed. */
  observe(): void {
    if (!this.active) return;
    const nowMs = this.scheduler.now();
    const elapsedMs = nowMs - this.phaseStartMs;
    switch (this.phase) {
      case "wait-leader": {
        const members = this.cluster.memberIds();
        if (members.length < 5 || elapsedMs < 300) return;
        const a = this.leaderAmong(members, 0);
        // The old leader must have committed in its term, so its later entries are its own.
        const state = a === undefined ? undefined : core(this.cluster.runningNode(a));
        if (a === undefined || state === undefined || state.commitTerm !== state.term) return;
        const others = shuffled(
          this.random,
          members.filter((id) => id !== a),
        );
        this.a = a;
        this.b = others[0] as NodeId;
        this.rest = others.slice(1);
        this.partition([[this.a, this.b], this.rest]);
        this.enter("old-entries");
        return;
      }
      case "old-entries":
        if (elapsedMs >= OLD_ENTRIES_MS) this.enter("wait-rival");
        return;
      case "wait-rival": {
        const termA = core(this.cluster.runningNode(this.a))?.term ?? 0;
        const rival = this.leaderAmong(this.rest, termA);
        if (rival === undefined) {
          if (elapsedMs > PHASE_LIMIT_MS) this.restart();
          return;
        }
        // The rival's first entries must reach nobody: cut it off the moment it leads.
        this.rival = rival;
        this.rivalTerm = core(this.cluster.runningNode(rival))?.term ?? 0;
        const voters = this.rest.filter((id) => id !== rival);
        this.partition([[this.a, this.b], [rival], voters]);
        this.reunited = false;
        this.enter("re-elect");
        return;
      }
      case "re-elect": {
        if (elapsedMs < 100) return;
        if (!this.reunited) {
          // Everyone but the rival is together again; the old leaders have the longest logs.
          this.reunited = true;
          const majority = [this.a, this.b, ...this.rest.filter((id) => id !== this.rival)];
          this.partition([majority, [this.rival]]);
          return;
        }
        const leader = this.leaderAmong([this.a, this.b], this.rivalTerm);
        if (leader === undefined) {
          if (elapsedMs > PHASE_LIMIT_MS) this.restart();
          return;
        }
        this.leader = leader;
        this.commitBefore = core(this.cluster.runningNode(leader))?.commit ?? 0;
        this.enter("watch-commit");
        return;
      }
      case "watch-commit": {
        const state = core(this.cluster.runningNode(this.leader));
        if (state === undefined || state.role !== Role.Leader || elapsedMs > PHASE_LIMIT_MS) {
          this.restart();
          return;
        }
        if (state.commit <= this.commitBefore || state.commitTerm >= this.rivalTerm) return;
        // The leader's commit index stands on an entry older than the rival's: cut it off.
        const partner = this.leader === this.a ? this.b : this.a;
        const others = this.rest.filter((id) => id !== this.rival);
        this.partition([
          [this.leader, partner],
          [this.rival, ...others],
        ]);
        this.record("figure8-trigger", `leader ${this.leader} commit ${state.commit}`);
        this.enter("rival");
        return;
      }
      case "rival":
        if (elapsedMs > RIVAL_MS) this.restart();
        return;
    }
  }
}
