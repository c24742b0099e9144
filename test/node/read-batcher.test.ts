import { describe, expect, it } from "vitest";
import { ManualClock } from "./fakes.js";
import { Operation } from "../../src/node/operation.js";
import { ReadBatcher } from "../../src/node/read-batcher.js";

function setup(incarnation: number) {
  const clock = new ManualClock();
  const requested: Uint8Array[] = [];
  const batcher = new ReadBatcher<{ value: number }>({
    nodeId: 1,
    incarnation,
    clock,
    retryAfterMs: 1000,
    requestReadIndex: (context) => requested.push(context),
  });
  const read = (): Promise<number> => {
    const operation = new Operation<number>({
      clock,
      timeoutMs: 10_000,
      signal: undefined,
      what: "read",
      onSettle: () => undefined,
    });
    batcher.enqueue((sm) => sm.value, operation);
    return operation.promise;
  };
  return { clock, requested, batcher, read };
}

describe("ReadBatcher", () => {
  it("shares one ReadIndex round among reads that arrive while one is in flight", async () => {
    const { requested, batcher, read } = setup(7);
    const first = read();
    const second = read();
    const third = read();
    expect(requested).toHaveLength(1);
    batcher.onReadState({ index: 5, requestCtx: requested[0]! });
    // The reads queued behind the first round go out together in one more round.
    expect(requested).toHaveLength(2);
    batcher.onReadState({ index: 6, requestCtx: requested[1]! });
    batcher.serve(6, { value: 42 });
    expect(await Promise.all([first, second, third])).toEqual([42, 42, 42]);
  });

  it("serves a confirmed read only once the applied index reaches its read index", async () => {
    const { requested, batcher, read } = setup(7);
    let answered = false;
    const result = read().then((v) => {
      answered = true;
      return v;
    });
    batcher.onReadState({ index: 10, requestCtx: requested[0]! });
    batcher.serve(9, { value: 1 });
    await Promise.resolve();
    expect(answered).toBe(false);
    batcher.serve(10, { value: 2 });
    expect(await result).toBe(2);
  });

  it("ignores an answer addressed to a previous incarnation of the node", async () => {
    const before = setup(1);
    void before.read();
    const staleContext = before.requested[0]!;
    const after = setup(2);
    let answered = false;
    void after.read().then(() => (answered = true));
    after.batcher.onReadState({ index: 3, requestCtx: staleContext });
    after.batcher.serve(100, { value: 0 });
    await Promise.resolve();
    expect(answered).toBe(false);
    expect(after.requested).toHaveLength(1);
  });

  it("asks again under a new id when a round gets no answer", async () => {
    const { clock, requested, batcher, read } = setup(3);
    const result = read();
    await clock.advance(1000);
    expect(requested).toHaveLength(2);
    expect(new TextDecoder().decode(requested[1])).not.toBe(new TextDecoder().decode(requested[0]));
    batcher.onReadState({ index: 1, requestCtx: requested[1]! });
    batcher.serve(1, { value: 5 });
    expect(await result).toBe(5);
  });
});
