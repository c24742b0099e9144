/**
 * Property tests of the kv state machine: it behaves like a plain map with revisions, it is
 * deterministic across snapshot and restore under retries, and no input bytes crash it.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import type { CommandResult } from "../command-result.js";
import {
  decodeCommandEnvelope,
  encodeCommandEnvelope,
  type ClientSession,
} from "../session/envelope.js";
import type { AppliedEntry } from "../state-machine.js";
import { encodeKvCommand } from "../kv/command-codec.js";
import { ClusterStateMachine, type ClusterStateMachineOptions } from "./cluster-state-machine.js";
import { compareKeys } from "../kv/sorted-keys.js";
import type { KvEntry, KvKeyCommand as KvCommand, KvResult } from "../kv/types.js";

/** The cluster machine answers a kv command with a kv result; this says so to the compiler. */
function kvResult(result: CommandResult<unknown>): CommandResult<KvResult> {
  return result as CommandResult<KvResult>;
}

const KEYS = ["a", "b", "b/1", "é", "😀"];
const VALUES = ["", "1", "2", "xyz"].map((v) => new TextEncoder().encode(v));

const commandArbitrary: fc.Arbitrary<KvCommand> = (() => {
  const key = fc.constantFrom(...KEYS);
  const value = fc.constantFrom(...VALUES);
  const returnPrevious = fc.boolean();
  const expected = fc.oneof(
    fc.constant({ kind: "absent" as const }),
    fc.record({
      kind: fc.constant("modRevision" as const),
      modRevision: fc.integer({ min: 1, max: 30 }),
    }),
    fc.record({ kind: fc.constant("value" as const), value }),
  );
  return fc.oneof(
    { arbitrary: fc.record({ op: fc.constant("get" as const), key }), weight: 1 },
    {
      arbitrary: fc.record({ op: fc.constant("put" as const), key, value, returnPrevious }),
      weight: 3,
    },
    {
      arbitrary: fc.record({ op: fc.constant("delete" as const), key, returnPrevious }),
      weight: 1,
    },
    { arbitrary: fc.record({ op: fc.constant("cas" as const), key, expected, value }), weight: 3 },
  );
})();

/** The specification: a Map from key to entry, and a revision counter. */
class MapModel {
  readonly entries = new Map<string, KvEntry>();
  revision = 0;

  apply(command: KvCommand): KvResult {
    const current = this.entries.get(command.key) ?? null;
    const write = (value: Uint8Array) => {
      this.revision++;
      this.entries.set(command.key, {
        key: command.key,
        value,
        createRevision: current?.createRevision ?? this.revision,
        modRevision: this.revision,
        version: (current?.version ?? 0) + 1,
      });
    };
    switch (command.op) {
      case "get":
        return { op: "get", revision: this.revision, entry: current };
      case "put":
        write(command.value);
        return command.returnPrevious === true && current !== null
          ? { op: "put", revision: this.revision, previous: current }
          : { op: "put", revision: this.revision };
      case "delete":
        if (current === null) return { op: "delete", deleted: false, revision: this.revision };
        this.revision++;
        this.entries.delete(command.key);
        return command.returnPrevious === true
          ? { op: "delete", deleted: true, revision: this.revision, previous: current }
          : { op: "delete", deleted: true, revision: this.revision };
      case "cas": {
        const e = command.expected;
        const holds =
          e.kind === "absent"
            ? current === null
            : e.kind === "modRevision"
              ? current?.modRevision === e.modRevision
              : current !== null && current.value.join() === e.value.join();
        if (!holds) return { op: "cas", succeeded: false, revision: this.revision, current };
        write(command.value);
        return { op: "cas", succeeded: true, revision: this.revision };
      }
    }
  }
}

describe("ClusterStateMachine against a Map model", () => {
  it("gives the model's results, reads and lists for any command sequence", () => {
    fc.assert(
      fc.property(fc.array(commandArbitrary, { maxLength: 60 }), (commands) => {
        const kv = new ClusterStateMachine();
        const model = new MapModel();
        commands.forEach((command, i) => {
          const data = encodeCommandEnvelope({
            proposedAtMs: i,
            payload: encodeKvCommand(command),
          });
          expect(kv.apply({ index: i + 1, term: 1, data })).toEqual({
            ok: true,
            value: model.apply(command),
          });
        });
        for (const key of KEYS) expect(kv.read(key)).toEqual(model.entries.get(key) ?? null);
        const sorted = [...model.entries.values()].sort((x, y) => compareKeys(x.key, y.key));
        expect(kv.list({ limit: 1000 }).entries).toEqual(sorted);
        expect(kv.list({ prefix: "b" }).entries).toEqual(
          sorted.filter((e) => e.key.startsWith("b")),
        );
        expect(kv.revision).toBe(model.revision);
      }),
      { numRuns: 150 },
    );
  });
});

/** One step of a generated client workload. */
type Step =
  | { kind: "new"; client: number | null; command: KvCommand; advanceMs: number; ackAll: boolean }
  | { kind: "retry"; pick: number; restamp: boolean; advanceMs: number };

const stepArbitrary: fc.Arbitrary<Step> = fc.oneof(
  {
    arbitrary: fc.record({
      kind: fc.constant("new" as const),
      client: fc.option(fc.integer({ min: 0, max: 2 })),
      command: commandArbitrary,
      advanceMs: fc.integer({ min: 0, max: 300 }),
      ackAll: fc.boolean(),
    }),
    weight: 3,
  },
  {
    arbitrary: fc.record({
      kind: fc.constant("retry" as const),
      pick: fc.nat(),
      restamp: fc.boolean(),
      advanceMs: fc.integer({ min: 0, max: 300 }),
    }),
    weight: 2,
  },
);

/** Clients stop retrying a command this long after first sending it (retry rule 6). */
const RETRY_WINDOW_MS = 400;
const SESSION_LIMITS: ClusterStateMachineOptions = {
  sessions: {
    sessionTimeoutMs: 1000,
    minIdleBeforeEvictionMs: RETRY_WINDOW_MS,
    maxSessions: 2,
    maxResultsPerSession: 3,
  },
};

interface Sent {
  readonly sentAtMs: number;
  readonly session: Required<ClientSession> | undefined;
  readonly payload: Uint8Array;
  readonly data: Uint8Array;
}

/**
 * Turns steps into log entries as clients following the retry rules would send them: three
 * clients, each moving to a new session (new client id) when its session expired or could not be
 * opened, acknowledging replies at random, and retries of earlier commands within the retry
 * window (identical bytes, or re-stamped with a newer time).
 */
function buildLog(steps: Step[]): { entries: AppliedEntry[]; results: CommandResult<KvResult>[] } {
  const kv = new ClusterStateMachine(SESSION_LIMITS);
  const clients = [0, 1, 2].map((i) => ({ id: `client-${i}`, generation: 0, next: 1, acked: 1 }));
  const sent: Sent[] = [];
  const entries: AppliedEntry[] = [];
  const results: CommandResult<KvResult>[] = [];
  let timeMs = 0;
  for (const step of steps) {
    timeMs += step.advanceMs;
    let data: Uint8Array;
    const retryable = sent.filter((c) => timeMs - c.sentAtMs < RETRY_WINDOW_MS);
    if (step.kind === "retry" && retryable.length > 0) {
      const original = retryable[step.pick % retryable.length] as Sent;
      data = step.restamp
        ? encodeCommandEnvelope({
            proposedAtMs: timeMs,
            payload: original.payload,
            ...(original.session === undefined ? {} : { session: original.session }),
          })
        : original.data;
    } else {
      const command = step.kind === "new" ? step.command : ({ op: "get", key: "a" } as const);
      const payload = encodeKvCommand(command);
      const client = step.kind === "new" && step.client !== null ? clients[step.client] : undefined;
      let session: Required<ClientSession> | undefined;
      if (client !== undefined) {
        const sequence = client.next++;
        if (step.kind === "new" && step.ackAll) client.acked = sequence;
        session = {
          clientId: `${client.id}.${client.generation}`,
          sequence,
          ackedBelow: client.acked,
        };
      }
      data = encodeCommandEnvelope({
        proposedAtMs: timeMs,
        payload,
        ...(session === undefined ? {} : { session }),
      });
      sent.push({ sentAtMs: timeMs, session, payload, data });
    }
    const entry = { index: entries.length + 1, term: 1, data };
    const result = kvResult(kv.apply(entry));
    entries.push(entry);
    results.push(result);
    const reason = result.ok ? undefined : result.error.reason;
    if (reason === "SESSION_EXPIRED" || reason === "SESSIONS_FULL") {
      const session = decodeCommandEnvelope(data).session;
      const client = clients.find((c) => session?.clientId === `${c.id}.${c.generation}`);
      if (client !== undefined)
        Object.assign(client, { generation: client.generation + 1, next: 1, acked: 1 });
    }
  }
  return { entries, results };
}

describe("ClusterStateMachine under retries, snapshot and restore", () => {
  it("a replica restored from a snapshot midway answers and ends exactly like one that was not", () => {
    fc.assert(
      fc.property(
        fc.array(stepArbitrary, { minLength: 1, maxLength: 60 }),
        fc.nat(),
        (steps, cut) => {
          const { entries, results } = buildLog(steps);
          const splitAt = cut % (entries.length + 1);

          const straight = new ClusterStateMachine(SESSION_LIMITS);
          const straightResults = entries.map((entry) => straight.apply(entry));
          expect(straightResults).toEqual(results);

          const before = new ClusterStateMachine(SESSION_LIMITS);
          for (const entry of entries.slice(0, splitAt)) before.apply(entry);
          const restored = new ClusterStateMachine(SESSION_LIMITS);
          restored.restore(before.snapshot());
          expect(restored.snapshot()).toEqual(before.snapshot());
          const restoredResults = entries.slice(splitAt).map((entry) => restored.apply(entry));

          expect(restoredResults).toEqual(results.slice(splitAt));
          expect(restored.snapshot()).toEqual(straight.snapshot());
        },
      ),
      { numRuns: 150 },
    );
  });

  it("applies each (client, sequence) at most once and repeats its first result", () => {
    fc.assert(
      fc.property(fc.array(stepArbitrary, { minLength: 1, maxLength: 60 }), (steps) => {
        const kv = new ClusterStateMachine(SESSION_LIMITS);
        const { entries } = buildLog(steps);
        const firstResult = new Map<string, KvResult>();
        let expectedRevision = 0;
        for (const entry of entries) {
          const result = kvResult(kv.apply(entry));
          const session = decodeCommandEnvelope(entry.data).session;
          if (!result.ok) continue;
          const value = result.value;
          const mutated =
            value.op === "put" ||
            (value.op === "cas" && value.succeeded) ||
            (value.op === "delete" && value.deleted);
          if (session === undefined || value.op === "get") {
            if (mutated) expectedRevision++;
            continue;
          }
          const id = `${session.clientId}#${session.sequence}`;
          const first = firstResult.get(id);
          if (first === undefined) {
            firstResult.set(id, value);
            if (mutated) expectedRevision++;
          } else {
            expect(value).toEqual(first);
          }
        }
        expect(kv.revision).toBe(expectedRevision);
      }),
      { numRuns: 150 },
    );
  });
});

describe("ClusterStateMachine on arbitrary bytes", () => {
  it("never throws, and a validation error changes nothing", () => {
    const valid = fc
      .tuple(commandArbitrary, fc.option(fc.integer({ min: 1, max: 3 })))
      .map(([command, sequence]) =>
        encodeCommandEnvelope({
          proposedAtMs: 5,
          payload: encodeKvCommand(command),
          ...(sequence === null ? {} : { session: { clientId: "c", sequence } }),
        }),
      );
    const mutated = fc
      .tuple(
        valid,
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 3,
        }),
      )
      .map(([bytes, flips]) => {
        const copy = bytes.slice();
        for (const [at, value] of flips) copy[at % copy.length] = value;
        return copy;
      });
    const truncated = fc
      .tuple(valid, fc.nat())
      .map(([bytes, n]) => bytes.subarray(0, n % bytes.length));
    fc.assert(
      fc.property(
        fc.array(fc.oneof(fc.uint8Array({ maxLength: 40 }), mutated, truncated), { maxLength: 20 }),
        (inputs) => {
          const kv = new ClusterStateMachine();
          const seed: KvCommand = { op: "put", key: "a", value: VALUES[1] as Uint8Array };
          const data = encodeCommandEnvelope({
            proposedAtMs: 1,
            payload: encodeKvCommand(seed),
            session: { clientId: "c", sequence: 1 },
          });
          kv.apply({ index: 1, term: 1, data });
          inputs.forEach((data, i) => {
            const before = kv.snapshot();
            const result = kv.apply({ index: i + 2, term: 1, data });
            if (!result.ok && result.error.reason === undefined) {
              expect(["INVALID_ARGUMENT", "TOO_LARGE"]).toContain(result.error.code);
              expect(kv.snapshot()).toEqual(before);
            }
          });
        },
      ),
      { numRuns: 200 },
    );
  });
});
