import { EntryType, type ConfState, type Entry } from "../../src/raft/types.js";

/** Small segments, so the crash test kills during rollovers too. */
export const CRASH_SEGMENT_SIZE_BYTES = 32 * 1024;

/** The configuration of the crash test's store. */
export const CRASH_VOTERS: ConfState = {
  voters: [1],
  learners: [],
  votersOutgoing: [],
  learnersNext: [],
  autoLeave: false,
};

/** The entry the crash child writes at `index`: its size and bytes derive from the index. */
export function crashEntry(index: number): Entry {
  const sizeBytes = 8 + ((index * 7919) % 600);
  const data = new Uint8Array(sizeBytes);
  for (let i = 0; i < sizeBytes; i++) data[i] = (index * 31 + i) & 0xff;
  return { index, term: 1, type: EntryType.Normal, data };
}
