/**
 * The cluster state machine: kv and orchestrator in one Raft group under one session layer.
 * Namespace dispatch (kv behaviour itself: kv-namespace*.test.ts), exactly-once orchestrator commands
 * (also across a snapshot), snapshots of both parts with atomic restore, and fuzzing.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { ByteReader, ByteWriter } from "../codec/binary.js";
import { crc32 } from "../../common/crc32.js";
import { encodeKvCommand } from "../kv/command-codec.js";
import type { KvCommand } from "../kv/types.js";
import type { OrchestratorCommand } from "../orchestrator/commands.js";
import { encodeCommandEnvelope, type ClientSession } from "../session/envelope.js";
import { ClusterApplication } from "./cluster-application.js";
import {
  ClusterStateMachine,
  encodeAclCommand,
  encodeOrchestratorCommand,
} from "./cluster-state-machine.js";

const text = (value: string) => new TextEncoder().encode(value);

/** Byte equality without vitest's element-by-element deep equality (slow inside loops). */
const sameBytes = (a: Uint8Array, b: Uint8Array) =>
  a.length === b.length && a.every((byte, i) => byte === b[i]);

const spec = {
  command: "echo",
  args: ["hi"],
  env: {},
  cwd: "",
  shell: false,
  resources: { cpuMillis: 1000, memoryMb: 256, diskGb: 0 },
  requiredFeatures: [],
  timeoutMs: 0,
  maxAttempts: 2,
};

const REGISTER: OrchestratorCommand = {
  type: "registerWorker",
  nodeId: 1,
  capacity: { cpuMillis: 4000, memoryMb: 4096, diskGb: 10 },
  features: ["raw_exec"],
};

function driver(machine: ClusterStateMachine = new ClusterStateMachine()) {
  let index = 0;
  const applyPayload = (payload: Uint8Array, atMs = 0, session?: ClientSession) =>
    machine.apply({
      index: ++index,
      term: 1,
      data: encodeCommandEnvelope({
        proposedAtMs: atMs,
        payload,
        ...(session === undefined ? {} : { session }),
      }),
    });
  return {
    machine,
    applyPayload,
    kv: (command: KvCommand, atMs = 0, session?: ClientSession) =>
      applyPayload(encodeKvCommand(command), atMs, session),
    orchestrator: (command: OrchestratorCommand, atMs = 0, session?: ClientSession) =>
      applyPayload(encodeOrchestratorCommand(command), atMs, session),
  };
}

describe("ClusterStateMachine: namespaces", () => {
  it("routes kv commands to the store and orchestrator commands to the model", () => {
    const { machine, kv, orchestrator } = driver();
    expect(kv({ op: "put", key: "k", value: text("v") }, 10)).toEqual({
      ok: true,
      value: { op: "put", revision: 1 },
    });
    const registered = orchestrator(REGISTER, 20);
    expect(registered).toMatchObject({
      ok: true,
      value: { type: "worker", worker: { nodeId: 1, lastSeenMs: 20 } },
    });
    expect(orchestrator({ type: "submitTask", id: "t", spec }, 30)).toMatchObject({
      ok: true,
      value: { type: "task", task: { status: "assigned", nodeId: 1 } },
    });
    expect(machine.read("k")?.value).toEqual(text("v"));
    expect(machine.revision).toBe(1);
    expect(machine.keyCount).toBe(1);
    expect(machine.logTimeMs).toBe(30);
    expect(machine.orchestrator.task("t")?.status).toBe("assigned");
    expect(machine.orchestrator.assignments(1).tasks).toHaveLength(1);
  });

  it("hands over its snapshot buffer without a copy: the size is exact", () => {
    const { machine } = driver();
    const bytes = machine.snapshot();
    expect(bytes.byteLength).toBe(bytes.buffer.byteLength);
    const copy = new ClusterStateMachine();
    copy.restore(bytes);
    expect(copy.snapshot()).toEqual(bytes);
  });

  it("refuses an unknown namespace byte, naming the ones it reads", () => {
    const { machine, applyPayload } = driver();
    const before = machine.snapshot();
    for (const [payload, message] of [
      [new Uint8Array(), "empty payload"],
      [new Uint8Array([0x00, 1]), "0x00 names no namespace"],
      [new Uint8Array([0x02, 1]), "0x02 is a kv format this node does not know"],
      [new Uint8Array([0x11, 1]), "0x11 is an orchestrator format this node does not know"],
      [new Uint8Array([0x21, 1]), "0x21 is an ACL format this node does not know"],
      [new Uint8Array([0x30, 1]), "0x30 names no namespace"],
      [new Uint8Array([0xff]), "0xff names no namespace"],
    ] as const) {
      const result = applyPayload(payload, 99);
      expect(result).toMatchObject({ ok: false, error: { code: "INVALID_ARGUMENT" } });
      if (!result.ok) expect(result.error.message).toContain(message);
    }
    expect(machine.snapshot()).toEqual(before);
  });
});

describe("ClusterStateMachine: exactly-once orchestrator commands", () => {
  it("answers a retried submit with its first result instead of applying it again", () => {
    const { machine, orchestrator } = driver();
    orchestrator(REGISTER, 1);
    const session = { clientId: "client-1", sequence: 1 };
    const first = orchestrator({ type: "submitTask", id: "t", spec }, 2, session);
    expect(first.ok).toBe(true);
    expect(orchestrator({ type: "submitTask", id: "t", spec }, 50, session)).toEqual(first);
    expect(machine.orchestrator.tasks()).toHaveLength(1);
    // Without the session, the same submit is a new command and the id is taken.
    expect(orchestrator({ type: "submitTask", id: "t", spec }, 60)).toMatchObject({
      ok: false,
      error: { code: "CONFLICT" },
    });
    expect(machine.session("client-1")?.keptSequences).toEqual([1]);
  });

  it("keeps results of both namespaces in one session, and they survive a snapshot", () => {
    const { machine, kv, orchestrator } = driver();
    orchestrator(REGISTER, 1);
    const s = (sequence: number): ClientSession => ({ clientId: "c", sequence, ackedBelow: 1 });
    const put = kv({ op: "put", key: "k", value: text("v") }, 2, s(1));
    const submit = orchestrator({ type: "submitTask", id: "t", spec }, 3, s(2));
    const restored = driver(new ClusterStateMachine());
    restored.machine.restore(machine.snapshot());
    expect(restored.machine.snapshot()).toEqual(machine.snapshot());
    expect(restored.kv({ op: "put", key: "k", value: text("v") }, 4, s(1))).toEqual(put);
    expect(restored.orchestrator({ type: "submitTask", id: "t", spec }, 5, s(2))).toEqual(submit);
    expect(restored.machine.revision).toBe(1);
    expect(restored.machine.orchestrator.task("t")?.attempts).toBe(1);
  });
});

describe("ClusterStateMachine: snapshots", () => {
  function populated() {
    const d = driver();
    d.kv({ op: "put", key: "a", value: text("1") }, 1);
    d.orchestrator(REGISTER, 2);
    d.orchestrator({ type: "submitTask", id: "t", spec }, 3);
    d.orchestrator(
      {
        type: "createVm",
        name: "vm",
        spec: {
          vcpus: 1,
          memoryMb: 128,
          diskGb: 0,
          driver: "process",
          command: "sleep",
          args: [],
          kernel: "",
          initrd: "",
          image: "",
          cmdline: "",
          requiredFeatures: [],
          antiAffinityGroup: "",
          restart: { mode: "never", maxRestarts: 0, backoffMs: 0 },
        },
        desired: "running",
      },
      4,
    );
    return d;
  }

  it("round-trips both parts; a view taken before a restore sees the restored model", () => {
    const source = populated().machine;
    const target = new ClusterStateMachine();
    const view = target.orchestrator;
    target.restore(source.snapshot());
    expect(target.snapshot()).toEqual(source.snapshot());
    expect(target.read("a")).toEqual(source.read("a"));
    expect(view.workers()).toEqual(source.orchestrator.workers());
    expect(view.vms()).toEqual(source.orchestrator.vms());
    expect(view.task("t")).toEqual(source.orchestrator.task("t"));
    expect(view.settings()).toEqual({ placement: "binpack" });
  });

  it("refuses any flipped byte and changes nothing", () => {
    const good = populated().machine.snapshot();
    const target = populated().machine;
    const before = target.snapshot();
    fc.assert(
      fc.property(fc.nat(good.length - 1), fc.integer({ min: 1, max: 255 }), (at, xor) => {
        const bad = good.slice();
        bad[at] = (bad[at] as number) ^ xor;
        expect(() => target.restore(bad)).toThrow(
          expect.objectContaining({ code: "INVALID_ARGUMENT" }),
        );
        expect(sameBytes(target.snapshot(), before)).toBe(true);
      }),
      { numRuns: 200 },
    );
  });

  it("restores both parts or neither: a bad orchestrator part leaves the kv part alone", () => {
    const app = new ClusterApplication();
    const source = new ClusterApplication();
    source.execute(
      { namespace: "kv", command: { op: "put", key: "x", value: text("1") } },
      { index: 1, term: 1, logTimeMs: 0 },
    );
    source.execute(
      { namespace: "orchestrator", command: REGISTER },
      { index: 2, term: 1, logTimeMs: 0 },
    );
    // Take the source's snapshot apart, spoil the orchestrator part, and put it back together
    // with a correct checksum, so only the orchestrator's own checks can refuse it.
    const reader = new ByteReader(source.snapshot(), "test");
    const header = reader.rawView(6).slice();
    const kvPart = reader.bytes();
    const orchestratorPart = reader.bytes();
    const aclPart = reader.bytes();
    orchestratorPart[0] = 0;
    const writer = new ByteWriter()
      .raw(header)
      .bytes(kvPart)
      .bytes(orchestratorPart)
      .bytes(aclPart);
    const spoiled = writer.u32(crc32(writer.written())).finish();
    const before = app.snapshot();
    expect(() => app.restore(spoiled)).toThrow(/not an orchestrator snapshot/);
    expect(app.snapshot()).toEqual(before);
    expect(app.kv.keyCount).toBe(0);
  });
});

describe("ClusterStateMachine: fuzzing", () => {
  it("any payload is applied or refused with INVALID_ARGUMENT or TOO_LARGE, never thrown; refusals change nothing", () => {
    const { machine, applyPayload } = populated();
    const valid = [
      encodeKvCommand({ op: "put", key: "k", value: text("v") }),
      encodeOrchestratorCommand({ type: "submitTask", id: "u", spec }),
      encodeOrchestratorCommand({ type: "setWorkerDrain", nodeId: 1, draining: true }),
    ];
    const payload = fc.oneof(
      fc.uint8Array({ maxLength: 64 }),
      fc
        .tuple(fc.constantFrom(...valid), fc.nat(), fc.integer({ min: 0, max: 255 }))
        .map(([bytes, at, value]) => {
          const mutated = bytes.slice();
          mutated[at % mutated.length] = value;
          return mutated;
        }),
    );
    fc.assert(
      fc.property(payload, (bytes) => {
        const before = machine.snapshot();
        const result = applyPayload(bytes, 1_000_000);
        if (!result.ok) {
          expect([
            "INVALID_ARGUMENT",
            "TOO_LARGE",
            "CONFLICT",
            "NOT_FOUND",
            "OVERLOADED",
          ]).toContain(result.error.code);
          // Only a well-formed command may move log time; a refused one changes nothing else.
          if (result.error.code === "INVALID_ARGUMENT" || result.error.code === "TOO_LARGE") {
            expect(sameBytes(machine.snapshot(), before)).toBe(true);
          }
        }
      }),
      { numRuns: 1000 },
    );
  });

  function populated() {
    const d = driver();
    d.orchestrator(REGISTER, 1);
    d.orchestrator({ type: "submitTask", id: "t", spec }, 2);
    return d;
  }
});

describe("ClusterApplication results", () => {
  it("tags results with their namespace byte and decodes them back", () => {
    const app = new ClusterApplication();
    const kvResult = { namespace: "kv" as const, result: { op: "put" as const, revision: 3 } };
    const kvBytes = app.encodeResult(kvResult);
    expect(kvBytes[0]).toBe(0x01);
    expect(app.decodeResult(kvBytes)).toEqual(kvResult);
    const orchestratorResult = {
      namespace: "orchestrator" as const,
      result: { type: "deleted" as const },
    };
    const orchestratorBytes = app.encodeResult(orchestratorResult);
    expect(orchestratorBytes[0]).toBe(0x10);
    expect(app.decodeResult(orchestratorBytes)).toEqual(orchestratorResult);
    expect(() => app.decodeResult(new Uint8Array([0x07, 1]))).toThrow(/malformed cluster result/);
    expect(() => app.decodeResult(new Uint8Array())).toThrow(/empty/);
  });
});

describe("ClusterStateMachine: the ACL namespace", () => {
  const token = {
    accessorId: "root",
    secretHash: "ab".repeat(32),
    name: "root",
    description: "",
    policies: [],
    management: true,
    createdAtMs: 1,
    expiresAtMs: null,
  };

  it("applies ACL commands, tags their results in sessions, and bumps the ACL generation", () => {
    const { machine, applyPayload } = driver();
    const generation = machine.acl.generation;
    const session = { clientId: "c", sequence: 1 };
    const first = applyPayload(encodeAclCommand({ type: "bootstrap", token }), 1, session);
    expect(first).toMatchObject({
      ok: true,
      value: { type: "token", token: { accessorId: "root" } },
    });
    expect(machine.acl.generation).toBe(generation + 1);
    expect(machine.acl.tokenByHash("ab".repeat(32))?.management).toBe(true);
    // The retry answers from the session (tag 0x20 decoded back), without applying again.
    expect(applyPayload(encodeAclCommand({ type: "bootstrap", token }), 2, session)).toEqual(first);
    expect(machine.acl.generation).toBe(generation + 1);
    const refused = applyPayload(encodeAclCommand({ type: "bootstrap", token }), 3);
    expect(refused).toMatchObject({ ok: false, error: { code: "CONFLICT" } });
    expect(machine.acl.generation).toBe(generation + 1);
  });

  it("carries the ACL part in snapshots; a restore bumps the generation", () => {
    const source = driver();
    source.applyPayload(encodeAclCommand({ type: "bootstrap", token }), 1);
    const target = new ClusterStateMachine();
    const generation = target.acl.generation;
    target.restore(source.machine.snapshot());
    expect(target.acl.bootstrapped).toBe(true);
    expect(target.acl.token("root")).toEqual(token);
    expect(target.acl.generation).toBeGreaterThan(generation);
  });

  it("reads a version 1 snapshot (before the ACL part) as an empty ACL state", () => {
    const source = new ClusterApplication();
    const at = (index: number) => ({ index, term: 1, logTimeMs: 0 });
    source.execute({ namespace: "kv", command: { op: "put", key: "k", value: text("v") } }, at(1));
    source.execute({ namespace: "acl", command: { type: "bootstrap", token } }, at(2));
    // Rebuild the snapshot as version 1 wrote it: no ACL part.
    const reader = new ByteReader(source.snapshot(), "test");
    const magic = reader.rawView(4).slice();
    expect(reader.u16()).toBe(2);
    const kvPart = reader.bytes();
    const orchestratorPart = reader.bytes();
    const v1 = new ByteWriter().raw(magic).u16(1).bytes(kvPart).bytes(orchestratorPart);
    const app = new ClusterApplication();
    app.restore(v1.u32(crc32(v1.written())).finish());
    expect(app.kv.read("k")?.value).toEqual(text("v"));
    expect(app.acl.bootstrapped).toBe(false);
    expect(app.acl.tokens()).toEqual([]);
    const v3 = new ByteWriter().raw(magic).u16(3).bytes(kvPart).bytes(orchestratorPart);
    expect(() => app.restore(v3.u32(crc32(v3.written())).finish())).toThrow(/versions 1 to 2/);
  });
});
