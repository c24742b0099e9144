/**
 * A linearizability checker for a history of single-key register operations with
 * compare-and-set, in the style of Wing & Gong as improved by Lowe and used by Porcupine:
 * a depth-first search for a linearization over a doubly linked list of call and return events,
 * memoizing each (set of linearized operations, register state) pair already explored, and
 * checking each key's operations separately (P-compositionality).
 *
 * An operation whose outcome is unknown returns "at infinity": it may take effect at any point
 * after its invocation, or never (taking effect after every other operation is the same as never).
 * With unique written values, unknown writes are first dropped or bounded (unknown-writes.ts),
 * which keeps long fault histories with hundreds of timeouts conclusive.
 */
import { SeededRandom } from "../../common/random.js";
import {
  describeOperation,
  type HistoryOperation,
  type KvInput,
  type KvOutput,
} from "../history.js";
import { boundUnknownWrites } from "./unknown-writes.js";

/** The outcome of a check. */
export interface LinearizabilityResult {
  /** True when every key's history is linearizable. */
  readonly ok: boolean;
  /** True when a key's search hit the step budget (its history was neither proven nor refuted). */
  readonly inconclusive: boolean;
  /** The key whose history is not linearizable. */
  readonly key?: string;
  /** A readable account of the failure: the key's operations and the longest linearization. */
  readonly explanation?: string;
  /** Unknown writes no one observed, dropped before the search (see unknown-writes.ts). */
  readonly unknownWritesDropped?: number;
  /** Unknown writes someone observed, made known with a bounded completion. */
  readonly unknownWritesBounded?: number;
}

/** Default search budget per key, in steps. */
const DEFAULT_MAX_STEPS_PER_KEY = 2_000_000;

/** The register's value: a string, or null when the key is absent. */
type RegisterState = string | null;

/**
 * The register-with-CAS model: whether `input` with `output` (undefined = unknown) may happen
 * in `state`, and the state after it.
 */
export function stepRegister(
  state: RegisterState,
  input: KvInput,
  output: KvOutput | undefined,
): { readonly ok: boolean; readonly state: RegisterState } {
  switch (input.kind) {
    case "put":
      return { ok: output === undefined || output.kind === "put", state: input.value };
    case "get":
      return {
        ok: output === undefined || (output.kind === "get" && output.value === state),
        state,
      };
    case "cas": {
      const matches = input.expected === state;
      if (output === undefined) return { ok: true, state: matches ? input.value : state };
      if (output.kind !== "cas") return { ok: false, state };
      if (output.succeeded) return { ok: matches, state: input.value };
      return { ok: !matches && output.current === state, state };
    }
  }
}

interface ListNode {
  readonly operation: number;
  readonly isCall: boolean;
  /** For a call, its return; for a return, its call. */
  match: ListNode | undefined;
  prev: ListNode | undefined;
  next: ListNode | undefined;
}

function lift(call: ListNode): void {
  const ret = call.match as ListNode;
  (call.prev as ListNode).next = call.next;
  if (call.next !== undefined) call.next.prev = call.prev;
  (ret.prev as ListNode).next = ret.next;
  if (ret.next !== undefined) ret.next.prev = ret.prev;
}

function unlift(call: ListNode): void {
  const ret = call.match as ListNode;
  (ret.prev as ListNode).next = ret;
  if (ret.next !== undefined) ret.next.prev = ret;
  (call.prev as ListNode).next = call;
  if (call.next !== undefined) call.next.prev = call;
}

/** Per operation, two 32-bit random words: the memo hashes a set of operations by XOR. */
function zobristKeys(count: number): Uint32Array {
  const keys = new Uint32Array(count * 2);
  const random = new SeededRandom(0x11ea5);
  for (let i = 0; i < keys.length; i++) keys[i] = random.int(0x1_0000_0000);
  return keys;
}

/**
 * Checks one key's operations. `bounded[i]` marks a completion that is a bound (from
 * {@link boundUnknownWrites}): it sorts before every other event of the same stamp.
 * @returns ok, or the longest linearization found; `inconclusive` when over budget.
 */
function checkKey(
  operations: readonly HistoryOperation[],
  bounded: readonly boolean[] | undefined,
  maxSteps: number,
  exact: boolean,
): { ok: boolean; inconclusive: boolean; longest: number[] } {
  // Events in time order; ties cannot happen for known stamps, unknown returns sort last by id.
  const events: { stamp: number; rank: number; tie: number; node: ListNode }[] = [];
  operations.forEach((op, i) => {
    const call: ListNode = {
      operation: i,
      isCall: true,
      match: undefined,
      prev: undefined,
      next: undefined,
    };
    const ret: ListNode = {
      operation: i,
      isCall: false,
      match: call,
      prev: undefined,
      next: undefined,
    };
    call.match = ret;
    events.push({ stamp: op.invokeStamp, rank: 1, tie: 0, node: call });
    events.push({
      stamp: op.completeStamp,
      rank: bounded?.[i] === true ? 0 : 1,
      tie: op.id,
      node: ret,
    });
  });
  events.sort((a, b) => a.stamp - b.stamp || a.rank - b.rank || a.tie - b.tie);
  const head: ListNode = {
    operation: -1,
    isCall: false,
    match: undefined,
    prev: undefined,
    next: undefined,
  };
  let last = head;
  for (const { node } of events) {
    last.next = node;
    node.prev = last;
    last = node;
  }

  // The memo: (set of linearized operations, register state) pairs already explored. The set
  // is hashed with 64-bit Zobrist keys; a collision could only prune a branch (a false
  // "violation", never a false pass), and violations are re-checked with exact sets.
  const zobrist = zobristKeys(operations.length);
  const linearized = new Uint32Array(exact ? Math.ceil(operations.length / 32) : 0);
  const seen = new Set<string>();
  const stack: { call: ListNode; state: RegisterState }[] = [];
  let hashLow = 0;
  let hashHigh = 0;
  let state: RegisterState = null;
  let longest: number[] = [];
  let steps = 0;
  let entry = head.next;
  while (head.next !== undefined) {
    if (++steps > maxSteps) return { ok: false, inconclusive: true, longest };
    if (entry !== undefined && entry.isCall) {
      const op = operations[entry.operation] as HistoryOperation;
      const result = stepRegister(state, op.input, op.output);
      if (result.ok) {
        const low = (hashLow ^ (zobrist[entry.operation * 2] as number)) >>> 0;
        const high = (hashHigh ^ (zobrist[entry.operation * 2 + 1] as number)) >>> 0;
        const word = entry.operation >>> 5;
        const bit = 1 << (entry.operation & 31);
        if (exact) linearized[word] = (linearized[word] as number) | bit;
        const set = exact ? linearized.join(",") : `${low},${high},${stack.length}`;
        const key = `${set}|${result.state === null ? "\u0000" : result.state}`;
        if (!seen.has(key)) {
          seen.add(key);
          stack.push({ call: entry, state });
          state = result.state;
          hashLow = low;
          hashHigh = high;
          lift(entry);
          if (stack.length > longest.length) longest = stack.map((s) => s.call.operation);
          entry = head.next;
          continue;
        }
        if (exact) linearized[word] = (linearized[word] as number) & ~bit;
      }
      entry = entry.next;
    } else {
      // A return whose call is not linearized yet: undo the last choice and try the next one.
      // (Running off the end cannot happen: every call's return follows it in the list.)
      const top = stack.pop();
      if (top === undefined) return { ok: false, inconclusive: false, longest };
      state = top.state;
      hashLow = (hashLow ^ (zobrist[top.call.operation * 2] as number)) >>> 0;
      hashHigh = (hashHigh ^ (zobrist[top.call.operation * 2 + 1] as number)) >>> 0;
      if (exact) {
        const word = top.call.operation >>> 5;
        linearized[word] = (linearized[word] as number) & ~(1 << (top.call.operation & 31));
      }
      unlift(top.call);
      entry = top.call.next;
    }
  }
  return { ok: true, inconclusive: false, longest };
}

/**
 * Checks that a history of register operations is linearizable, key by key
 * (P-compositionality). Gets whose outcome is unknown are ignored (they constrain nothing);
 * writes whose outcome is unknown are bounded first ({@link boundUnknownWrites}) when the
 * key's written values are unique.
 */
export function checkLinearizable(
  history: readonly HistoryOperation[],
  options: { readonly maxStepsPerKey?: number } = {},
): LinearizabilityResult {
  const byKey = new Map<string, HistoryOperation[]>();
  for (const op of history) {
    if (op.output === undefined && op.input.kind === "get") continue;
    const list = byKey.get(op.input.key);
    if (list === undefined) byKey.set(op.input.key, [op]);
    else list.push(op);
  }
  const maxSteps = options.maxStepsPerKey ?? DEFAULT_MAX_STEPS_PER_KEY;
  let inconclusive = false;
  let dropped = 0;
  let bounded = 0;
  for (const key of [...byKey.keys()].sort()) {
    const original = byKey.get(key) as HistoryOperation[];
    const rewritten = boundUnknownWrites(original);
    if (rewritten !== undefined && !rewritten.ok) {
      return { ok: false, inconclusive: false, key, explanation: rewritten.explanation };
    }
    const operations = rewritten?.operations ?? original;
    if (rewritten !== undefined) {
      dropped += rewritten.dropped;
      bounded += rewritten.bounded.filter((b) => b).length;
    }
    let result = checkKey(operations, rewritten?.bounded, maxSteps, false);
    // A hashed memo can only wrongly prune; confirm a violation with exact sets.
    if (!result.ok && !result.inconclusive) {
      result = checkKey(operations, rewritten?.bounded, maxSteps, true);
    }
    if (result.inconclusive) {
      inconclusive = true;
      continue;
    }
    if (!result.ok) {
      return {
        ok: false,
        inconclusive: false,
        key,
        explanation: explain(operations, result.longest),
      };
    }
  }
  return {
    ok: true,
    inconclusive,
    unknownWritesDropped: dropped,
    unknownWritesBounded: bounded,
  };
}

const MAX_EXPLAINED_OPERATIONS = 40;

function explain(operations: readonly HistoryOperation[], longest: readonly number[]): string {
  const inOrder = longest.map((i) => operations[i] as HistoryOperation);
  const done = new Set(longest);
  const rest = operations
    .filter((_, i) => !done.has(i))
    .sort((a, b) => a.invokeStamp - b.invokeStamp);
  const lines = [
    `longest linearizable prefix (${inOrder.length} of ${operations.length} operations), last ${Math.min(10, inOrder.length)}:`,
    ...inOrder.slice(-10).map((op) => `  ${describeOperation(op)}`),
    `operations that could not be placed after it (first ${Math.min(MAX_EXPLAINED_OPERATIONS, rest.length)}):`,
    ...rest.slice(0, MAX_EXPLAINED_OPERATIONS).map((op) => `  ${describeOperation(op)}`),
  ];
  return lines.join("\n");
}
