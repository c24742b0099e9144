/**
 * Small fixtures for the storage tests (beside the modules and in `test/storage/`); `tsconfig.build.json` leaves `testing.ts` files out of `dist`: entries
 * whose bytes name their index and term, so a wrong entry is visible in a failure.
 */
import { EntryType, type ConfState, type Entry } from "../raft/types.js";

/** A three-voter configuration for stores under test. */
export const VOTERS: ConfState = {
  voters: [1, 2, 3],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
};

/** Entry `index` of `term`, at least `sizeBytes` long, whose data names both. Never throws. */
export function entry(index: number, term: number, sizeBytes = 0): Entry {
  const text = new TextEncoder().encode(`e${index}t${term}`);
  const data = new Uint8Array(Math.max(sizeBytes, text.byteLength));
  data.set(text);
  return { index, term, type: EntryType.Normal, data };
}

/** Entries [from, to] of `term` (see {@link entry}). Never throws. */
export function entries(from: number, to: number, term: number, sizeBytes = 0): Entry[] {
  return Array.from({ length: to - from + 1 }, (_, i) => entry(from + i, term, sizeBytes));
}
