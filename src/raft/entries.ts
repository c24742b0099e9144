/**
 * Sizes of log entries, and cutting runs of entries down to a byte budget. The core bounds every
 * batch it hands out (a message's entries, a Ready's committed entries) with these.
 */

import type { Entry } from "./types.js";

/**
 * Fixed bytes an entry costs on the wire besides its payload: term and index (8 bytes each) plus
 * its type and framing. An estimate; what matters is that every layer counts the same way.
 */
export const ENTRY_WIRE_OVERHEAD_BYTES = 24;

/**
 * Bytes an entry's payload counts toward the uncommitted-bytes limit: `data.byteLength`.
 * Never throws.
 */
export function entryPayloadSize(entry: Entry): number {
  return entry.data.byteLength;
}

/**
 * Approximate encoded size of an entry on the wire: `data.byteLength` plus
 * {@link ENTRY_WIRE_OVERHEAD_BYTES} (term, index, type). Never throws.
 */
export function entryWireSize(entry: Entry): number {
  return entry.data.byteLength + ENTRY_WIRE_OVERHEAD_BYTES;
}

/** Sum of {@link entryPayloadSize} over `entries`. Never throws. */
export function payloadsSize(entries: readonly Entry[]): number {
  let totalBytes = 0;
  for (const entry of entries) totalBytes += entry.data.byteLength;
  return totalBytes;
}

/** Sum of {@link entryWireSize} over `entries`. Never throws. */
export function wireSize(entries: readonly Entry[]): number {
  let totalBytes = 0;
  for (const entry of entries) totalBytes += entryWireSize(entry);
  return totalBytes;
}

/**
 * How many entries of `entries[from, to)`, taken in order, fit in `maxSizeBytes` of
 * {@link entryWireSize}. May be 0: callers that must make progress take at least one themselves.
 * Counting without slicing lets callers copy an array at most once. Never throws.
 */
export function countWithinSize(
  entries: readonly Entry[],
  range: { from: number; to: number; maxSizeBytes: number },
): number {
  const { from, to, maxSizeBytes } = range;
  let totalBytes = 0;
  let position = from;
  for (; position < to; position++) {
    totalBytes += entryWireSize(entries[position] as Entry);
    if (totalBytes > maxSizeBytes) break;
  }
  return position - from;
}

/**
 * The longest prefix of `entries` whose total {@link entryWireSize} is at most `maxSizeBytes`, but
 * at least one entry if `entries` is non-empty (so a single oversized entry still gets through).
 * Returns `entries` itself when nothing is cut, so the common case copies nothing. Never throws.
 */
export function limitSize<T extends readonly Entry[]>(
  entries: T,
  maxSizeBytes: number,
): Entry[] | T {
  if (entries.length === 0) return entries;
  const count = Math.max(
    1,
    countWithinSize(entries, { from: 0, to: entries.length, maxSizeBytes }),
  );
  return count === entries.length ? entries : entries.slice(0, count);
}
