/**
 * The orchestrator command and result codecs: round trips, canonical bytes, strict decoding, and
 * fuzzing (random and mutated bytes, random JSON values) that must only ever produce
 * INVALID_ARGUMENT or TOO_LARGE.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { isBlixardError } from "../../common/index.js";
import {
  ORCHESTRATOR_COMMAND_FORMAT,
  decodeOrchestratorCommand,
  encodeOrchestratorCommand,
} from "./command-codec.js";
import { readOrchestratorCommand } from "./command-reader.js";
import type { OrchestratorCommand, OrchestratorResult } from "./commands.js";
import {
  MAX_AGENT_REPORTS_PER_BATCH,
  MAX_ARG_BYTES,
  MAX_COMMAND_BYTES,
  MAX_SUBMIT_BATCH_TASKS,
  MAX_TASK_OUTPUT_BYTES,
} from "./limits.js";
import { OrchestratorModel } from "./model.js";
import { decodeOrchestratorResult, encodeOrchestratorResult } from "./result-codec.js";
import type { TaskSpec, VmSpec } from "./types.js";

const spec: TaskSpec = {
  command: "/bin/echo",
  args: ["hello", "wörld 😀"],
  env: { HOME: "/tmp", A_B: "1" },
  cwd: "/tmp",
  shell: false,
  resources: { cpuMillis: 1000, memoryMb: 256, diskGb: 1 },
  requiredFeatures: ["ssd"],
  timeoutMs: 60_000,
  maxAttempts: 3,
};

const vm: VmSpec = {
  vcpus: 2,
  memoryMb: 1024,
  diskGb: 4,
  driver: "qemu",
  command: "",
  args: [],
  kernel: "/boot/vmlinuz",
  initrd: "/boot/initrd",
  image: "",
  cmdline: "console=ttyS0",
  requiredFeatures: ["kvm"],
  antiAffinityGroup: "db",
  restart: { mode: "on-failure", maxRestarts: 5, backoffMs: 1000 },
};

const result = {
  exitCode: 0,
  stdout: "hello\n",
  stderr: "",
  stdoutTruncated: false,
  stderrTruncated: true,
  durationMs: 12,
  error: "",
};

/** One of every command. */
const COMMANDS: OrchestratorCommand[] = [
  {
    type: "registerWorker",
    nodeId: 1,
    capacity: { cpuMillis: 4000, memoryMb: 8192, diskGb: 100 },
    features: ["kvm", "qemu"],
  },
  { type: "setWorkerDrain", nodeId: 2, draining: true },
  { type: "markWorkerOffline", nodeId: 3 },
  { type: "submitTask", id: "0b6c1c9e-5e0e-4c55-9d7f-1a2b3c4d5e6f", spec },
  { type: "cancelTask", id: "t-1" },
  { type: "taskStarted", id: "t-1", nodeId: 2, attempt: 1 },
  { type: "taskFinished", id: "t-1", nodeId: 2, attempt: 1, outcome: "succeeded", result },
  {
    type: "taskFinished",
    id: "t-2",
    nodeId: 2,
    attempt: 3,
    outcome: "timed_out",
    result: { ...result, exitCode: null },
  },
  { type: "createVm", name: "db-1", spec: vm, desired: "running" },
  { type: "setVmDesired", name: "db-1", desired: "stopped" },
  { type: "deleteVm", name: "db-1" },
  { type: "vmObserved", name: "db-1", nodeId: 1, status: "running", restarts: 2, error: "exit 1" },
  { type: "setSettings", settings: { placement: "spread" } },
  { type: "setWorkerDrain", nodeId: 2, draining: true, deadlineMs: 300_000 },
  { type: "drainDeadlineReached", nodeId: 2 },
  {
    type: "submitTasks",
    tasks: [
      { id: "b-1", spec },
      { id: "b-2", spec: { ...spec, requiredFeatures: [] } },
    ],
  },
  {
    type: "agentReports",
    nodeId: 2,
    reports: [
      { type: "taskStarted", id: "t-1", nodeId: 2, attempt: 1 },
      { type: "taskFinished", id: "t-2", nodeId: 2, attempt: 1, outcome: "failed", result },
      { type: "vmObserved", name: "db-1", nodeId: 2, status: "running", restarts: 0, error: "" },
    ],
  },
];

/** The code of what `run` throws, or "none"; anything but a Blixard error is re-thrown. */
function thrownCode(run: () => unknown): string {
  try {
    run();
    return "none";
  } catch (error) {
    if (!isBlixardError(error)) throw error;
    return error.code;
  }
}

const WORKER = {
  nodeId: 1,
  capacity: { cpuMillis: 1000, memoryMb: 1024, diskGb: 0 },
  features: [],
  status: "draining",
  drain: true,
  allocated: { cpuMillis: 0, memoryMb: 0, diskGb: 0 },
  lastSeenMs: 0,
};
const text = (value: string) => new TextEncoder().encode(value);

function withFormat(json: string): Uint8Array {
  const body = text(json);
  const bytes = new Uint8Array(body.length + 1);
  bytes[0] = ORCHESTRATOR_COMMAND_FORMAT;
  bytes.set(body, 1);
  return bytes;
}

/** A `submitTasks` of two tasks whose second has `specChanges` applied, as JSON. */
function batchOf(specChanges: Record<string, unknown>): string {
  return JSON.stringify({
    type: "submitTasks",
    tasks: [
      { id: "t0", spec },
      { id: "t1", spec: { ...spec, ...specChanges } },
    ],
  });
}

describe("orchestrator command codec", () => {
  it.each(COMMANDS.map((command) => [command.type, command] as const))(
    "round-trips %s",
    (_type, command) => {
      const bytes = encodeOrchestratorCommand(command);
      expect(bytes[0]).toBe(ORCHESTRATOR_COMMAND_FORMAT);
      expect(decodeOrchestratorCommand(bytes)).toEqual(command);
      expect(encodeOrchestratorCommand(decodeOrchestratorCommand(bytes))).toEqual(bytes);
    },
  );

  it("reads the drain commands of nodes from before drain deadlines, byte for byte", () => {
    // Bytes as a node without drain deadlines wrote them: no deadlineMs, meaning "move now".
    const old = withFormat('{"type":"setWorkerDrain","nodeId":2,"draining":true}');
    expect(decodeOrchestratorCommand(old)).toEqual({
      type: "setWorkerDrain",
      nodeId: 2,
      draining: true,
    });
    expect(encodeOrchestratorCommand(decodeOrchestratorCommand(old))).toEqual(old);
    // A deadline of 0 is the same command as none, and encodes as the old bytes.
    expect(
      encodeOrchestratorCommand({
        type: "setWorkerDrain",
        nodeId: 2,
        draining: true,
        deadlineMs: 0,
      }),
    ).toEqual(old);
    for (const [json, message] of [
      ['{"type":"setWorkerDrain","nodeId":2,"draining":false,"deadlineMs":5}', "undrain"],
      ['{"type":"setWorkerDrain","nodeId":2,"draining":true,"deadlineMs":-1}', "deadlineMs"],
      ['{"type":"setWorkerDrain","nodeId":2,"draining":true,"deadlineMs":"5m"}', "deadlineMs"],
      ['{"type":"drainDeadlineReached","nodeId":2,"at":5}', "at"],
    ] as const) {
      expect(() => decodeOrchestratorCommand(withFormat(json))).toThrow(message);
    }
  });

  it("is canonical: key order and environment order do not change the bytes", () => {
    const shuffled: OrchestratorCommand = {
      spec: {
        maxAttempts: 3,
        timeoutMs: 60_000,
        requiredFeatures: ["ssd"],
        resources: { diskGb: 1, memoryMb: 256, cpuMillis: 1000 },
        shell: false,
        cwd: "/tmp",
        env: { A_B: "1", HOME: "/tmp" },
        args: ["hello", "wörld 😀"],
        command: "/bin/echo",
      },
      id: "0b6c1c9e-5e0e-4c55-9d7f-1a2b3c4d5e6f",
      type: "submitTask",
    };
    expect(encodeOrchestratorCommand(shuffled)).toEqual(
      encodeOrchestratorCommand(COMMANDS[3] as OrchestratorCommand),
    );
    expect(new TextDecoder().decode(encodeOrchestratorCommand(shuffled).subarray(1))).toMatch(
      /^\{"type":"submitTask","id":"[^"]+","spec":\{"command":"\/bin\/echo".*"env":\{"A_B":"1","HOME":"\/tmp"\}/,
    );
  });

  it("refuses what is not a valid command, naming the problem", () => {
    const cases: [Uint8Array, string, string][] = [
      [new Uint8Array(), "INVALID_ARGUMENT", "needs 1 more bytes"],
      [new Uint8Array([0x01, 0x7b, 0x7d]), "INVALID_ARGUMENT", "unknown format byte 0x1"],
      [withFormat("{"), "INVALID_ARGUMENT", "not valid JSON"],
      [new Uint8Array([ORCHESTRATOR_COMMAND_FORMAT, 0xff]), "INVALID_ARGUMENT", "not valid UTF-8"],
      [withFormat("[]"), "INVALID_ARGUMENT", "must be an object"],
      [withFormat('{"type":"explode"}'), "INVALID_ARGUMENT", "type must be one of"],
      [withFormat('{"type":"cancelTask"}'), "INVALID_ARGUMENT", "cancelTask.id is required"],
      [
        withFormat('{"type":"cancelTask","id":"a","force":true}'),
        "INVALID_ARGUMENT",
        "cancelTask.force is not a known field",
      ],
      [
        withFormat('{"type":"markWorkerOffline","nodeId":"1"}'),
        "INVALID_ARGUMENT",
        "nodeId must be an integer",
      ],
      [
        withFormat('{"type":"markWorkerOffline","nodeId":1.5}'),
        "INVALID_ARGUMENT",
        "nodeId must be an integer",
      ],
      [
        withFormat('{"type":"markWorkerOffline","nodeId":1e300}'),
        "INVALID_ARGUMENT",
        "nodeId must be an integer",
      ],
      [
        withFormat('{"type":"setWorkerDrain","nodeId":1,"draining":1}'),
        "INVALID_ARGUMENT",
        "draining must be a boolean",
      ],
      [withFormat('{"type":"cancelTask","id":"\\ud800"}'), "INVALID_ARGUMENT", "lone surrogate"],
      [
        withFormat('{"type":"cancelTask","id":"a","__proto__":{}}'),
        "INVALID_ARGUMENT",
        "__proto__ is not a known field",
      ],
      [new Uint8Array(MAX_COMMAND_BYTES + 1).fill(0x20), "TOO_LARGE", "the limit is"],
      // Paths are built only for the error, from the field, item and note they pass through.
      [
        withFormat(batchOf({ args: ["ok", 7] })),
        "INVALID_ARGUMENT",
        "submitTasks.tasks[1].spec.args[1] must be a string, got 7",
      ],
      [
        withFormat(batchOf({ env: { "1X": "v" } })),
        "INVALID_ARGUMENT",
        'submitTasks.tasks[1].spec.env.1X (name) "1X" is not valid',
      ],
      [
        withFormat(batchOf({ resources: { cpuMillis: 0, memoryMb: 1, diskGb: 0 } })),
        "INVALID_ARGUMENT",
        "submitTasks.tasks[1].spec.resources.cpuMillis must be at least 1",
      ],
      [
        withFormat(batchOf({ args: Array<string>(9).fill("y".repeat(MAX_ARG_BYTES)) })),
        "TOO_LARGE",
        "submitTasks.tasks[1].spec holds",
      ],
      [
        withFormat(
          JSON.stringify({
            type: "agentReports",
            nodeId: 3,
            reports: [
              { type: "taskStarted", id: "a", nodeId: 3, attempt: 1 },
              { type: "taskFinished", id: "a", nodeId: 3, attempt: 1, outcome: "won", result: {} },
            ],
          }),
        ),
        "INVALID_ARGUMENT",
        "agentReports.reports[1] (taskFinished).outcome must be one of",
      ],
    ];
    for (const [bytes, code, message] of cases) {
      let caught: unknown;
      try {
        decodeOrchestratorCommand(bytes);
      } catch (error) {
        caught = error;
      }
      expect(caught, message).toMatchObject({ code });
      expect((caught as Error).message).toContain(message);
    }
  });

  it("carries a qemu VM's published ports; none is encoded as absent; bad ones are refused", () => {
    const publish = [
      { hostPort: 8080, guestPort: 80 },
      { hostPort: 2222, guestPort: 22 },
    ];
    const create = (extra: Partial<VmSpec>): OrchestratorCommand => ({
      type: "createVm",
      name: "web",
      spec: { ...vm, ...extra },
      desired: "running",
    });
    const decoded = decodeOrchestratorCommand(encodeOrchestratorCommand(create({ publish })));
    expect(decoded).toMatchObject({ spec: { publish } });
    expect(encodeOrchestratorCommand(create({ publish: [] }))).toEqual(
      encodeOrchestratorCommand(create({})),
    );
    const refused: [Partial<VmSpec>, string][] = [
      [{ publish: [publish[0]!, { hostPort: 8080, guestPort: 81 }] }, "host port 8080 twice"],
      [{ publish: [{ hostPort: 0, guestPort: 80 }] }, "hostPort must be an integer in 1..65535"],
      [{ publish: [{ hostPort: 80, guestPort: 70_000 }] }, "guestPort must be an integer"],
      [
        { publish, driver: "process", command: "/bin/true", kernel: "", initrd: "", cmdline: "" },
        "publish is a qemu setting",
      ],
    ];
    for (const [extra, message] of refused) {
      expect(() => encodeOrchestratorCommand(create(extra)), message).toThrow(message);
    }
  });

  it("carries a qemu VM's health check and the unhealthy status; none is encoded as absent", () => {
    const health = {
      tcpPort: 0,
      command: "test -e /run/ok",
      intervalMs: 5000,
      timeoutMs: 1000,
      failureThreshold: 2,
    };
    const create = (extra: Partial<VmSpec>): OrchestratorCommand => ({
      type: "createVm",
      name: "web",
      spec: { ...vm, ...extra },
      desired: "running",
    });
    expect(decodeOrchestratorCommand(encodeOrchestratorCommand(create({ health })))).toEqual(
      create({ health }),
    );
    const tcp = { ...health, tcpPort: 80, command: "" };
    expect(decodeOrchestratorCommand(encodeOrchestratorCommand(create({ health: tcp })))).toEqual(
      create({ health: tcp }),
    );
    // A spec without a check encodes as it did before health checks existed.
    expect(new TextDecoder().decode(encodeOrchestratorCommand(create({})))).not.toContain("health");
    const unhealthy: OrchestratorCommand = {
      type: "vmObserved",
      name: "web",
      nodeId: 1,
      status: "unhealthy",
      restarts: 0,
      error: "health check failed",
    };
    expect(decodeOrchestratorCommand(encodeOrchestratorCommand(unhealthy))).toEqual(unhealthy);
    const refused: [Partial<VmSpec>, string][] = [
      [{ health: { ...health, tcpPort: 80 } }, "exactly one of tcpPort"],
      [{ health: { ...health, command: "" } }, "exactly one of tcpPort"],
      [{ health: { ...tcp, failureThreshold: 0 } }, "failureThreshold"],
      [{ health: { ...tcp, extra: 1 } as never }, "extra"],
    ];
    for (const [extra, message] of refused) {
      expect(() => encodeOrchestratorCommand(create(extra)), message).toThrow(message);
    }
  });

  it("refuses to encode an invalid command", () => {
    const emptyId = { ...(COMMANDS[3] as object), id: "" } as OrchestratorCommand;
    expect(thrownCode(() => encodeOrchestratorCommand(emptyId))).toBe("INVALID_ARGUMENT");
    const huge = { ...result, stdout: "x".repeat(MAX_TASK_OUTPUT_BYTES + 1) };
    const finished = { ...(COMMANDS[6] as object), result: huge } as OrchestratorCommand;
    expect(thrownCode(() => encodeOrchestratorCommand(finished))).toBe("TOO_LARGE");
  });

  it("fits the largest legal command, every output character escaped, within the bound", () => {
    const control = "\u0001".repeat(MAX_TASK_OUTPUT_BYTES);
    const largest = {
      ...(COMMANDS[6] as object),
      result: { ...result, stdout: control, stderr: control, error: "\u0001".repeat(4096) },
    } as OrchestratorCommand;
    expect(encodeOrchestratorCommand(largest).length).toBeLessThan(MAX_COMMAND_BYTES);
  });
});

describe("orchestrator codec fuzzing", () => {
  const valid = COMMANDS.map((command) => encodeOrchestratorCommand(command));

  it("decoding random bytes only ever fails with INVALID_ARGUMENT or TOO_LARGE", () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 200 }), fc.boolean(), (bytes, withByte) => {
        const input = withByte ? new Uint8Array([ORCHESTRATOR_COMMAND_FORMAT, ...bytes]) : bytes;
        expect(["none", "INVALID_ARGUMENT", "TOO_LARGE"]).toContain(
          thrownCode(() => decodeOrchestratorCommand(input)),
        );
      }),
      { numRuns: 2000 },
    );
  });

  it("decoding mutated valid commands never throws anything else, and what decodes re-encodes", () => {
    fc.assert(
      fc.property(
        fc.constantFrom(...valid),
        fc.array(fc.tuple(fc.nat(), fc.integer({ min: 0, max: 255 })), {
          minLength: 1,
          maxLength: 4,
        }),
        fc.nat(),
        (bytes, flips, cut) => {
          const mutated = bytes.slice(0, Math.max(1, bytes.length - (cut % 4)));
          for (const [at, value] of flips) mutated[at % mutated.length] = value;
          let decoded: OrchestratorCommand | undefined;
          const code = thrownCode(() => {
            decoded = decodeOrchestratorCommand(mutated);
          });
          expect(["none", "INVALID_ARGUMENT", "TOO_LARGE"]).toContain(code);
          if (decoded !== undefined) {
            expect(decodeOrchestratorCommand(encodeOrchestratorCommand(decoded))).toEqual(decoded);
          }
        },
      ),
      { numRuns: 3000 },
    );
  });

  it("the model refuses any malformed command object without throwing or changing state", () => {
    const model = new OrchestratorModel();
    model.apply(COMMANDS[0] as OrchestratorCommand, 1);
    model.apply(COMMANDS[3] as OrchestratorCommand, 2);
    const before = model.snapshot();
    const mutant = fc.oneof(
      fc.anything({ maxDepth: 2, maxKeys: 4 }),
      fc
        .constantFrom(...COMMANDS)
        .chain((command) =>
          fc
            .tuple(
              fc.constantFrom(...Object.keys(command)),
              fc.anything({ maxDepth: 2, maxKeys: 4 }),
            )
            .map(([key, value]) => ({ ...command, [key]: value })),
        ),
    );
    fc.assert(
      fc.property(mutant, (value) => {
        let valid = true;
        try {
          readOrchestratorCommand(value);
        } catch {
          valid = false;
        }
        fc.pre(!valid);
        const applied = model.apply(value as OrchestratorCommand, 3);
        expect(applied.ok).toBe(false);
        if (!applied.ok) expect(["INVALID_ARGUMENT", "TOO_LARGE"]).toContain(applied.error.code);
        const after = model.snapshot();
        expect(after.length === before.length && after.every((b, i) => b === before[i])).toBe(true);
      }),
      { numRuns: 500 },
    );
  });
});

describe("orchestrator result codec", () => {
  it("round-trips every result the model returns, canonically", () => {
    const model = new OrchestratorModel();
    const commands: OrchestratorCommand[] = [
      COMMANDS[0] as OrchestratorCommand,
      { type: "setWorkerDrain", nodeId: 1, draining: true },
      COMMANDS[3] as OrchestratorCommand,
      { type: "createVm", name: "v", spec: { ...vm, requiredFeatures: [] }, desired: "running" },
      { type: "setSettings", settings: { placement: "spread" } },
    ];
    const values = commands.map((command, i) => {
      const applied = model.apply(command, i);
      if (!applied.ok) throw new Error(applied.error.message);
      return applied.value;
    });
    expect(values.map((v) => v.type)).toEqual(["worker", "worker", "task", "vm", "settings"]);
    expect(values[1]).toMatchObject({ moved: { tasks: 0, vms: 0 } });
    // A worker result without `moved` (every one before drains moved work) still decodes.
    const { moved: _moved, ...older } = values[1] as Extract<
      OrchestratorResult,
      { type: "worker" }
    >;
    expect(decodeOrchestratorResult(encodeOrchestratorResult(older))).toEqual(older);
    // A worker as encoded before drains had deadlines and an end: draining, no drainDeadlineMs.
    const oldWorker = `{"type":"worker","worker":${JSON.stringify(WORKER)}}`;
    expect(decodeOrchestratorResult(text(oldWorker))).toEqual({ type: "worker", worker: WORKER });
    expect(encodeOrchestratorResult(decodeOrchestratorResult(text(oldWorker)))).toEqual(
      text(oldWorker),
    );
    const waiting = { ...WORKER, drainDeadlineMs: 60_000 };
    const drained = { ...WORKER, status: "drained" };
    for (const worker of [waiting, drained]) {
      const result = { type: "worker", worker, moved: { tasks: 1, vms: 0 } } as OrchestratorResult;
      expect(decodeOrchestratorResult(encodeOrchestratorResult(result))).toEqual(result);
    }
    for (const value of [...values, { type: "deleted" as const }]) {
      const bytes = encodeOrchestratorResult(value);
      expect(decodeOrchestratorResult(bytes)).toEqual(value);
      expect(encodeOrchestratorResult(decodeOrchestratorResult(bytes))).toEqual(bytes);
    }
  });

  it("refuses batches that break a batch rule, as a whole", () => {
    const report = { type: "taskStarted", id: "t", nodeId: 3, attempt: 1 };
    const cases: [unknown, string, string][] = [
      [
        { type: "agentReports", nodeId: 2, reports: [report] },
        "INVALID_ARGUMENT",
        "agentReports.reports[0] is about node 3, not the reporting node 2",
      ],
      [
        { type: "agentReports", nodeId: 3, reports: [{ type: "cancelTask", id: "t" }] },
        "INVALID_ARGUMENT",
        "must be one of taskStarted, taskFinished, vmObserved",
      ],
      [
        { type: "agentReports", nodeId: 3, reports: [{ ...report, extra: 1 }] },
        "INVALID_ARGUMENT",
        "extra is not a known field",
      ],
      [
        {
          type: "agentReports",
          nodeId: 3,
          reports: Array(MAX_AGENT_REPORTS_PER_BATCH + 1).fill(report),
        },
        "TOO_LARGE",
        `the limit is ${MAX_AGENT_REPORTS_PER_BATCH}`,
      ],
      [
        {
          type: "submitTasks",
          tasks: [
            { id: "ok", spec },
            { id: "bad", spec: { ...spec, maxAttempts: 0 } },
          ],
        },
        "INVALID_ARGUMENT",
        "submitTasks.tasks[1].spec.maxAttempts",
      ],
      [
        { type: "submitTasks", tasks: Array(MAX_SUBMIT_BATCH_TASKS + 1).fill({ id: "x", spec }) },
        "TOO_LARGE",
        `the limit is ${MAX_SUBMIT_BATCH_TASKS}`,
      ],
    ];
    for (const [command, code, words] of cases) {
      let caught: unknown;
      try {
        readOrchestratorCommand(command);
      } catch (error) {
        caught = error;
      }
      expect(isBlixardError(caught) && caught.code).toBe(code);
      expect((caught as Error).message).toContain(words);
    }
  });

  it("fits a full batch of small submits within the command bound", () => {
    const small: TaskSpec = { ...spec, args: [], env: {}, cwd: "", requiredFeatures: [] };
    const tasks = Array.from({ length: MAX_SUBMIT_BATCH_TASKS }, (_, i) => ({
      id: `00000000-0000-4000-8000-${String(i).padStart(12, "0")}`,
      spec: small,
    }));
    const bytes = encodeOrchestratorCommand({ type: "submitTasks", tasks });
    expect(bytes.length).toBeLessThan(MAX_COMMAND_BYTES / 2);
  });

  it("round-trips batch results, canonically", () => {
    const model = new OrchestratorModel();
    model.apply(
      {
        type: "registerWorker",
        nodeId: 1,
        capacity: { cpuMillis: 1000, memoryMb: 1024, diskGb: 10 },
        features: ["raw_exec"],
      },
      1,
    );
    const applied = model.apply(
      {
        type: "submitTasks",
        tasks: [
          { id: "a", spec: { ...spec, requiredFeatures: [] } },
          { id: "a", spec },
          { id: "b", spec },
        ],
      },
      2,
    );
    if (!applied.ok) throw new Error(applied.error.message);
    const value = applied.value;
    expect(value).toMatchObject({
      type: "batch",
      items: [
        { ok: true, id: "a", status: "assigned", nodeId: 1 },
        { ok: false, id: "a", code: "CONFLICT" },
        { ok: true, id: "b", status: "pending", nodeId: null },
      ],
    });
    const bytes = encodeOrchestratorResult(value);
    expect(decodeOrchestratorResult(bytes)).toEqual(value);
    expect(encodeOrchestratorResult(decodeOrchestratorResult(bytes))).toEqual(bytes);
  });

  it("refuses malformed result bytes with INVALID_ARGUMENT only", () => {
    const moved = `{"type":"worker","worker":${JSON.stringify(WORKER)},"moved":{"tasks":1,"vms":2}}`;
    expect(decodeOrchestratorResult(text(moved))).toMatchObject({ moved: { tasks: 1, vms: 2 } });
    for (const json of [
      "",
      "{}",
      '{"type":"task"}',
      '{"type":"deleted","x":1}',
      '{"type":"worker","worker":{}}',
      `{"type":"worker","worker":${JSON.stringify(WORKER)},"moved":{"tasks":1}}`,
      `{"type":"worker","worker":${JSON.stringify(WORKER)},"moved":{"tasks":-1,"vms":0}}`,
      `{"type":"worker","worker":${JSON.stringify(WORKER)},"moved":{"tasks":1,"vms":0,"x":1}}`,
      // A deadline only on a draining worker; drained and online agree with the flag.
      `{"type":"worker","worker":${JSON.stringify({ ...WORKER, status: "drained", drainDeadlineMs: 5 })}}`,
      `{"type":"worker","worker":${JSON.stringify({ ...WORKER, status: "online", drainDeadlineMs: 5 })}}`,
      `{"type":"worker","worker":${JSON.stringify({ ...WORKER, status: "drained", drain: false })}}`,
      `{"type":"worker","worker":${JSON.stringify({ ...WORKER, drainDeadlineMs: -1 })}}`,
    ]) {
      expect(thrownCode(() => decodeOrchestratorResult(text(json)))).toBe("INVALID_ARGUMENT");
    }
    const stdout = "x".repeat(MAX_TASK_OUTPUT_BYTES + 1);
    expect(
      thrownCode(() =>
        decodeOrchestratorResult(text(`{"type":"settings","settings":{"placement":"${stdout}"}}`)),
      ),
    ).toBe("INVALID_ARGUMENT");
  });
});
