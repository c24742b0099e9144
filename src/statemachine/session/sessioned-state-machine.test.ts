import { describe, expect, it } from "vitest";
import { InternalError, InvalidArgumentError } from "../../common/index.js";
import { ByteReader, ByteWriter } from "../codec/binary.js";
import { crc32 } from "../../common/crc32.js";
import { errorResult, okResult, type CommandResult } from "../command-result.js";
import { encodeCommandEnvelope, type ClientSession } from "./envelope.js";
import {
  SessionedStateMachine,
  type ExecuteContext,
  type SessionedApplication,
} from "./sessioned-state-machine.js";
import type { SessionOptions } from "./session-options.js";

/**
 * A counter whose commands are not idempotent, so a second application would show: `add n`
 * (refused past 1000), `subtract n`, `read`. Each result is the total after the command.
 */
type CounterCommand = { op: "add" | "subtract"; amount: number } | { op: "read" };
const COUNTER_LIMIT = 1000;

class Counter implements SessionedApplication<CounterCommand, number> {
  total = 0;
  executions = 0;
  contexts: ExecuteContext[] = [];

  decodeCommand(payload: Uint8Array): CounterCommand {
    const reader = new ByteReader(payload, "counter command");
    const op = reader.u8();
    const command: CounterCommand =
      op === 1
        ? { op: "add", amount: reader.u8() }
        : op === 2
          ? { op: "subtract", amount: reader.u8() }
          : op === 3
            ? { op: "read" }
            : (() => {
                throw reader.malformed(`op ${op}`);
              })();
    reader.expectEnd();
    return command;
  }
  isReadOnly(command: CounterCommand): boolean {
    return command.op === "read";
  }
  execute(command: CounterCommand, context: ExecuteContext): CommandResult<number> {
    this.executions++;
    this.contexts.push(context);
    if (command.op === "add") {
      if (this.total + command.amount > COUNTER_LIMIT) return errorResult("OVERLOADED", "full");
      this.total += command.amount;
    } else if (command.op === "subtract") {
      this.total -= command.amount;
    }
    return okResult(this.total);
  }
  encodeResult(result: number): Uint8Array {
    return new ByteWriter().u53(result).finish();
  }
  decodeResult(bytes: Uint8Array): number {
    const reader = new ByteReader(bytes, "counter result");
    const value = reader.u53();
    reader.expectEnd();
    return value;
  }
  snapshot(): Uint8Array {
    return new ByteWriter().u53(this.total).finish();
  }
  restore(data: Uint8Array): void {
    const reader = new ByteReader(data, "counter snapshot");
    const total = reader.u53();
    reader.expectEnd();
    this.total = total;
  }
}

const add = (amount: number) => new Uint8Array([1, amount]);
const subtract = (amount: number) => new Uint8Array([2, amount]);
const read = () => new Uint8Array([3]);

function harness(options: SessionOptions = {}) {
  const counter = new Counter();
  const machine = new SessionedStateMachine(counter, options);
  let index = 0;
  const run = (payload: Uint8Array, atMs = 0, session?: ClientSession) =>
    machine.apply({
      index: ++index,
      term: 1,
      data: encodeCommandEnvelope(
        session === undefined
          ? { proposedAtMs: atMs, payload }
          : { proposedAtMs: atMs, session, payload },
      ),
    });
  const applyRaw = (data: Uint8Array) => machine.apply({ index: ++index, term: 1, data });
  return { counter, machine, run, applyRaw };
}

const s = (clientId: string, sequence: number, ackedBelow = sequence): ClientSession => ({
  clientId,
  sequence,
  ackedBelow,
});

/** Recomputes a snapshot's trailing CRC so a test can reach the checks behind it. */
function resign(snapshot: Uint8Array): Uint8Array {
  const body = snapshot.subarray(0, snapshot.length - 4);
  return new ByteWriter().raw(body).u32(crc32(body)).finish();
}

describe("SessionedStateMachine: exactly-once commands (thesis §6.3)", () => {
  it("applies a retried command once and returns the first result", () => {
    const { counter, run } = harness();
    expect(run(add(5), 0, s("a", 1))).toEqual(okResult(5));
    expect(run(add(5), 0, s("a", 1))).toEqual(okResult(5));
    expect(counter.total).toBe(5);
    expect(counter.executions).toBe(1);
  });

  it("returns the first result even after the state moved on", () => {
    const { counter, run } = harness();
    run(add(5), 0, s("a", 1));
    expect(run(add(1), 0, s("a", 2, 1))).toEqual(okResult(6));
    expect(run(add(7), 0, s("b", 1))).toEqual(okResult(13));
    expect(run(add(5), 0, s("a", 1))).toEqual(okResult(5));
    expect(counter.total).toBe(13);
  });

  it("discards results below ackedBelow and refuses those sequences", () => {
    const { counter, machine, run } = harness();
    run(add(1), 0, s("a", 1));
    run(add(2), 0, s("a", 2, 1));
    run(add(3), 0, s("a", 3, 1));
    expect(machine.session("a")?.keptSequences).toEqual([1, 2, 3]);
    expect(run(add(4), 0, s("a", 4, 3))).toEqual(okResult(10));
    expect(machine.session("a")?.keptSequences).toEqual([3, 4]);
    const settled = run(add(1), 0, s("a", 1));
    expect(settled).toMatchObject({
      ok: false,
      error: { code: "INVALID_ARGUMENT", reason: "SEQUENCE_SETTLED" },
    });
    expect(run(add(3), 0, s("a", 3, 1))).toEqual(okResult(6));
    expect(counter.total).toBe(10);
    expect(machine.session("a")?.ackedBelow).toBe(3);
  });

  it("applies a skipped sequence that arrives late, once", () => {
    const { counter, run } = harness();
    run(add(1), 0, s("a", 1));
    expect(run(add(10), 0, s("a", 3, 2))).toEqual(okResult(11));
    expect(run(add(20), 0, s("a", 2, 2))).toEqual(okResult(31));
    expect(run(add(20), 0, s("a", 2, 2))).toEqual(okResult(31));
    expect(run(add(10), 0, s("a", 3, 2))).toEqual(okResult(11));
    expect(counter.total).toBe(31);
  });

  it("refuses a sequence above 1 for an unknown session without applying it", () => {
    const { counter, machine, run } = harness();
    expect(run(add(1), 0, s("ghost", 2))).toMatchObject({
      ok: false,
      error: { code: "CONFLICT", reason: "SESSION_EXPIRED" },
    });
    expect(counter.total).toBe(0);
    expect(machine.sessionCount).toBe(0);
  });

  it("does not keep error results: the same sequence may be retried and then applies once", () => {
    const { counter, machine, run } = harness();
    run(add(200), 0, s("a", 1));
    for (let i = 0; i < 4; i++) run(add(200), 0, s("filler", i + 1));
    expect(counter.total).toBe(1000);
    expect(run(add(100), 0, s("a", 2))).toMatchObject({ ok: false, error: { code: "OVERLOADED" } });
    expect(machine.session("a")?.keptSequences).toEqual([]);
    run(subtract(150), 0, s("b", 1));
    expect(run(add(100), 0, s("a", 2))).toEqual(okResult(950));
    expect(run(add(100), 0, s("a", 2))).toEqual(okResult(950));
    expect(counter.total).toBe(950);
  });

  it("runs read-only commands every time without consulting the session", () => {
    const { counter, machine, run } = harness();
    run(add(3), 0, s("a", 1));
    expect(run(read(), 0, s("unknown", 9))).toEqual(okResult(3));
    expect(run(read(), 0, s("a", 2))).toEqual(okResult(3));
    expect(counter.executions).toBe(3);
    expect(machine.sessionCount).toBe(1);
    expect(machine.session("a")?.keptSequences).toEqual([1]);
  });

  it("applies commands without a session every time (at-least-once)", () => {
    const { counter, run } = harness();
    run(add(2));
    run(add(2));
    expect(counter.total).toBe(4);
  });

  it("passes index, term and log time to the application", () => {
    const { counter, run } = harness();
    run(add(1), 50);
    run(add(1), 20);
    expect(counter.contexts).toEqual([
      { index: 1, term: 1, logTimeMs: 50 },
      { index: 2, term: 1, logTimeMs: 50 },
    ]);
  });
});

describe("SessionedStateMachine: expiry by log time", () => {
  const timeout = { sessionTimeoutMs: 1000 };

  it("expires a session once another command's proposedAtMs is sessionTimeoutMs past its last activity", () => {
    const { machine, run } = harness(timeout);
    run(add(1), 100, s("a", 1));
    run(read(), 1099);
    expect(machine.session("a")).toBeDefined();
    run(read(), 1100);
    expect(machine.session("a")).toBeUndefined();
    expect(run(add(1), 1100, s("a", 2))).toMatchObject({
      error: { reason: "SESSION_EXPIRED" },
    });
  });

  it("expires on the client's own late command before deciding it", () => {
    const { counter, run } = harness(timeout);
    run(add(1), 0, s("a", 1));
    expect(run(add(1), 1000, s("a", 2))).toMatchObject({ error: { reason: "SESSION_EXPIRED" } });
    expect(counter.total).toBe(1);
  });

  it("never expires while log time stands still, however many commands apply", () => {
    const { machine, run } = harness(timeout);
    run(add(1), 500, s("a", 1));
    for (let i = 0; i < 50; i++) run(read(), 500);
    run(read(), 200);
    expect(machine.logTimeMs).toBe(500);
    expect(machine.session("a")).toBeDefined();
  });

  it("keeps a session alive with any command naming it, even a refused one", () => {
    const { machine, run } = harness(timeout);
    run(add(1), 0, s("a", 1));
    run(add(1), 900, s("a", 2));
    run(add(1), 1800, s("a", 1, 1));
    expect(machine.session("a")?.lastActiveMs).toBe(1800);
    run(read(), 2700);
    expect(machine.session("a")).toBeDefined();
  });

  it("does not advance log time for a malformed command", () => {
    const { machine, run } = harness(timeout);
    run(add(1), 0, s("a", 1));
    run(new Uint8Array([9]), 5000);
    expect(machine.logTimeMs).toBe(0);
    expect(machine.session("a")).toBeDefined();
  });
});

describe("SessionedStateMachine: bounds", () => {
  it("evicts the session idle longest when opening one past maxSessions", () => {
    const { machine, run } = harness({ maxSessions: 3, minIdleBeforeEvictionMs: 100 });
    run(add(1), 10, s("a", 1));
    run(add(1), 20, s("b", 1));
    run(add(1), 20, s("c", 1));
    run(add(1), 30, s("a", 2));
    run(add(1), 120, s("d", 1));
    expect(machine.sessionCount).toBe(3);
    expect(machine.session("b")).toBeUndefined();
    run(add(1), 120, s("e", 1));
    expect(machine.session("c")).toBeUndefined();
    expect(machine.session("a")).toBeDefined();
    expect(run(add(1), 120, s("b", 2))).toMatchObject({ error: { reason: "SESSION_EXPIRED" } });
  });

  it("refuses to open a session rather than evict one that may still see a retry", () => {
    const { counter, machine, run } = harness({ maxSessions: 2, minIdleBeforeEvictionMs: 100 });
    run(add(1), 0, s("a", 1));
    run(add(1), 50, s("b", 1));
    expect(run(add(1), 99, s("c", 1))).toMatchObject({
      ok: false,
      error: { code: "OVERLOADED", reason: "SESSIONS_FULL" },
    });
    expect(machine.session("c")).toBeUndefined();
    // A late retry of a's first command is still answered from its session, not applied again.
    expect(run(add(1), 99, s("a", 1))).toEqual(okResult(1));
    expect(counter.total).toBe(2);
    // Once "b" (now the idle-longest) has been idle for 100 ms, "c" may take its place.
    expect(run(add(1), 150, s("c", 1))).toEqual(okResult(3));
    expect(machine.session("b")).toBeUndefined();
  });

  it("refuses new sequences while a session keeps maxResultsPerSession results", () => {
    const { counter, run } = harness({ maxResultsPerSession: 2 });
    run(add(1), 0, s("a", 1));
    run(add(1), 0, s("a", 2, 1));
    expect(run(add(1), 0, s("a", 3, 1))).toMatchObject({
      ok: false,
      error: { code: "OVERLOADED", reason: "SESSION_RESULTS_FULL" },
    });
    expect(counter.total).toBe(2);
    expect(run(add(1), 0, s("a", 2, 1))).toEqual(okResult(2));
    expect(run(add(1), 0, s("a", 3, 2))).toEqual(okResult(3));
  });

  it("refuses new sequences while a session keeps maxResultBytesPerSession bytes", () => {
    const { machine, run } = harness({ maxResultBytesPerSession: 9 });
    run(add(1), 0, s("a", 1));
    run(add(1), 0, s("a", 2, 1));
    expect(machine.session("a")?.keptResultBytes).toBe(16);
    expect(run(add(1), 0, s("a", 3, 1))).toMatchObject({
      error: { reason: "SESSION_RESULTS_FULL" },
    });
  });

  it("validates its options", () => {
    expect(() => harness({ maxSessions: 0 })).toThrow(InvalidArgumentError);
    expect(() => harness({ sessionTimeoutMs: 1.5 })).toThrow(/sessionTimeoutMs/);
    expect(() => harness({ minIdleBeforeEvictionMs: -1 })).toThrow(/minIdleBeforeEvictionMs/);
    expect(() => harness({ minIdleBeforeEvictionMs: 0 })).not.toThrow();
  });
});

describe("SessionedStateMachine: malformed commands and apply order", () => {
  it("answers malformed envelopes and payloads with INVALID_ARGUMENT and changes nothing", () => {
    const { counter, machine, run, applyRaw } = harness();
    run(add(1), 7, s("a", 1));
    const before = machine.snapshot();
    for (const data of [new Uint8Array(0), new Uint8Array([1]), new Uint8Array([9, 0, 0])]) {
      expect(applyRaw(data)).toMatchObject({
        ok: false,
        error: { code: "INVALID_ARGUMENT" },
      });
    }
    expect(run(new Uint8Array([1, 2, 3]), 9, s("a", 2))).toMatchObject({
      error: { code: "INVALID_ARGUMENT" },
    });
    expect(run(new Uint8Array([1, 2, 3]), 9, s("new", 1))).toMatchObject({
      error: { code: "INVALID_ARGUMENT" },
    });
    expect(machine.snapshot()).toEqual(before);
    expect(counter.executions).toBe(1);
  });

  it("throws InternalError when an entry index does not increase", () => {
    const { machine, run } = harness();
    run(add(1));
    const data = encodeCommandEnvelope({ proposedAtMs: 0, payload: add(1) });
    expect(() => machine.apply({ index: 1, term: 1, data })).toThrow(InternalError);
  });
});

describe("SessionedStateMachine: snapshot and restore", () => {
  function populated() {
    const h = harness({ sessionTimeoutMs: 1000 });
    h.run(add(1), 10, s("a", 1));
    h.run(add(2), 20, s("b", 1));
    h.run(add(3), 30, s("a", 2, 1));
    h.run(add(4), 40, s("c", 1));
    return h;
  }

  it("restores identical state: same snapshot bytes and the same answers to retries", () => {
    const source = populated();
    const bytes = source.machine.snapshot();
    const copy = harness({ sessionTimeoutMs: 1000 });
    copy.machine.restore(bytes);
    expect(copy.machine.snapshot()).toEqual(bytes);
    expect(copy.counter.total).toBe(10);
    expect(copy.machine.logTimeMs).toBe(40);
    expect(copy.run(add(1), 40, s("a", 1, 1))).toEqual(okResult(1));
    expect(copy.run(add(3), 40, s("a", 2, 1))).toEqual(okResult(6));
    expect(copy.counter.total).toBe(10);
    // Eviction order survives too: "b" is still the idle-longest after "a" was touched.
    copy.run(read(), 1020);
    expect(copy.machine.session("b")).toBeUndefined();
    expect(copy.machine.session("a")).toBeDefined();
  });

  it("gives equal bytes for equal states", () => {
    expect(populated().machine.snapshot()).toEqual(populated().machine.snapshot());
  });

  it("refuses corrupt snapshots and leaves the state as it was", () => {
    const bytes = populated().machine.snapshot();
    const target = harness({ sessionTimeoutMs: 1000 });
    target.run(add(9), 5, s("z", 1));
    const before = target.machine.snapshot();

    const flipped = bytes.slice();
    flipped[10] = (flipped[10] as number) ^ 1;
    const badMagic = bytes.slice();
    badMagic[0] = 0;
    const badVersion = bytes.slice();
    badVersion[5] = 9;
    // The session part parses; the counter refuses a 9-byte snapshot of its own.
    const beforeApp = bytes.subarray(0, bytes.length - 4 - 4 - 8);
    const badApp = new ByteWriter().raw(beforeApp).bytes(new Uint8Array(9)).u32(0).finish();
    const cases = [
      new Uint8Array(0),
      bytes.subarray(0, 6),
      flipped,
      resign(badMagic),
      resign(badVersion),
      resign(badApp),
      resign(
        new ByteWriter()
          .raw(bytes.subarray(0, bytes.length - 4))
          .u8(0)
          .u32(0)
          .finish(),
      ),
    ];
    for (const [i, data] of cases.entries()) {
      expect(() => target.machine.restore(data), `case ${i}`).toThrow(InvalidArgumentError);
      expect(target.machine.snapshot()).toEqual(before);
    }
    expect(() => target.machine.restore(flipped)).toThrow(/checksum/);
    expect(() => target.machine.restore(resign(badVersion))).toThrow(/format version/);
    expect(() => target.machine.restore(resign(badApp))).toThrow(/counter snapshot/);
  });

  it("resets the apply-order check on restore", () => {
    const source = populated();
    const copy = harness({ sessionTimeoutMs: 1000 });
    copy.run(add(1));
    copy.run(add(1));
    copy.machine.restore(source.machine.snapshot());
    const data = encodeCommandEnvelope({ proposedAtMs: 0, payload: add(1) });
    expect(copy.machine.apply({ index: 1, term: 1, data })).toEqual(okResult(11));
  });
});
