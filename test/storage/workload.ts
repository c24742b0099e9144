/**
 * A random workload against a WalLogStore, shaped like a raft node's: appends, a follower's
 * conflicting suffix rewrites, hard states, snapshots, compaction and a leader's snapshot. It
 * records the store's state after every save so a test can check that what a recovery returns
 * is one of the states the store really went through.
 */
import type { Random } from "../../src/common/random.js";
import type { Entry } from "../../src/raft/types.js";
import type { WalLogStore } from "../../src/storage/wal-log-store.js";
import { entry, VOTERS } from "./helpers.js";

/** What the workload did. */
export interface WorkloadResult {
  /** Every entry ever saved, newest version per (index, term). */
  readonly saved: Map<string, Entry>;
  /** After each save: the full list of [index, term] of the log's entries. */
  readonly states: { entries: Map<number, Entry>; acknowledged: boolean; firstWritten: number }[];
  /** Index into `states` of the last save whose durable promise resolved. */
  lastAcknowledged: number;
}

/**
 * Runs `operations` random operations. Saves with `sync` are awaited unless `inFlightTail` says
 * the last few may still be in flight when it returns.
 */
export async function runWorkload(
  store: WalLogStore,
  random: Random,
  options: { operations: number; allowUnsynced: boolean; inFlightTail: number },
): Promise<WorkloadResult> {
  let term = Math.max(1, store.initialState().hardState.term);
  const result: WorkloadResult = { saved: new Map(), states: [], lastAcknowledged: -1 };
  const capture = (): Map<number, Entry> => {
    const map = new Map<number, Entry>();
    if (store.lastIndex() >= store.firstIndex()) {
      for (const e of store.entries(
        store.firstIndex(),
        store.lastIndex() + 1,
        Number.MAX_SAFE_INTEGER,
      )) {
        map.set(e.index, e);
      }
    }
    return map;
  };
  const inFlight: Promise<void>[] = [];
  for (let op = 0; op < options.operations; op++) {
    const last = store.lastIndex();
    const commit = store.initialState().hardState.commit;
    const roll = random.int(100);
    const tail = op >= options.operations - options.inFlightTail;
    if (roll < 8 && store.snapshotMetadata().index < commit) {
      const index =
        store.snapshotMetadata().index + 1 + random.int(commit - store.snapshotMetadata().index);
      await store.saveSnapshot(index, VOTERS, new TextEncoder().encode(`snap${index}`));
      if (random.int(2) === 0) await store.compact(Math.max(1, index - random.int(5)));
      continue;
    }
    let update: Parameters<WalLogStore["save"]>[0];
    if (roll < 11) {
      // A leader's snapshot past our log.
      term++;
      const index = last + 1 + random.int(5);
      update = {
        entries: [],
        snapshot: {
          metadata: { index, term, confState: VOTERS },
          data: new TextEncoder().encode(`leader${index}`),
        },
        hardState: { term, vote: 0, commit: index },
      };
    } else {
      // Appends, sometimes rewriting an uncommitted suffix in a new term.
      let from = last + 1;
      if (roll < 30 && last > commit) {
        term++;
        from = commit + 1 + random.int(last - commit);
      }
      const count = 1 + random.int(6);
      const batch = Array.from({ length: count }, (_, i) => entry(from + i, term, random.int(120)));
      const newLast = from + count - 1;
      const newCommit = Math.min(newLast, commit + random.int(count + 2));
      update = {
        entries: batch,
        hardState: { term, vote: 1, commit: Math.max(commit, newCommit) },
      };
      for (const e of batch) result.saved.set(`${e.index}/${e.term}`, e);
    }
    const sync = !options.allowUnsynced || random.int(3) > 0;
    const saving = store.save(update, { sync });
    if (update.snapshot !== undefined) await saving;
    const stateIndex = result.states.length;
    result.states.push({
      entries: capture(),
      acknowledged: false,
      firstWritten: update.entries[0]?.index ?? Number.POSITIVE_INFINITY,
    });
    const acknowledge = (): void => {
      result.states[stateIndex]!.acknowledged = true;
      if (sync) result.lastAcknowledged = Math.max(result.lastAcknowledged, stateIndex);
    };
    if (tail) inFlight.push(saving.then(acknowledge, () => undefined));
    else {
      await saving;
      acknowledge();
    }
  }
  return result;
}

/** A recovered log as `index → "term/data"`. */
export function entryTexts(
  store: Pick<WalLogStore, "entries" | "firstIndex" | "lastIndex">,
): Map<number, string> {
  const map = new Map<number, string>();
  if (store.lastIndex() < store.firstIndex()) return map;
  for (const e of store.entries(
    store.firstIndex(),
    store.lastIndex() + 1,
    Number.MAX_SAFE_INTEGER,
  )) {
    map.set(e.index, entryText(e));
  }
  return map;
}

function entryText(e: Entry): string {
  return `${e.term}/${Array.from(e.data).join(",")}`;
}

/**
 * True if `got` (the entries past `snapshotIndex` of a recovered log) is the log after some save
 * k ≥ `fromState`, except that save k itself may be cut part way (a save is a run of records and
 * a crash keeps a prefix of them): entries it did not rewrite are all there, and every entry is
 * exactly what state k holds at that index. State `fromState` itself must be whole. A snapshot
 * newer than every entry kept, with no entries after it, is a state the store went through too.
 */
export function isStateOf(
  result: WorkloadResult,
  got: ReadonlyMap<number, string>,
  snapshotIndex: number,
  fromState: number,
): boolean {
  if (got.size === 0 && snapshotIndex > 0) return true;
  return result.states.some((state, k) => {
    if (k < fromState) return false;
    const cutFrom = k === fromState ? Number.POSITIVE_INFINITY : state.firstWritten;
    for (const [index, text] of got) {
      const e = state.entries.get(index);
      if (e === undefined || text !== entryText(e)) return false;
    }
    for (const index of state.entries.keys()) {
      if (index > snapshotIndex && index < cutFrom && !got.has(index)) return false;
    }
    return true;
  });
}
