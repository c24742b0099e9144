/**
 * The state machine chain of a real node (`node-composition.ts`: ApplyNotifier around the change feed's
 * wrapper around the cluster machine) hands the runtime the sliced snapshot path, and invents
 * none for a machine without it.
 */
import { describe, expect, it } from "vitest";
import { ChangeFeed } from "./events/change-feed.js";
import { ClusterStateMachine } from "../statemachine/cluster/cluster-state-machine.js";
import { encodeKvCommand } from "../statemachine/kv/command-codec.js";
import { encodeCommandEnvelope } from "../statemachine/session/envelope.js";
import type { StateMachine } from "../statemachine/state-machine.js";
import { ApplyNotifier } from "./apply-notifier.js";

const put = (index: number, key: string) => ({
  index,
  term: 1,
  data: encodeCommandEnvelope({
    proposedAtMs: index,
    payload: encodeKvCommand({ op: "put", key, value: new Uint8Array(300).fill(index) }),
  }),
});

describe("a real node's state machine chain", () => {
  it("passes captureSnapshot through: bytes of the capture, while applies go on through the chain", () => {
    const machine = new ClusterStateMachine();
    const feed = new ChangeFeed(machine, {});
    const chain = new ApplyNotifier(feed.wrap(machine), setImmediate);
    for (let i = 1; i <= 50; i++) chain.apply(put(i, `key/${i}`));
    const encoding = chain.captureSnapshot?.();
    const atCapture = chain.snapshot();
    expect(encoding).toBeDefined();
    if (encoding === undefined) return;
    let index = 51;
    while (encoding.next(1000) !== undefined) chain.apply(put(index++, `key/${index % 60}`));
    expect(Buffer.from(encoding.finish()).equals(Buffer.from(atCapture))).toBe(true);
    expect(feed.nextSeq).toBeGreaterThan(50);
  });

  it("has no captureSnapshot when the machine it wraps has none", () => {
    const plain: StateMachine<number> = {
      apply: () => 0,
      snapshot: () => new Uint8Array([1]),
      restore: () => undefined,
    };
    const feed = new ChangeFeed(new ClusterStateMachine(), {});
    expect(feed.wrap(plain).captureSnapshot).toBeUndefined();
    expect(new ApplyNotifier(plain, setImmediate).captureSnapshot).toBeUndefined();
  });
});
