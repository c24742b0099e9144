/**
 * The linearizability checker against known answers: a brute-force reference (every order of
 * every subset of unknown writes) on small random histories, long histories generated from a
 * real register (linearizable by construction, with many unknown outcomes), and the same
 * histories with one planted violation.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SeededRandom } from "../../src/common/random.js";
import { checkLinearizable, stepRegister } from "../../src/sim/checkers/linearizability.js";
import { boundUnknownWrites } from "../../src/sim/checkers/unknown-writes.js";
import type { HistoryOperation, KvInput, KvOutput } from "../../src/sim/history.js";

/**
 * The definition, by exhaustive search: some total order of the known operations and of any
 * subset of the unknown ones respects real time (an operation completed before another was
 * invoked comes first) and the register's rules.
 */
function bruteForce(history: readonly HistoryOperation[]): boolean {
  const ops = history.filter((op) => !(op.output === undefined && op.input.kind === "get"));
  const used = new Array<boolean>(ops.length).fill(false);
  const search = (state: string | null): boolean => {
    // Done when every known operation is placed (unknown ones may be left out: "never").
    if (ops.every((op, i) => used[i] === true || op.output === undefined)) return true;
    for (let i = 0; i < ops.length; i++) {
      if (used[i] === true) continue;
      const op = ops[i] as HistoryOperation;
      // Real time: no unplaced operation may have completed before this one was invoked.
      if (ops.some((o, j) => used[j] !== true && j !== i && o.completeStamp < op.invokeStamp))
        continue;
      const step = stepRegister(state, op.input, op.output);
      if (!step.ok) continue;
      used[i] = true;
      const found = search(step.state);
      used[i] = false;
      if (found) return true;
    }
    return false;
  };
  return search(null);
}

/** A history of one key from a real register: each operation takes effect at a random point. */
function registerHistory(
  random: SeededRandom,
  count: number,
  unknownPercent: number,
  clients: number,
): HistoryOperation[] {
  interface Pending {
    client: number;
    input: KvInput;
    invoke: number;
    effectAt: number;
    output?: KvOutput;
    lost: boolean;
  }
  const history: HistoryOperation[] = [];
  const pending: Pending[] = [];
  let state: string | null = null;
  let stamp = 0;
  let id = 0;
  let written = 0;
  const lastSeen: (string | null)[] = new Array<string | null>(clients).fill(null);
  const busy = new Set<number>();
  while (history.length < count || pending.length > 0) {
    const free = [...Array(clients).keys()].filter((c) => !busy.has(c));
    if (history.length + pending.length < count && free.length > 0 && random.int(3) > 0) {
      const client = free[random.int(free.length)] as number;
      const roll = random.int(10);
      const value = `v${written++}`;
      const input: KvInput =
        roll < 4
          ? { kind: "put", key: "k", value }
          : roll < 7
            ? { kind: "get", key: "k" }
            : { kind: "cas", key: "k", expected: lastSeen[client] ?? null, value };
      busy.add(client);
      // Some writes never take effect at all (lost at a deposed leader): unknown outcome.
      const lost = input.kind !== "get" && random.int(100) < unknownPercent / 2;
      pending.push({ client, input, invoke: ++stamp, effectAt: 0, lost });
      continue;
    }
    if (pending.length === 0) continue;
    // Take effect (once) and, later, complete: pick a pending operation and advance it.
    const p = pending[random.int(pending.length)] as Pending;
    if (p.effectAt === 0) {
      p.effectAt = ++stamp;
      if (!p.lost) {
        const step = stepRegister(state, p.input, undefined);
        if (p.input.kind === "get") p.output = { kind: "get", value: state };
        else if (p.input.kind === "put") p.output = { kind: "put" };
        else
          p.output =
            p.input.expected === state
              ? { kind: "cas", succeeded: true }
              : { kind: "cas", succeeded: false, current: state };
        state = step.state;
      }
      continue;
    }
    pending.splice(pending.indexOf(p), 1);
    busy.delete(p.client);
    const unknown = p.lost || random.int(100) < unknownPercent;
    const completeStamp = unknown ? Infinity : ++stamp;
    if (!unknown && p.output !== undefined) {
      if (p.output.kind === "get") lastSeen[p.client] = p.output.value;
      else if (p.output.kind === "put" || p.output.succeeded)
        lastSeen[p.client] = p.input.kind === "get" ? null : p.input.value;
      else lastSeen[p.client] = p.output.current;
    }
    history.push({
      id: id++,
      client: p.client,
      input: p.input,
      output: unknown ? undefined : p.output,
      invokeStamp: p.invoke,
      completeStamp,
      invokeMs: p.invoke,
      completeMs: unknown ? undefined : completeStamp,
    });
  }
  return history;
}

/** The same history with one completed read changed to a value it cannot have seen. */
function plantStaleRead(history: HistoryOperation[], random: SeededRandom): HistoryOperation[] {
  // A read that completed after a later known put completed, made to return a value written
  // only after that read completed (or never): impossible in any linearization.
  const reads = history.filter(
    (op) => op.input.kind === "get" && op.output !== undefined && op.invokeStamp > 10,
  );
  const victim = reads[random.int(reads.length)] as HistoryOperation;
  const copy = history.map((op) =>
    op === victim ? { ...op, output: { kind: "get" as const, value: "never-written" } } : op,
  );
  return copy;
}

describe("the checker agrees with brute force", () => {
  it("on small random histories with unknown outcomes, linearizable or not", () => {
    const operation = fc.record({
      kind: fc.constantFrom("put", "get", "cas"),
      expected: fc.constantFrom<string | null>(null, "v0", "v1", "v2", "v3"),
      result: fc.constantFrom<string | null>(null, "v0", "v1", "v2", "v3"),
      succeeded: fc.boolean(),
      unknown: fc.boolean(),
      start: fc.integer({ min: 0, max: 20 }),
      length: fc.integer({ min: 1, max: 10 }),
    });
    fc.assert(
      fc.property(fc.array(operation, { minLength: 1, maxLength: 7 }), (specs) => {
        let written = 0;
        const history: HistoryOperation[] = specs.map((s, i) => {
          const value = `v${written++}`;
          const input: KvInput =
            s.kind === "put"
              ? { kind: "put", key: "k", value }
              : s.kind === "get"
                ? { kind: "get", key: "k" }
                : { kind: "cas", key: "k", expected: s.expected, value };
          const output: KvOutput =
            s.kind === "put"
              ? { kind: "put" }
              : s.kind === "get"
                ? { kind: "get", value: s.result }
                : s.succeeded
                  ? { kind: "cas", succeeded: true }
                  : { kind: "cas", succeeded: false, current: s.result };
          // Distinct stamps: invoke 2*start*8+i, complete later.
          const invokeStamp = s.start * 16 + i;
          const completeStamp = s.unknown ? Infinity : (s.start + s.length) * 16 + i + 8;
          return {
            id: i,
            client: i,
            input,
            output: s.unknown ? undefined : output,
            invokeStamp,
            completeStamp,
            invokeMs: invokeStamp,
            completeMs: s.unknown ? undefined : completeStamp,
          };
        });
        const result = checkLinearizable(history);
        expect(result.inconclusive).toBe(false);
        expect(result.ok).toBe(bruteForce(history));
      }),
      { numRuns: 3000, seed: 17 },
    );
  });
});

/** A search budget ample for a bounded history of this size, far too small without bounding. */
const BUDGET = 1_000_000;

describe("long histories of a real register", () => {
  it("are linearizable and conclusive, with a third of the writes unknown", () => {
    for (let seed = 1; seed <= 5; seed++) {
      const random = new SeededRandom(seed);
      const history = registerHistory(random, 4000, 30, 10);
      const unknown = history.filter((op) => op.output === undefined).length;
      expect(unknown).toBeGreaterThan(800);
      const result = checkLinearizable(history);
      expect(result).toMatchObject({ ok: true, inconclusive: false });
      expect((result.unknownWritesDropped ?? 0) + (result.unknownWritesBounded ?? 0)).toBe(
        history.filter((op) => op.output === undefined && op.input.kind !== "get").length,
      );
    }
  });

  it("went inconclusive without bounding unknown writes (what the rewrite buys)", () => {
    const history = registerHistory(new SeededRandom(3), 4000, 30, 10);
    // Unique values disabled: the same history with every written value duplicated once
    // more through a never-completed put defeats the rewrite (repeated values).
    const duplicated: HistoryOperation[] = [
      ...history,
      {
        id: 1_000_000,
        client: 99,
        input: { kind: "put", key: "k", value: "v0" },
        output: undefined,
        invokeStamp: 1e9,
        completeStamp: Infinity,
        invokeMs: 1e9,
        completeMs: undefined,
      },
    ];
    expect(boundUnknownWrites(duplicated)).toBeUndefined();
    expect(checkLinearizable(duplicated, { maxStepsPerKey: BUDGET }).inconclusive).toBe(true);
    expect(checkLinearizable(history, { maxStepsPerKey: BUDGET })).toMatchObject({
      ok: true,
      inconclusive: false,
    });
  });

  it("are rejected with one planted stale or impossible read", () => {
    for (let seed = 1; seed <= 5; seed++) {
      const random = new SeededRandom(100 + seed);
      const history = plantStaleRead(registerHistory(random, 1500, 30, 10), random);
      const result = checkLinearizable(history);
      expect(result).toMatchObject({ ok: false, inconclusive: false, key: "k" });
    }
  });

  it("are rejected when an acknowledged write is lost", () => {
    const random = new SeededRandom(7);
    const history = registerHistory(random, 1500, 20, 10);
    // The last write acknowledged before a final read: the final read returns the value
    // before it, as if the write had been lost.
    const last = history.reduce((a, b) => (a.completeStamp > b.completeStamp ? a : b));
    const writes = history.filter(
      (op) => op.input.kind === "put" && op.output !== undefined && op.completeStamp < Infinity,
    );
    const newest = writes.reduce((a, b) => (a.completeStamp > b.completeStamp ? a : b));
    const older = writes.find(
      (op) => op.completeStamp < newest.invokeStamp && op !== newest,
    ) as HistoryOperation;
    const finalRead: HistoryOperation = {
      id: 2_000_000,
      client: 0,
      input: { kind: "get", key: "k" },
      output: { kind: "get", value: older.input.kind === "put" ? older.input.value : null },
      invokeStamp: last.completeStamp + 1,
      completeStamp: last.completeStamp + 2,
      invokeMs: 0,
      completeMs: 0,
    };
    expect(checkLinearizable([...history, finalRead]).ok).toBe(false);
  });

  it("are rejected when an unknown write is observed before it was invoked", () => {
    const history: HistoryOperation[] = [
      {
        id: 0,
        client: 1,
        input: { kind: "get", key: "k" },
        output: { kind: "get", value: "x" },
        invokeStamp: 1,
        completeStamp: 2,
        invokeMs: 1,
        completeMs: 2,
      },
      {
        id: 1,
        client: 2,
        input: { kind: "put", key: "k", value: "x" },
        output: undefined,
        invokeStamp: 3,
        completeStamp: Infinity,
        invokeMs: 3,
        completeMs: undefined,
      },
    ];
    const result = checkLinearizable(history);
    expect(result.ok).toBe(false);
    expect(result.explanation).toContain("before its only write");
  });
});
