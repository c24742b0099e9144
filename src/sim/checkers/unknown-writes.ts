/**
 * Bounds the effects of writes whose outcome is unknown, before the linearizability search.
 *
 * An unknown write (a timed-out put or compare-and-set) may take effect at any time after its
 * invocation, or never; left as it is, it stays "pending until infinity" and multiplies the
 * states the search must explore — long fault runs with hundreds of them went inconclusive.
 * When every write of a key carries a distinct value (the workloads make them unique), each
 * unknown write is one of two kinds, decided from the history alone:
 *
 * - **Never observed**: no completed operation saw its value (a read, a failed compare-and-set's
 *   current value, a successful compare-and-set's expectation) and no write that did take effect
 *   depended on it. Then it can be dropped: any linearization of the rest extended by the write at
 *   the very end is one of the whole history, and conversely, removing it from a linearization
 *   of the whole leaves one of the rest (only puts can come between it and the next effective
 *   write, since anything else would have observed its unique value).
 * - **Observed**: it certainly took effect (only it wrote that value), before the return of the
 *   first operation that observed it. It becomes a known, successful write completing just
 *   before that return. A compare-and-set made effective this way observed its own expectation,
 *   so the write of that value is bounded by the same time (propagated to a fixed point).
 *
 * Both rewrites preserve linearizability exactly, so the search answers the same question over a
 * history with no pending-forever operations. With repeated values the rewrite is unsound and
 * the key is left as it is.
 */
import type { HistoryOperation, KvOutput } from "../history.js";

/** The rewritten operations of one key, or the proof that the history is not linearizable. */
export type BoundedHistory =
  | {
      readonly ok: true;
      readonly operations: HistoryOperation[];
      /** Per operation, true when its completion is a bound (sorts before equal stamps). */
      readonly bounded: boolean[];
      readonly dropped: number;
    }
  | { readonly ok: false; readonly explanation: string };

const EFFECTIVE_PUT: KvOutput = { kind: "put" };
const EFFECTIVE_CAS: KvOutput = { kind: "cas", succeeded: true };

/** The value `op` (completed) proves the register held at its linearization point, if any. */
function observedValue(op: HistoryOperation): string | null {
  const output = op.output;
  if (output === undefined) return null;
  if (output.kind === "get") return output.value;
  if (output.kind === "cas") {
    if (output.succeeded) return op.input.kind === "cas" ? op.input.expected : null;
    return output.current;
  }
  return null;
}

function writtenValue(op: HistoryOperation): string | undefined {
  return op.input.kind === "get" ? undefined : op.input.value;
}

/**
 * Rewrites one key's operations as described above.
 * @returns undefined when two writes share a value (the rewrite does not apply).
 */
export function boundUnknownWrites(
  operations: readonly HistoryOperation[],
): BoundedHistory | undefined {
  const writer = new Map<string, number>();
  for (let i = 0; i < operations.length; i++) {
    const value = writtenValue(operations[i] as HistoryOperation);
    if (value === undefined) continue;
    if (writer.has(value)) return undefined;
    writer.set(value, i);
  }
  // bound[i]: the latest stamp by which unknown write i must have taken effect.
  const bound = new Float64Array(operations.length).fill(Infinity);
  const work: number[] = [];
  const observe = (value: string | null, byStamp: number): void => {
    if (value === null) return;
    const w = writer.get(value);
    if (w === undefined) return; // a value nobody wrote: the search reports it
    const write = operations[w] as HistoryOperation;
    if (write.output !== undefined || byStamp >= (bound[w] as number)) return;
    bound[w] = byStamp;
    work.push(w);
  };
  for (const op of operations) observe(observedValue(op), op.completeStamp);
  while (work.length > 0) {
    const w = work.pop() as number;
    const write = operations[w] as HistoryOperation;
    // An effective compare-and-set saw its expectation: that value's write came before it.
    if (write.input.kind === "cas") observe(write.input.expected, bound[w] as number);
  }

  const result: HistoryOperation[] = [];
  const bounded: boolean[] = [];
  let dropped = 0;
  for (let i = 0; i < operations.length; i++) {
    const op = operations[i] as HistoryOperation;
    if (op.output !== undefined || op.input.kind === "get") {
      result.push(op);
      bounded.push(false);
      continue;
    }
    const by = bound[i] as number;
    if (by === Infinity) {
      dropped++;
      continue;
    }
    if (by <= op.invokeStamp) {
      return {
        ok: false,
        explanation: `value ${op.input.value} was observed (by stamp ${by}) before its only write #${op.id} was invoked (stamp ${op.invokeStamp})`,
      };
    }
    result.push({
      ...op,
      output: op.input.kind === "put" ? EFFECTIVE_PUT : EFFECTIVE_CAS,
      completeStamp: by,
    });
    bounded.push(true);
  }
  return { ok: true, operations: result, bounded, dropped };
}
