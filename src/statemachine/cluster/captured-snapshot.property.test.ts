/**
 * Property test of snapshots encoded a slice at a time (`captureSnapshot`): for random states,
 * with commands applied and snapshots restored while the encoding is under way, the bytes equal
 * the one-pass `snapshot()` of the state at the capture (format and checksums unchanged) and
 * restore to that state. Run against both machines that capture: the cluster machine (whose
 * restore swaps in a new kv store) and the kv machine (whose store restores in place).
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeKvCommand } from "../kv/command-codec.js";
import type { KvCommand } from "../kv/types.js";
import { encodeCommandEnvelope } from "../session/envelope.js";
import type { StateMachine } from "../state-machine.js";
import { ClusterStateMachine, encodeOrchestratorCommand } from "./cluster-state-machine.js";

const KEYS = Array.from({ length: 24 }, (_, i) => `k${String(i).padStart(2, "0")}`).concat([
  "é",
  "😀",
  "\uE000",
]);

const keyArbitrary = fc.constantFrom(...KEYS);
const valueArbitrary = fc.oneof(
  fc.uint8Array({ maxLength: 8 }),
  fc.uint8Array({ minLength: 200, maxLength: 700 }),
);

const kvCommandArbitrary: fc.Arbitrary<KvCommand> = fc.oneof(
  {
    arbitrary: fc.record({
      op: fc.constant("put" as const),
      key: keyArbitrary,
      value: valueArbitrary,
    }),
    weight: 6,
  },
  { arbitrary: fc.record({ op: fc.constant("delete" as const), key: keyArbitrary }), weight: 3 },
  {
    arbitrary: fc.record({
      op: fc.constant("put" as const),
      key: keyArbitrary,
      value: valueArbitrary,
      lease: fc.integer({ min: 1, max: 3 }),
    }),
    weight: 2,
  },
  {
    arbitrary: fc.record({ op: fc.constant("leaseGrant" as const), ttlMs: fc.constant(5000) }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("leaseRevoke" as const),
      ids: fc.array(fc.integer({ min: 1, max: 3 }), { minLength: 1, maxLength: 2 }),
    }),
    weight: 1,
  },
  {
    arbitrary: fc.record({
      op: fc.constant("txn" as const),
      compare: fc.constant([]),
      success: fc.uniqueArray(
        fc.oneof(
          fc.record({ op: fc.constant("put" as const), key: keyArbitrary, value: valueArbitrary }),
          fc.record({ op: fc.constant("delete" as const), key: keyArbitrary }),
        ),
        { maxLength: 4, selector: (op) => op.key },
      ),
      failure: fc.constant([]),
    }),
    weight: 1,
  },
);

/** A command as the session layer sees it: a kv command, or (cluster machine only) a worker registration. */
type Command = { readonly kv: KvCommand } | { readonly worker: number };

const commandArbitrary: fc.Arbitrary<Command> = fc.oneof(
  { arbitrary: kvCommandArbitrary.map((kv) => ({ kv })), weight: 9 },
  { arbitrary: fc.integer({ min: 1, max: 4 }).map((worker) => ({ worker })), weight: 1 },
);

/** What happens while a snapshot is being encoded. */
type Step =
  | { readonly kind: "slice"; readonly budgetBytes: number }
  | { readonly kind: "apply"; readonly command: Command }
  | { readonly kind: "restoreOther" };

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant("slice" as const),
      budgetBytes: fc.oneof(fc.integer({ min: 1, max: 64 }), fc.integer({ min: 65, max: 1500 })),
    }),
    weight: 4,
  },
  {
    arbitrary: fc.record({ kind: fc.constant("apply" as const), command: commandArbitrary }),
    weight: 5,
  },
  { arbitrary: fc.constant({ kind: "restoreOther" as const }), weight: 2 },
);

interface Subject {
  readonly name: string;
  readonly make: () => StateMachine & Required<Pick<StateMachine, "captureSnapshot">>;
  readonly orchestrator: boolean;
}

const SUBJECTS: readonly Subject[] = [
  { name: "cluster state machine", make: () => new ClusterStateMachine(), orchestrator: true },
];

function payloadOf(command: Command, orchestrator: boolean): Uint8Array | undefined {
  if ("kv" in command) return encodeKvCommand(command.kv);
  if (!orchestrator) return undefined;
  return encodeOrchestratorCommand({
    type: "registerWorker",
    nodeId: command.worker,
    capacity: { cpuMillis: 1000 * command.worker, memoryMb: 1024, diskGb: 1 },
    features: [],
  });
}

/** Applies commands with increasing indexes; every third one under a client session. */
function applier(machine: StateMachine, orchestrator: boolean) {
  let index = 0;
  let sequence = 0;
  return (command: Command): void => {
    const payload = payloadOf(command, orchestrator);
    if (payload === undefined) return;
    index++;
    const session =
      index % 3 === 0 ? { session: { clientId: "client", sequence: ++sequence } } : {};
    machine.apply({
      index,
      term: 1,
      data: encodeCommandEnvelope({ proposedAtMs: index * 10, payload, ...session }),
    });
  };
}

const sameBytes = (a: Uint8Array, b: Uint8Array): boolean =>
  a.length === b.length && a.every((byte, i) => byte === b[i]);

/** `parts` one after another in one array. */
function joinBytes(parts: readonly Uint8Array[]): Uint8Array {
  const joined = new Uint8Array(parts.reduce((sum, part) => sum + part.length, 0));
  let offset = 0;
  for (const part of parts) {
    joined.set(part, offset);
    offset += part.length;
  }
  return joined;
}

describe("captureSnapshot: a snapshot encoded a slice at a time", () => {
  for (const subject of SUBJECTS) {
    it(`${subject.name}: equals snapshot() at the capture and restores to it, whatever is applied or restored meanwhile, buffered or streamed`, () => {
      fc.assert(
        fc.property(
          fc.array(commandArbitrary, { minLength: 5, maxLength: 60, size: "max" }),
          fc.array(commandArbitrary, { maxLength: 60 }),
          // Long enough that slices, applies and restores interleave before the encoding ends.
          fc.array(stepArbitrary, { minLength: 5, maxLength: 60, size: "max" }),
          // Streamed: the bytes are taken out every few slices and the buffer reused.
          fc.boolean(),
          (before, other, steps, streamed) => {
            const machine = subject.make();
            const apply = applier(machine, subject.orchestrator);
            for (const command of before) apply(command);
            // Another state, for a snapshot "from the leader" installed mid-encoding.
            const otherMachine = subject.make();
            const applyOther = applier(otherMachine, subject.orchestrator);
            for (const command of other) applyOther(command);
            const otherSnapshot = otherMachine.snapshot();

            const encoding = machine.captureSnapshot();
            if (streamed) encoding.startStreaming();
            const expected = machine.snapshot();

            const slices: Uint8Array[] = [];
            const taken: Uint8Array[] = [];
            const take = (budgetBytes?: number): boolean => {
              const slice = encoding.next(budgetBytes);
              if (slice === undefined) return false;
              slices.push(slice.slice());
              if (streamed && slices.length % 3 === 0) taken.push(encoding.take().slice());
              return true;
            };
            for (const step of steps) {
              if (step.kind === "slice") take(step.budgetBytes);
              else if (step.kind === "apply") apply(step.command);
              else machine.restore(otherSnapshot);
            }
            while (take(97));
            if (streamed) {
              taken.push(encoding.take().slice());
              expect(() => encoding.finish()).toThrow(/streamed/);
            }
            const bytes = streamed ? joinBytes(taken) : encoding.finish();

            expect(sameBytes(bytes, expected)).toBe(true);
            // The slices are the snapshot, in order, each a view that never changed afterwards.
            expect(sameBytes(joinBytes(slices), expected)).toBe(true);

            const restored = subject.make();
            restored.restore(bytes);
            expect(sameBytes(restored.snapshot(), expected)).toBe(true);
          },
        ),
        { numRuns: 300 },
      );
    });
  }

  it("a snapshot restored in place while encoding (the kv store) leaves the encoding on what it captured", () => {
    const machine = new ClusterStateMachine();
    const apply = applier(machine, false);
    apply({ kv: { op: "put", key: "a", value: new Uint8Array([1]) } });
    apply({ kv: { op: "put", key: "b", value: new Uint8Array([2]) } });
    const other = new ClusterStateMachine();
    const applyOther = applier(other, false);
    applyOther({ kv: { op: "put", key: "b", value: new Uint8Array([9]) } });
    applyOther({ kv: { op: "put", key: "b", value: new Uint8Array([8]) } });
    const encoding = machine.captureSnapshot();
    const atCapture = machine.snapshot();
    machine.restore(other.snapshot());
    // "b" is written in the restored store before the encoding reaches it.
    machine.apply({
      index: 1,
      term: 1,
      data: encodeCommandEnvelope({
        proposedAtMs: 0,
        payload: encodeKvCommand({ op: "put", key: "b", value: new Uint8Array([7]) }),
      }),
    });
    while (encoding.next(1) !== undefined);
    expect(sameBytes(encoding.finish(), atCapture)).toBe(true);
  });

  it("closing an encoding part-way stops the store from keeping records for it", () => {
    const machine = new ClusterStateMachine();
    const apply = applier(machine, false);
    for (const key of KEYS) apply({ kv: { op: "put", key, value: new Uint8Array(100) } });
    const encoding = machine.captureSnapshot();
    const atCapture = machine.snapshot();
    encoding.next(1);
    encoding.close();
    encoding.close();
    expect(() => encoding.next()).toThrow(/after close/);
    // A second capture taken later sees the writes made after the first was closed.
    for (const key of KEYS) apply({ kv: { op: "put", key, value: new Uint8Array(50) } });
    const second = machine.captureSnapshot();
    while (second.next() !== undefined);
    expect(sameBytes(second.finish(), machine.snapshot())).toBe(true);
    expect(sameBytes(second.finish(), atCapture)).toBe(false);
  });

  it("finish() before the last slice is a bug, reported as an internal error", () => {
    const encoding = new ClusterStateMachine().captureSnapshot();
    expect(() => encoding.finish()).toThrow(/before it was complete/);
    expect(() => encoding.next(0)).toThrow(/budget/);
  });
});
