import { describe, expect, it } from "vitest";
import { checkLinearizable, stepRegister } from "../../src/sim/checkers/linearizability.js";
import type { HistoryOperation, KvInput, KvOutput } from "../../src/sim/history.js";

let nextId = 0;
/** An operation on key "k" invoked at `invoke` and completed at `complete` (undefined = unknown). */
function op(
  input: Omit<KvInput, "key"> & { key?: string },
  output: KvOutput | undefined,
  invoke: number,
  complete: number | undefined,
): HistoryOperation {
  return {
    id: nextId++,
    client: 0,
    input: { key: "k", ...input } as KvInput,
    output,
    invokeStamp: invoke,
    completeStamp: complete ?? Infinity,
    invokeMs: invoke,
    completeMs: complete,
  };
}
const put = (value: string) => ({ kind: "put" as const, value });
const get = () => ({ kind: "get" as const });
const cas = (expected: string | null, value: string) => ({ kind: "cas" as const, expected, value });
const ok: KvOutput = { kind: "put" };
const read = (value: string | null): KvOutput => ({ kind: "get", value });
const casOk: KvOutput = { kind: "cas", succeeded: true };
const casFailed = (current: string | null): KvOutput => ({
  kind: "cas",
  succeeded: false,
  current,
});

describe("the register-with-CAS model", () => {
  it("applies puts, checks gets and compares before it sets", () => {
    expect(stepRegister(null, { kind: "put", key: "k", value: "a" }, ok)).toEqual({
      ok: true,
      state: "a",
    });
    expect(stepRegister("a", { kind: "get", key: "k" }, read("a")).ok).toBe(true);
    expect(stepRegister("a", { kind: "get", key: "k" }, read(null)).ok).toBe(false);
    expect(stepRegister("a", { kind: "cas", key: "k", expected: "a", value: "b" }, casOk)).toEqual({
      ok: true,
      state: "b",
    });
    expect(stepRegister("a", { kind: "cas", key: "k", expected: "x", value: "b" }, casOk).ok).toBe(
      false,
    );
    expect(
      stepRegister("a", { kind: "cas", key: "k", expected: "x", value: "b" }, casFailed("a")).ok,
    ).toBe(true);
    expect(
      stepRegister("a", { kind: "cas", key: "k", expected: "x", value: "b" }, casFailed("z")).ok,
    ).toBe(false);
  });
});

describe("checkLinearizable", () => {
  it("accepts sequential and concurrent histories that have a linearization", () => {
    expect(checkLinearizable([]).ok).toBe(true);
    expect(checkLinearizable([op(put("a"), ok, 1, 2), op(get(), read("a"), 3, 4)]).ok).toBe(true);
    // The read overlaps the write: it may see either value.
    expect(checkLinearizable([op(put("a"), ok, 1, 4), op(get(), read(null), 2, 3)]).ok).toBe(true);
    expect(checkLinearizable([op(put("a"), ok, 1, 4), op(get(), read("a"), 2, 3)]).ok).toBe(true);
    // Two concurrent writes and reads that see them in one order.
    expect(
      checkLinearizable([
        op(put("a"), ok, 1, 5),
        op(put("b"), ok, 2, 6),
        op(get(), read("b"), 7, 8),
        op(get(), read("b"), 9, 10),
      ]).ok,
    ).toBe(true);
  });

  it("rejects a stale read after a completed write", () => {
    const result = checkLinearizable([op(put("a"), ok, 1, 2), op(get(), read(null), 3, 4)]);
    expect(result.ok).toBe(false);
    expect(result.inconclusive).toBe(false);
    expect(result.key).toBe("k");
    expect(result.explanation).toContain("get(k)");
  });

  it("rejects reads that see two writes in both orders", () => {
    const history = [
      op(put("a"), ok, 1, 10),
      op(put("b"), ok, 2, 10.5),
      op(get(), read("a"), 11, 12),
      op(get(), read("b"), 13, 14),
      op(get(), read("a"), 15, 16),
    ];
    expect(checkLinearizable(history).ok).toBe(false);
  });

  it("rejects two compare-and-sets from the same value that both succeed", () => {
    const history = [
      op(put("a"), ok, 1, 2),
      op(cas("a", "b"), casOk, 3, 6),
      op(cas("a", "c"), casOk, 4, 7),
    ];
    expect(checkLinearizable(history).ok).toBe(false);
  });

  it("accepts a failed compare-and-set that reports the value it saw", () => {
    const history = [
      op(put("a"), ok, 1, 2),
      op(cas("a", "b"), casOk, 3, 6),
      op(cas("a", "c"), casFailed("b"), 4, 7),
      op(get(), read("b"), 8, 9),
    ];
    expect(checkLinearizable(history).ok).toBe(true);
  });

  it("lets an unknown write take effect any time after its invocation", () => {
    // The write's outcome is unknown; a later read sees it.
    expect(
      checkLinearizable([op(put("a"), undefined, 1, undefined), op(get(), read("a"), 5, 6)]).ok,
    ).toBe(true);
  });

  it("lets an unknown write never take effect", () => {
    expect(
      checkLinearizable([op(put("a"), undefined, 1, undefined), op(get(), read(null), 5, 6)]).ok,
    ).toBe(true);
  });

  it("does not let an unknown write take effect before its invocation", () => {
    const history = [op(get(), read("a"), 1, 2), op(put("a"), undefined, 3, undefined)];
    expect(checkLinearizable(history).ok).toBe(false);
  });

  it("does not let an unknown write take effect twice", () => {
    const history = [
      op(put("a"), undefined, 1, undefined),
      op(get(), read("a"), 2, 3),
      op(put("b"), ok, 4, 5),
      op(get(), read("a"), 6, 7),
    ];
    expect(checkLinearizable(history).ok).toBe(false);
  });

  it("applies an unknown compare-and-set only if its expectation held", () => {
    const history = [
      op(put("x"), ok, 1, 2),
      op(cas("a", "b"), undefined, 3, undefined),
      op(get(), read("b"), 4, 5),
    ];
    expect(checkLinearizable(history).ok).toBe(false);
    const matching = [
      op(put("a"), ok, 1, 2),
      op(cas("a", "b"), undefined, 3, undefined),
      op(get(), read("b"), 4, 5),
    ];
    expect(checkLinearizable(matching).ok).toBe(true);
  });

  it("checks keys independently and names the broken one", () => {
    const history = [
      op({ ...put("a"), key: "x" }, ok, 1, 2),
      op({ ...get(), key: "x" }, read("a"), 3, 4),
      op({ ...put("b"), key: "y" }, ok, 1, 2),
      op({ ...get(), key: "y" }, read("a"), 3, 4),
    ];
    const result = checkLinearizable(history);
    expect(result.ok).toBe(false);
    expect(result.key).toBe("y");
  });

  it("handles a long history with many concurrent operations quickly", () => {
    const history: HistoryOperation[] = [];
    let value: string | null = null;
    // 5 clients, 200 rounds; each round every client's operations overlap, and the
    // writes are ordered by their completion.
    for (let round = 0; round < 200; round++) {
      const base = round * 100;
      for (let c = 0; c < 5; c++) {
        if (c === 0) {
          history.push(op(put(`v${round}`), ok, base + c, base + 50 + c));
          value = `v${round}`;
        } else if (c === 1) {
          history.push(op(put(`u${round}`), undefined, base + c, undefined));
        } else {
          history.push(
            op(get(), read(round === 0 ? null : `v${round - 1}`), base + c, base + 40 + c),
          );
        }
      }
    }
    history.push(op(get(), read(value), 1_000_000, 1_000_001));
    const result = checkLinearizable(history);
    expect(result).toMatchObject({ ok: true, inconclusive: false });
  });
});
