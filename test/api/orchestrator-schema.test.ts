/**
 * The HTTP schemas of the orchestrator routes against the model's own reader
 * (`readOrchestratorCommand`): the API must never refuse what the model accepts, and a name or
 * id is addressable in a path exactly when the model accepts it.
 */
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import {
  MAX_RESOURCE_AMOUNT,
  MAX_TASK_ATTEMPTS,
  MAX_TASK_TIMEOUT_MS,
  MAX_VM_BACKOFF_MS,
  MAX_VM_RESTARTS,
  MAX_VM_VCPUS,
  readOrchestratorCommand,
  type OrchestratorCommand,
  type TaskSpec,
  type VmSpec,
} from "../../src/statemachine/orchestrator/index.js";
import { startFakeApi, type FakeApi } from "./orchestrator-fakes.js";

/** The model's verdict on a command: the canonical copy, or undefined if it refuses it. */
function modelAccepts(command: OrchestratorCommand): OrchestratorCommand | undefined {
  try {
    return readOrchestratorCommand(command);
  } catch {
    return undefined;
  }
}

const edgeInteger = (min: number, max: number): fc.Arbitrary<number> =>
  fc.oneof(fc.constantFrom(min, max), fc.integer({ min, max }));
const name = fc.oneof(
  fc.stringMatching(/^[A-Za-z0-9][A-Za-z0-9._:-]{0,12}$/),
  fc.string({ maxLength: 6 }),
);
const text = fc.oneof(fc.string({ maxLength: 12 }), fc.string({ unit: "grapheme", maxLength: 4 }));
const path = fc.oneof(fc.constant(""), fc.constantFrom("/boot/vmlinux", "/d.img", "rel/x"), text);
const resources = fc.record({
  cpuMillis: edgeInteger(0, MAX_RESOURCE_AMOUNT),
  memoryMb: edgeInteger(0, MAX_RESOURCE_AMOUNT),
  diskGb: edgeInteger(0, MAX_RESOURCE_AMOUNT),
});

const taskSpec: fc.Arbitrary<TaskSpec> = fc.record({
  command: text,
  args: fc.array(text, { maxLength: 4 }),
  env: fc.dictionary(
    fc.oneof(fc.stringMatching(/^[A-Za-z_][A-Za-z0-9_]{0,8}$/), fc.string({ maxLength: 4 })),
    text,
    { maxKeys: 4 },
  ),
  cwd: path,
  shell: fc.boolean(),
  resources,
  requiredFeatures: fc.array(name, { maxLength: 3 }),
  timeoutMs: edgeInteger(0, MAX_TASK_TIMEOUT_MS),
  maxAttempts: edgeInteger(1, MAX_TASK_ATTEMPTS),
});

const anyVmSpec: fc.Arbitrary<VmSpec> = fc.record({
  vcpus: edgeInteger(1, MAX_VM_VCPUS),
  memoryMb: edgeInteger(1, MAX_RESOURCE_AMOUNT),
  diskGb: edgeInteger(0, MAX_RESOURCE_AMOUNT),
  driver: fc.constantFrom("process" as const, "qemu" as const),
  command: fc.oneof(fc.constant(""), text),
  args: fc.oneof(fc.constant([]), fc.array(text, { maxLength: 3 })),
  kernel: path,
  initrd: fc.oneof(fc.constant(""), path),
  image: path,
  cmdline: fc.oneof(fc.constant(""), text),
  requiredFeatures: fc.array(name, { maxLength: 3 }),
  antiAffinityGroup: fc.oneof(fc.constant(""), name),
  restart: fc.record({
    mode: fc.constantFrom("never" as const, "on-failure" as const),
    maxRestarts: edgeInteger(0, MAX_VM_RESTARTS),
    backoffMs: edgeInteger(0, MAX_VM_BACKOFF_MS),
  }),
});

/** Mostly specs whose fields fit their driver (so the model accepts many), some arbitrary. */
const vmSpec: fc.Arbitrary<VmSpec> = fc.oneof(
  { weight: 1, arbitrary: anyVmSpec },
  {
    weight: 2,
    arbitrary: anyVmSpec.map((spec) => ({
      ...spec,
      driver: "process" as const,
      command: spec.command === "" ? "/bin/true" : spec.command,
      kernel: "",
      initrd: "",
      image: "",
      cmdline: "",
    })),
  },
  {
    weight: 2,
    arbitrary: anyVmSpec.map((spec) => ({
      ...spec,
      driver: "qemu" as const,
      command: "",
      args: [],
      kernel: spec.kernel === "" && spec.image === "" ? "/boot/vmlinux" : spec.kernel,
      initrd: spec.kernel === "" ? "" : spec.initrd,
      cmdline: spec.kernel === "" ? "" : spec.cmdline,
    })),
  },
);

describe("orchestrator schemas against the model's reader", () => {
  let api: FakeApi;
  beforeAll(async () => {
    api = await startFakeApi({ newTaskId: () => `t-${crypto.randomUUID()}` });
  });
  afterAll(async () => {
    await api.close();
  });

  async function inject(method: "GET" | "POST", url: string, body?: unknown) {
    const response = await api.server.app.inject({
      method,
      url,
      ...(body === undefined ? {} : { payload: body as Record<string, unknown> }),
    });
    return { status: response.statusCode, body: response.json<Record<string, unknown>>() };
  }

  it("accepts every task spec the model accepts, and stores the model's canonical spec", async () => {
    let accepted = 0;
    await fc.assert(
      fc.asyncProperty(taskSpec, async (spec) => {
        const canonical = modelAccepts({ type: "submitTask", id: "t", spec });
        if (canonical?.type !== "submitTask") return;
        accepted++;
        const response = await inject("POST", "/v1/tasks", { spec });
        expect(response.body).toMatchObject({ spec: canonical.spec });
        expect(response.status).toBe(200);
      }),
      { numRuns: 300 },
    );
    // The generator must reach the interesting side often enough to mean something. It accepts
    // 42 of 300 at the median (25 the fewest in 300 samples of 300, 28 at the first percentile):
    // the bound sits 4.5 standard deviations below, where 30 failed about one run in thirty.
    expect(accepted).toBeGreaterThan(15);
  });

  it("accepts every VM spec the model accepts", async () => {
    let accepted = 0;
    let index = 0;
    await fc.assert(
      fc.asyncProperty(
        vmSpec,
        fc.constantFrom("running" as const, "stopped" as const),
        async (spec, desired) => {
          const vmName = `vm-${index++}`;
          const canonical = modelAccepts({ type: "createVm", name: vmName, spec, desired });
          if (canonical?.type !== "createVm") return;
          accepted++;
          const response = await inject("POST", "/v1/vms", { name: vmName, spec, desired });
          expect(response.body).toMatchObject({ name: vmName, spec: canonical.spec, desired });
          expect(response.status).toBe(200);
        },
      ),
      { numRuns: 300 },
    );
    expect(accepted).toBeGreaterThan(60);
  });

  it("addresses a VM name or task id in a path exactly when the model accepts it", async () => {
    const candidate = fc.oneof(
      fc.stringMatching(/^[a-z0-9-]{1,64}$/),
      fc.stringMatching(/^[A-Za-z0-9._-]{1,130}$/),
      fc.string({ minLength: 1, maxLength: 8 }),
    );
    await fc.assert(
      // "." and ".." are dot segments: URL parsing removes them before any route sees them.
      fc.asyncProperty(
        candidate.filter((value) => value !== "." && value !== ".."),
        async (value) => {
          const encoded = encodeURIComponent(value);
          const vmValid = modelAccepts({ type: "deleteVm", name: value }) !== undefined;
          const vm = await inject("GET", `/v1/vms/${encoded}`);
          expect({ value, status: vm.status }).toEqual({ value, status: vmValid ? 404 : 400 });
          const taskValid = modelAccepts({ type: "cancelTask", id: value }) !== undefined;
          const task = await inject("GET", `/v1/tasks/${encoded}`);
          expect({ value, status: task.status }).toEqual({ value, status: taskValid ? 404 : 400 });
        },
      ),
      { numRuns: 300 },
    );
  });
});
