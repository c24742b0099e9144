/**
 * Whether a txn compare holds for a key's current record (etcd's rules): an absent key has
 * version, createRevision, modRevision and lease 0, and no value, so a value compare on it holds
 * only for `notEqual`. Values compare as bytes, lexicographically.
 */
import type { KvRecord } from "./record.js";
import type { KvCompare, KvCompareOperator } from "./types.js";

function compareBytes(a: Uint8Array, b: Uint8Array): number {
  const length = Math.min(a.length, b.length);
  for (let i = 0; i < length; i++) {
    const difference = (a[i] as number) - (b[i] as number);
    if (difference !== 0) return difference;
  }
  return a.length - b.length;
}

function holds(operator: KvCompareOperator, ordering: number): boolean {
  switch (operator) {
    case "equal":
      return ordering === 0;
    case "notEqual":
      return ordering !== 0;
    case "less":
      return ordering < 0;
    case "greater":
      return ordering > 0;
  }
}

/** True if `compare` holds for `record` (undefined: the key is absent). Throws nothing. */
export function compareHolds(compare: KvCompare, record: KvRecord | undefined): boolean {
  if (compare.target === "value") {
    if (record === undefined) return compare.operator === "notEqual";
    return holds(compare.operator, compareBytes(record.value, compare.value));
  }
  const actual = record === undefined ? 0 : record[compare.target];
  return holds(compare.operator, actual - compare.number);
}
