import { describe, expect, it } from "vitest";
import {
  CancelledError,
  ConflictError,
  InvalidArgumentError,
  NotLeaderError,
  TimeoutError,
} from "../../src/common/errors.js";
import {
  CommandPort,
  encodeCommand,
  type CommandMetrics,
  type CommandNode,
  type ReadConsistency,
} from "../../src/node/command-port.js";
import type { OperationOptions } from "../../src/node/operation.js";
import type { ProposeOptions } from "../../src/node/raft-node.js";
import { NONE } from "../../src/raft/types.js";
import {
  ACL_COMMANDS,
  KV_COMMANDS,
  LEASE_COMMANDS,
  ORCHESTRATOR_COMMANDS,
} from "../../src/statemachine/cluster/command-namespaces.js";
import {
  ACL_NAMESPACE_BYTE,
  KV_NAMESPACE_BYTE,
  ORCHESTRATOR_NAMESPACE_BYTE,
} from "../../src/statemachine/cluster/namespace.js";
import {
  errorResult,
  okResult,
  type CommandResult,
} from "../../src/statemachine/command-result.js";
import { encodeKvCommand } from "../../src/statemachine/kv/command-codec.js";
import type { KvCommand, KvResult } from "../../src/statemachine/kv/types.js";
import {
  decodeCommandEnvelope,
  encodeCommandEnvelope,
} from "../../src/statemachine/session/envelope.js";
import { ManualClock } from "./fakes.js";

/** A node that records what the port asks of it and answers as told. */
class FakeNode implements CommandNode {
  readonly id = 1;
  leader: number = 1;
  readonly proposed: { data: Uint8Array; options: ProposeOptions | undefined }[] = [];
  readonly reads: ("read" | "stale")[] = [];
  answer: (data: Uint8Array) => Promise<CommandResult<unknown>> = () =>
    Promise.resolve(okResult({ op: "put", revision: 7 }));
  readFails: Error | undefined;

  get isLeader(): boolean {
    return this.leader === this.id;
  }

  propose(data: Uint8Array, options?: ProposeOptions): Promise<CommandResult<unknown>> {
    this.proposed.push({ data, options });
    return this.answer(data);
  }

  async read<T>(query: () => T, _options?: OperationOptions): Promise<T> {
    this.reads.push("read");
    if (this.readFails !== undefined) throw this.readFails;
    return query();
  }

  readStale<T>(query: () => T): T {
    this.reads.push("stale");
    return query();
  }
}

interface Recorded {
  readonly kind: "proposal" | "read";
  readonly namespace: string;
  readonly consistency?: ReadConsistency;
  readonly outcome: string;
  readonly durationMs: number;
}

function setup(options: { addresses?: Record<number, string> } = {}) {
  const node = new FakeNode();
  const clock = new ManualClock();
  clock.spend(1_700_000_000_123.75);
  const recorded: Recorded[] = [];
  const metrics: CommandMetrics = {
    proposalFinished: (namespace, outcome, durationMs) =>
      recorded.push({ kind: "proposal", namespace, outcome, durationMs }),
    readFinished: (namespace, consistency, outcome, durationMs) =>
      recorded.push({ kind: "read", namespace, consistency, outcome, durationMs }),
  };
  const addresses = options.addresses ?? { 3: "http://10.0.0.3:8000" };
  const port = new CommandPort({
    node,
    clock,
    metrics,
    leaderAddress: (id) => {
      const address = addresses[id];
      return address === undefined ? undefined : new URL(address);
    },
  });
  return { node, clock, recorded, port };
}

const PUT = { op: "put", key: "k", value: new TextEncoder().encode("v") } as const;

describe("CommandPort: the envelope", () => {
  it("wraps the namespace's payload with the clock's whole ms and the session", async () => {
    const { node, port } = setup();
    const session = { clientId: "c-1", sequence: 4, ackedBelow: 2 };
    await port.propose(KV_COMMANDS, PUT, { session });
    const sent = node.proposed[0]?.data;
    expect(sent).toEqual(
      encodeCommandEnvelope({
        proposedAtMs: 1_700_000_000_123,
        session,
        payload: encodeKvCommand(PUT),
      }),
    );
    const decoded = decodeCommandEnvelope(sent as Uint8Array);
    expect(decoded.proposedAtMs).toBe(1_700_000_000_123);
    expect(decoded.session).toEqual(session);
    expect(decoded.payload[0]).toBe(KV_NAMESPACE_BYTE);
  });

  it("omits the session of an at-least-once write and stamps an injected command time", async () => {
    const node = new FakeNode();
    const port = new CommandPort({ node, clock: new ManualClock(), commandTimeMs: () => 42 });
    await port.propose(KV_COMMANDS, PUT);
    const decoded = decodeCommandEnvelope(node.proposed[0]?.data as Uint8Array);
    expect(decoded).toEqual({ proposedAtMs: 42, payload: encodeKvCommand(PUT) });
  });

  it("writes kv commands straight into the envelope: the wrapped payload's bytes, a put in one exact array", () => {
    const value = new TextEncoder().encode("v".repeat(300));
    const commands: KvCommand[] = [
      PUT,
      { op: "put", key: "ключ", value, returnPrevious: true, lease: 9 },
      { op: "delete", key: "k", returnPrevious: true },
      { op: "cas", key: "k", expected: { kind: "value", value }, value },
      {
        op: "txn",
        compare: [{ key: "a", target: "version", operator: "equal", number: 0 }],
        success: [{ op: "put", key: "a", value }],
        failure: [{ op: "delete", key: "a" }],
      },
    ];
    for (const session of [undefined, { clientId: "c-1", sequence: 4, ackedBelow: 2 }]) {
      for (const command of commands) {
        const bytes = encodeCommand(KV_COMMANDS, command, 1234, session);
        expect(bytes).toEqual(
          encodeCommandEnvelope({
            proposedAtMs: 1234,
            ...(session === undefined ? {} : { session }),
            payload: encodeKvCommand(command),
          }),
        );
        if (command.op === "put") expect(bytes.buffer.byteLength).toBe(bytes.byteLength);
      }
    }
    expect(() => encodeCommand(KV_COMMANDS, { ...PUT, key: "" }, 1)).toThrow(InvalidArgumentError);
    expect(() => encodeCommand(KV_COMMANDS, PUT, -1)).toThrow(InvalidArgumentError);
  });

  it("writes each namespace's own first byte", async () => {
    const { node, port } = setup();
    node.answer = () => Promise.resolve(okResult({ type: "deleted" }));
    await port.propose(ORCHESTRATOR_COMMANDS, { type: "deleteVm", name: "vm-1" });
    await port.propose(ACL_COMMANDS, { type: "deletePolicy", name: "p" });
    const firstBytes = node.proposed.map((p) => decodeCommandEnvelope(p.data).payload[0]);
    expect(firstBytes).toEqual([ORCHESTRATOR_NAMESPACE_BYTE, ACL_NAMESPACE_BYTE]);
  });

  it("hands the runtime the call's deadline, signal and leader-only flag", async () => {
    const { node, port } = setup();
    const signal = new AbortController().signal;
    await port.propose(
      LEASE_COMMANDS,
      { op: "leaseRevoke", ids: [1] },
      {
        leaderOnly: true,
        timeoutMs: 250,
        signal,
      },
    );
    expect(node.proposed[0]?.options).toMatchObject({ leaderOnly: true, timeoutMs: 250, signal });
  });

  it("refuses a command its namespace cannot encode without proposing or counting it", async () => {
    const { node, port, recorded } = setup();
    await expect(port.propose(KV_COMMANDS, { ...PUT, key: "" })).rejects.toBeInstanceOf(
      InvalidArgumentError,
    );
    expect(node.proposed).toEqual([]);
    expect(recorded).toEqual([]);
  });
});

describe("CommandPort: results and errors", () => {
  it("resolves with the applied value", async () => {
    const { port } = setup();
    const result: KvResult = await port.propose(KV_COMMANDS, PUT);
    expect(result).toEqual({ op: "put", revision: 7 });
  });

  it("turns a refused command into its typed error, reason first", async () => {
    const { node, port, recorded } = setup();
    node.answer = () =>
      Promise.resolve(errorResult("CONFLICT", "the session is gone", "SESSION_EXPIRED"));
    const error = await port.propose(KV_COMMANDS, PUT).catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ConflictError);
    expect((error as Error).message).toBe("SESSION_EXPIRED: the session is gone");
    expect(recorded.map((r) => r.outcome)).toEqual(["SESSION_EXPIRED"]);
  });

  it("names the leader's API address on NOT_LEADER: the runtime's hint first, else the known leader", async () => {
    const { node, port } = setup({ addresses: { 2: "http://b:8000", 3: "http://c:8000" } });
    node.leader = 2;
    node.answer = () => Promise.reject(new NotLeaderError({ id: 3 }));
    const hinted = await port.propose(KV_COMMANDS, PUT).catch((e: unknown) => e);
    expect((hinted as NotLeaderError).leaderHint).toEqual({ id: 3, address: "http://c:8000/" });
    node.answer = () => Promise.reject(new NotLeaderError());
    const known = await port.propose(KV_COMMANDS, PUT).catch((e: unknown) => e);
    expect((known as NotLeaderError).leaderHint).toEqual({ id: 2, address: "http://b:8000/" });
  });

  it("gives only the id when the leader's address is unknown, and no hint when no leader is", async () => {
    const { node, port } = setup({ addresses: {} });
    node.leader = 4;
    node.answer = () => Promise.reject(new NotLeaderError());
    const idOnly = await port.propose(KV_COMMANDS, PUT).catch((e: unknown) => e);
    expect((idOnly as NotLeaderError).leaderHint).toEqual({ id: 4 });
    node.leader = NONE;
    const none = await port.propose(KV_COMMANDS, PUT).catch((e: unknown) => e);
    expect(none).toBeInstanceOf(NotLeaderError);
    expect((none as NotLeaderError).leaderHint).toBeUndefined();
    expect(port.notLeader().leaderHint).toBeUndefined();
  });

  it("leaves a write's timeout as the runtime said it (outcome unknown)", async () => {
    const { node, port } = setup();
    const timeout = new TimeoutError("proposal did not complete; its outcome is unknown");
    node.answer = () => Promise.reject(timeout);
    await expect(port.propose(KV_COMMANDS, PUT)).rejects.toBe(timeout);
  });

  it("says a read that timed out or was cancelled changed nothing", async () => {
    const { node, port } = setup();
    node.readFails = new TimeoutError("read did not complete; its outcome is unknown");
    const timedOut = await port.read("kv", () => 1).catch((e: unknown) => e);
    expect(timedOut).toBeInstanceOf(TimeoutError);
    expect((timedOut as Error).message).toMatch(/changed nothing/);
    expect((timedOut as Error).message).not.toMatch(/unknown/);
    node.readFails = new CancelledError("read was cancelled; its outcome is unknown");
    const cancelled = await port.read("kv", () => 1).catch((e: unknown) => e);
    expect(cancelled).toBeInstanceOf(CancelledError);
    expect((cancelled as Error).message).not.toMatch(/unknown/);
  });
});

describe("CommandPort: the read barrier per consistency level", () => {
  it("linearizable (the default) waits for the runtime's ReadIndex, on a follower too", async () => {
    const { node, port } = setup();
    node.leader = 3;
    expect(await port.read("kv", () => "answer")).toBe("answer");
    expect(node.reads).toEqual(["read"]);
  });

  it("stale answers from the replica as it is, with no barrier", async () => {
    const { node, port } = setup();
    node.leader = 3;
    expect(await port.read("kv", () => "local", { consistency: "stale" })).toBe("local");
    expect(node.reads).toEqual(["stale"]);
  });

  it("lease is the leader's: a follower refuses it with the leader's address, untouched", async () => {
    const { node, port } = setup();
    expect(await port.read("kv", () => "mine", { consistency: "lease" })).toBe("mine");
    node.leader = 3;
    const error = await port
      .read("kv", () => "stale?", { consistency: "lease" })
      .catch((e: unknown) => e);
    expect((error as NotLeaderError).leaderHint).toEqual({
      id: 3,
      address: "http://10.0.0.3:8000/",
    });
    expect(node.reads).toEqual(["read"]);
  });

  it("barrier resolves once the replica is fresh enough", async () => {
    const { node, port } = setup();
    await port.barrier("lease");
    await port.barrier("orchestrator", { consistency: "stale" });
    expect(node.reads).toEqual(["read", "stale"]);
  });
});

describe("CommandPort: metrics by namespace", () => {
  it("reports each proposal and read under its namespace, with outcome and duration", async () => {
    const { node, clock, port, recorded } = setup();
    node.answer = () =>
      new Promise((resolve) => clock.setTimer(30, () => resolve(okResult({ type: "deleted" }))));
    const deleting = port.propose(ORCHESTRATOR_COMMANDS, { type: "deleteVm", name: "vm-1" });
    await clock.advance(30);
    await deleting;
    node.answer = () => Promise.reject(new NotLeaderError());
    await port.propose(ACL_COMMANDS, { type: "deletePolicy", name: "p" }).catch(() => undefined);
    await port.read("kv", () => 1, { consistency: "stale" });
    node.readFails = new TimeoutError("slow");
    await port.read("lease", () => 1).catch(() => undefined);
    await port.change("cluster", () => Promise.reject(new NotLeaderError())).catch(() => undefined);
    expect(recorded).toEqual([
      { kind: "proposal", namespace: "orchestrator", outcome: "applied", durationMs: 30 },
      { kind: "proposal", namespace: "acl", outcome: "NOT_LEADER", durationMs: 0 },
      { kind: "read", namespace: "kv", consistency: "stale", outcome: "ok", durationMs: 0 },
      {
        kind: "read",
        namespace: "lease",
        consistency: "linearizable",
        outcome: "TIMEOUT",
        durationMs: 0,
      },
      { kind: "proposal", namespace: "cluster", outcome: "NOT_LEADER", durationMs: 0 },
    ]);
  });

  it("a leader-only call (membership) gets the leader's address like a proposal", async () => {
    const { node, port } = setup();
    node.leader = 3;
    const error = await port
      .change("cluster", () => Promise.reject(new NotLeaderError({ id: 3 })))
      .catch((e: unknown) => e);
    expect((error as NotLeaderError).leaderHint?.address).toBe("http://10.0.0.3:8000/");
    expect(port.leaderApiUrl()?.href).toBe("http://10.0.0.3:8000/");
    node.leader = 1;
    expect(port.leaderApiUrl()).toBeUndefined();
  });
});
