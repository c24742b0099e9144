/**
 * Where a node's start went: the time from the process's start to the first line of the node's
 * code (Node's own start and module loading), opening the storage, restoring the snapshot,
 * starting the services, and replaying the log entries it knew were committed. Said in one line
 * once the replay is done, so an operator sees what a slow restart spent its time on.
 */
import { performance } from "node:perf_hooks";

/** One measured phase: its name and its length in milliseconds. */
export interface StartupPhase {
  readonly name: string;
  readonly ms: number;
}

/** Times consecutive start-up phases; see the module comment. Never throws. */
export class StartupPhases {
  readonly #phases: StartupPhase[] = [];
  readonly #now: () => number;
  #lastMs: number;

  /**
   * Starts timing now. The time before it (since the process started: Node's start-up and the
   * loading of modules) is the first phase, `processStart`.
   * @param now milliseconds since the process started (`performance.now` by default).
   */
  constructor(now: () => number = () => performance.now()) {
    this.#now = now;
    this.#lastMs = now();
    this.#phases.push({ name: "processStart", ms: this.#lastMs });
  }

  /** Ends the phase running since the last mark (or the start) and names it `name`. */
  mark(name: string): void {
    const nowMs = this.#now();
    this.#phases.push({ name, ms: nowMs - this.#lastMs });
    this.#lastMs = nowMs;
  }

  /** Milliseconds since the process started. */
  get totalMs(): number {
    return this.#lastMs;
  }

  /** The phases so far as log fields (`<name>Ms`, whole milliseconds), in order. */
  fields(): Record<string, number> {
    const fields: Record<string, number> = {};
    for (const { name, ms } of this.#phases) fields[`${name}Ms`] = Math.round(ms);
    return fields;
  }

  /** "processStart 812 ms, storageOpen 1,305 ms, …": the phases in one human-readable run. */
  describe(): string {
    return this.#phases.map(({ name, ms }) => `${name} ${Math.round(ms)} ms`).join(", ");
  }
}

/** What {@link reportWhenReplayed} watches and where it reports. */
export interface ReplayWatch {
  readonly phases: StartupPhases;
  /** The commit index the log store recovered: the entries replayed without any peer. */
  readonly commitAtOpen: number;
  /** The newest snapshot's index when the store opened (replay starts after it). */
  readonly snapshotIndex: number;
  readonly appliedIndex: () => number;
  /** Calls the listener after applies; returns the unsubscribe function. */
  readonly subscribe: (listener: () => void) => () => void;
  readonly log: (message: string, fields: Record<string, unknown>) => void;
}

/**
 * Ends the phase `logReplay` once the node has applied every entry its log store knew to be
 * committed, and logs all phases in one line. That is the start's local part: serving a
 * linearizable read also needs the leader's answer, which comes after. Returns a function that
 * stops watching (for a node stopped before). Never throws.
 */
export function reportWhenReplayed(watch: ReplayWatch): () => void {
  let done = false;
  const check = (): void => {
    if (done || watch.appliedIndex() < watch.commitAtOpen) return;
    done = true;
    unsubscribe();
    watch.phases.mark("logReplay");
    watch.log(`log replayed ${Math.round(watch.phases.totalMs)} ms after the process started`, {
      ...watch.phases.fields(),
      entriesReplayed: Math.max(0, watch.commitAtOpen - watch.snapshotIndex),
      phases: watch.phases.describe(),
    });
  };
  // Listeners run later (after a burst of applies), never inside subscribe: `unsubscribe` is set.
  const unsubscribe = watch.subscribe(check);
  check();
  return () => {
    done = true;
    unsubscribe();
  };
}
