import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { BlixardClient } from "../../src/client/index.js";
import { call, until } from "./harness.js";
import { FakeOrchestratorNode, startFakeApi, type FakeApi } from "./orchestrator-fakes.js";

const PROCESS_VM = { driver: "process", command: "/usr/bin/sleep", args: ["infinity"] };

describe("orchestrator API over a fake node", () => {
  let api: FakeApi;
  beforeAll(async () => {
    api = await startFakeApi();
    api.node.addWorker(1, { features: ["ssd"] });
    api.node.addWorker(2);
  });
  afterAll(async () => {
    await api.close();
  });

  it("submits a task with every default filled in and answers with its new id", async () => {
    const submitted = await call(api.url, "POST", "/v1/tasks", {
      body: { spec: { command: "echo", args: ["hello"] } },
    });
    expect(submitted.status).toBe(200);
    expect(submitted.body).toMatchObject({
      id: expect.stringMatching(/^task-\d{4}$/),
      status: "assigned",
      nodeId: 1,
      attempts: 1,
      result: null,
      spec: {
        command: "echo",
        args: ["hello"],
        env: {},
        cwd: "",
        shell: false,
        resources: { cpuMillis: 1000, memoryMb: 256, diskGb: 0 },
        requiredFeatures: [],
        timeoutMs: 0,
        maxAttempts: 3,
      },
    });
    const proposed = api.node.proposals.at(-1)?.command;
    expect(proposed).toEqual({
      type: "submitTask",
      id: submitted.body.id,
      spec: submitted.body.spec,
    });
    const got = await call(api.url, "GET", `/v1/tasks/${submitted.body.id}`);
    expect(got.status).toBe(200);
    expect(got.body).toEqual(submitted.body);
  });

  it("submits a batch in one proposal and answers with one outcome per spec, in order", async () => {
    const before = api.node.proposals.length;
    const answer = await call(api.url, "POST", "/v1/tasks/batch", {
      body: {
        specs: [
          { command: "echo", args: ["one"] },
          { command: "echo", args: ["two"] },
        ],
      },
    });
    expect(answer.status).toBe(200);
    expect(api.node.proposals.length).toBe(before + 1);
    const proposed = api.node.proposals.at(-1)?.command;
    expect(proposed?.type).toBe("submitTasks");
    const tasks = proposed?.type === "submitTasks" ? proposed.tasks : [];
    expect(tasks.map((task) => task.spec.args)).toEqual([["one"], ["two"]]);
    expect(answer.body).toEqual({
      items: tasks.map((task) => ({ ok: true, id: task.id, status: "assigned", nodeId: 1 })),
    });
    const got = await call(api.url, "GET", `/v1/tasks/${tasks[1]?.id ?? ""}`);
    expect(got.body).toMatchObject({ status: "assigned", spec: { args: ["two"] } });
  });

  it("refuses a batch with any bad spec, or none, with 400 and proposes nothing", async () => {
    const before = api.node.proposals.length;
    for (const specs of [[{ command: "echo" }, { command: "" }], []]) {
      const answer = await call(api.url, "POST", "/v1/tasks/batch", { body: { specs } });
      expect(answer.status).toBe(400);
      expect(answer.body.code).toBe("INVALID_ARGUMENT");
    }
    expect(api.node.proposals.length).toBe(before);
  });

  it("keeps every field a caller gives", async () => {
    const spec = {
      command: "make",
      args: ["-j4", "all"],
      env: { CC: "clang", EMPTY: "" },
      cwd: "/srv/build",
      resources: { cpuMillis: 2500, memoryMb: 1024, diskGb: 5 },
      requiredFeatures: ["ssd"],
      timeoutMs: 60_000,
      maxAttempts: 1,
    };
    const submitted = await call(api.url, "POST", "/v1/tasks", { body: { spec } });
    expect(submitted.status).toBe(200);
    expect(submitted.body.spec).toEqual({ ...spec, shell: false });
  });

  it("refuses bad specs with 400 INVALID_ARGUMENT naming the field, and proposes nothing", async () => {
    const before = api.node.proposals.length;
    const cases: [string, string, unknown, RegExp][] = [
      ["POST", "/v1/tasks", { spec: { args: ["x"] } }, /command/],
      ["POST", "/v1/tasks", { spec: { command: "" } }, /command/],
      ["POST", "/v1/tasks", { spec: { command: "x", resources: { memoryMb: -1 } } }, /memoryMb/],
      ["POST", "/v1/tasks", { spec: { command: "x", resources: { cpuMillis: 0.5 } } }, /cpuMillis/],
      ["POST", "/v1/tasks", { spec: { command: "x", resources: { diskGb: -3 } } }, /diskGb/],
      ["POST", "/v1/tasks", { spec: { command: "x", maxAttempts: 0 } }, /maxAttempts/],
      ["POST", "/v1/tasks", { spec: { command: "x", timeoutMs: -1 } }, /timeoutMs/],
      ["POST", "/v1/tasks", { spec: { command: "x", env: { "1BAD": "v" } } }, /env/],
      ["POST", "/v1/tasks", { spec: { command: "x", env: { A: 1 } } }, /env/],
      ["POST", "/v1/tasks", { spec: { command: "x", cwd: 7 } }, /cwd/],
      ["POST", "/v1/tasks", { spec: { command: "x", shell: "yes" } }, /shell/],
      [
        "POST",
        "/v1/tasks",
        { spec: { command: "x", requiredFeatures: ["needs space"] } },
        /requiredFeatures/,
      ],
      [
        "POST",
        "/v1/tasks",
        { spec: { command: "x", timeoutMs: 2 ** 31 } },
        /timeoutMs must be <= 2147483647/,
      ],
      ["POST", "/v1/tasks", { spec: { command: "x", surprise: 1 } }, /additional properties/],
      ["POST", "/v1/tasks", { spec: { command: "a\u0000b" } }, /command/],
      ["POST", "/v1/tasks", { command: "x" }, /spec/],
      ["POST", "/v1/vms", { name: "web", spec: { driver: "firecracker" } }, /driver/],
      ["POST", "/v1/vms", { name: "web", spec: {} }, /driver/],
      ["POST", "/v1/vms", { name: "Web_1", spec: PROCESS_VM }, /name/],
      ["POST", "/v1/vms", { name: "web", spec: { ...PROCESS_VM, memoryMb: -1 } }, /memoryMb/],
      ["POST", "/v1/vms", { name: "web", spec: { ...PROCESS_VM, vcpus: 0 } }, /vcpus/],
      [
        "POST",
        "/v1/vms",
        { name: "web", spec: { driver: "process" } },
        /createVm\.spec\.command is required by the process driver/,
      ],
      [
        "POST",
        "/v1/vms",
        { name: "web", spec: { ...PROCESS_VM, kernel: "/k" } },
        /createVm\.spec: kernel is a qemu setting/,
      ],
      [
        "POST",
        "/v1/vms",
        { name: "web", spec: { driver: "qemu" } },
        /createVm\.spec: the qemu driver needs a kernel .* or a disk image/,
      ],
      [
        "POST",
        "/v1/vms",
        { name: "web", spec: { driver: "qemu", image: "/d.img", command: "/bin/x" } },
        /createVm\.spec: command is for the process driver/,
      ],
      [
        "POST",
        "/v1/vms",
        { name: "web", spec: { driver: "qemu", image: "/d.img", initrd: "/i" } },
        /initrd and cmdline need a kernel/,
      ],
      [
        "POST",
        "/v1/vms",
        { name: "web", spec: { ...PROCESS_VM, restart: { mode: "always" } } },
        /mode/,
      ],
      [
        "POST",
        "/v1/vms",
        { name: "web", spec: { ...PROCESS_VM, antiAffinityGroup: "A B" } },
        /antiAffinityGroup/,
      ],
      ["POST", "/v1/vms", { name: "web", spec: PROCESS_VM, desired: "paused" }, /desired/],
      ["PUT", "/v1/settings/orchestrator", { placement: "random" }, /placement/],
    ];
    for (const [method, path, body, field] of cases) {
      const response = await call(api.url, method, path, { body });
      expect({ body, status: response.status, code: response.body.code }).toEqual({
        body,
        status: 400,
        code: "INVALID_ARGUMENT",
      });
      expect(response.body.message).toMatch(field);
    }
    expect(api.node.proposals.length).toBe(before);
  });

  it("refuses specs over the model's size limits with 413 TOO_LARGE naming the field", async () => {
    const before = api.node.proposals.length;
    const env = Object.fromEntries(
      Array.from({ length: 20 }, (_, i) => [`VAR_${i}`, "x".repeat(4000)]),
    );
    const cases: [unknown, RegExp][] = [
      [{ spec: { command: "x", env } }, /submitTask\.spec holds \d+ bytes of strings/],
      [
        { spec: { command: "x", args: Array.from({ length: 257 }, () => "a") } },
        /args has 257 items/,
      ],
      [{ spec: { command: "x".repeat(4097) } }, /submitTask\.spec\.command is 4097 bytes/],
      [{ spec: { command: "x", requiredFeatures: ["f".repeat(65)] } }, /requiredFeatures\[0\]/],
    ];
    for (const [body, message] of cases) {
      const response = await call(api.url, "POST", "/v1/tasks", { body });
      expect(response.status).toBe(413);
      expect(response.body.code).toBe("TOO_LARGE");
      expect(response.body.message).toMatch(message);
    }
    expect(api.node.proposals.length).toBe(before);
  });

  it("refuses bad path and query values with 400", async () => {
    for (const path of [
      "/v1/tasks/has%20space",
      "/v1/tasks?status=done",
      "/v1/tasks?limit=0",
      "/v1/tasks?limit=1001",
      "/v1/tasks?node=abc",
      "/v1/tasks/task-0001/wait?timeoutMs=0",
      "/v1/tasks/task-0001/wait?timeoutMs=700000",
      "/v1/workers/0",
      "/v1/vms/UPPER",
      "/v1/vms?consistency=eventual",
    ]) {
      const response = await call(api.url, "GET", path);
      expect({ path, status: response.status, code: response.body.code }).toEqual({
        path,
        status: 400,
        code: "INVALID_ARGUMENT",
      });
    }
  });

  it("answers 404 NOT_FOUND for unknown tasks, VMs and workers", async () => {
    const cases: [string, string][] = [
      ["GET", "/v1/tasks/nope"],
      ["GET", "/v1/tasks/nope/logs"],
      ["GET", "/v1/tasks/nope/wait?timeoutMs=10"],
      ["POST", "/v1/tasks/nope/cancel"],
      ["GET", "/v1/vms/nope"],
      ["POST", "/v1/vms/nope/start"],
      ["DELETE", "/v1/vms/nope"],
      ["GET", "/v1/workers/99"],
      ["POST", "/v1/workers/99/drain"],
    ];
    for (const [method, path] of cases) {
      const response = await call(api.url, method, path);
      expect({ path, status: response.status, code: response.body.code }).toEqual({
        path,
        status: 404,
        code: "NOT_FOUND",
      });
    }
  });

  it("creates, reads, stops, starts and deletes a VM; a duplicate name is 409 CONFLICT", async () => {
    const created = await call(api.url, "POST", "/v1/vms", {
      body: { name: "web-1", spec: PROCESS_VM },
    });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({
      name: "web-1",
      desired: "running",
      status: "pending",
      spec: {
        driver: "process",
        vcpus: 1,
        memoryMb: 256,
        diskGb: 0,
        command: "/usr/bin/sleep",
        args: ["infinity"],
        kernel: "",
        image: "",
        requiredFeatures: [],
        antiAffinityGroup: "",
        restart: { mode: "on-failure", maxRestarts: 5, backoffMs: 1000 },
      },
    });
    const duplicate = await call(api.url, "POST", "/v1/vms", {
      body: { name: "web-1", spec: PROCESS_VM },
    });
    expect(duplicate.status).toBe(409);
    expect(duplicate.body.code).toBe("CONFLICT");
    expect(duplicate.body.message).toContain("web-1");

    const stopped = await call(api.url, "POST", "/v1/vms/web-1/stop");
    expect(stopped.body.desired).toBe("stopped");
    const started = await call(api.url, "POST", "/v1/vms/web-1/start");
    expect(started.body.desired).toBe("running");
    const list = await call(api.url, "GET", "/v1/vms");
    expect(list.body.vms.map((v: { name: string }) => v.name)).toContain("web-1");
    const deleted = await call(api.url, "DELETE", "/v1/vms/web-1");
    expect(deleted.body).toEqual({ deleted: true, name: "web-1" });
    expect((await call(api.url, "GET", "/v1/vms/web-1")).status).toBe(404);
  });

  it("creates a stopped qemu VM from a kernel", async () => {
    const created = await call(api.url, "POST", "/v1/vms", {
      body: {
        name: "micro",
        desired: "stopped",
        spec: {
          driver: "qemu",
          vcpus: 2,
          memoryMb: 512,
          kernel: "/var/lib/blixard/vmlinux",
          initrd: "/var/lib/blixard/initrd",
          cmdline: "console=ttyS0",
          requiredFeatures: ["kvm"],
          antiAffinityGroup: "edge",
          restart: { mode: "never" },
        },
      },
    });
    expect(created.status).toBe(200);
    expect(created.body).toMatchObject({
      desired: "stopped",
      spec: { driver: "qemu", command: "", args: [], restart: { mode: "never", maxRestarts: 5 } },
    });
  });

  it("lists workers, drains and undrains one", async () => {
    const workers = await call(api.url, "GET", "/v1/workers?consistency=stale");
    expect(workers.status).toBe(200);
    expect(workers.body.workers.map((w: { nodeId: number }) => w.nodeId)).toEqual([1, 2]);
    expect(api.node.barriers.at(-1)).toBe("stale");
    const drained = await call(api.url, "POST", "/v1/workers/2/drain");
    expect(drained.body).toMatchObject({
      nodeId: 2,
      status: "drained",
      moved: { tasks: 0, vms: 0 },
    });
    expect(api.node.proposals.at(-1)?.command).toEqual({
      type: "setWorkerDrain",
      nodeId: 2,
      draining: true,
    });
    const one = await call(api.url, "GET", "/v1/workers/2");
    expect(one.body.status).toBe("drained");
    // A deadline rides in the query string into the command; bad ones never reach the log.
    await call(api.url, "POST", "/v1/workers/2/drain?deadlineMs=300000");
    expect(api.node.proposals.at(-1)?.command).toEqual({
      type: "setWorkerDrain",
      nodeId: 2,
      draining: true,
      deadlineMs: 300_000,
    });
    const proposed = api.node.proposals.length;
    for (const query of ["deadlineMs=-1", "deadlineMs=5m", `deadlineMs=${2 ** 40}`, "x=1"]) {
      const bad = await call(api.url, "POST", `/v1/workers/2/drain?${query}`);
      expect(bad.status, query).toBe(400);
      expect(bad.body.code, query).toBe("INVALID_ARGUMENT");
    }
    expect(api.node.proposals).toHaveLength(proposed);
    const undrained = await call(api.url, "POST", "/v1/workers/2/undrain");
    expect(undrained.body.status).toBe("online");
  });

  it("reads and replaces the settings", async () => {
    expect((await call(api.url, "GET", "/v1/settings/orchestrator")).body).toEqual({
      placement: "binpack",
    });
    const put = await call(api.url, "PUT", "/v1/settings/orchestrator", {
      body: { placement: "spread" },
    });
    expect(put.body).toEqual({ placement: "spread" });
    expect((await call(api.url, "GET", "/v1/settings/orchestrator")).body).toEqual({
      placement: "spread",
    });
  });

  it("documents every orchestrator route in /openapi.json", async () => {
    const doc = (await call(api.url, "GET", "/openapi.json")).body;
    const expected: [string, string][] = [
      ["/v1/workers", "get"],
      ["/v1/workers/{id}", "get"],
      ["/v1/workers/{id}/drain", "post"],
      ["/v1/workers/{id}/undrain", "post"],
      ["/v1/tasks", "post"],
      ["/v1/tasks/batch", "post"],
      ["/v1/tasks", "get"],
      ["/v1/tasks/{id}", "get"],
      ["/v1/tasks/{id}/cancel", "post"],
      ["/v1/tasks/{id}/wait", "get"],
      ["/v1/tasks/{id}/logs", "get"],
      ["/v1/vms", "post"],
      ["/v1/vms", "get"],
      ["/v1/vms/{name}", "get"],
      ["/v1/vms/{name}/start", "post"],
      ["/v1/vms/{name}/stop", "post"],
      ["/v1/vms/{name}", "delete"],
      ["/v1/settings/orchestrator", "get"],
      ["/v1/settings/orchestrator", "put"],
    ];
    for (const [path, method] of expected) {
      expect(doc.paths[path]?.[method], `${method} ${path}`).toBeDefined();
    }
    const submit = doc.paths["/v1/tasks"].post;
    const specSchema = submit.requestBody.content["application/json"].schema.properties.spec;
    expect(specSchema.required).toEqual(["command"]);
    expect(specSchema.properties.maxAttempts).toMatchObject({ minimum: 1 });
    expect(submit.parameters.map((p: { name: string }) => p.name)).toContain("blixard-client-id");
    const vmSpec =
      doc.paths["/v1/vms"].post.requestBody.content["application/json"].schema.properties.spec;
    expect(vmSpec.properties.driver.enum).toEqual(["process", "qemu"]);
    expect(doc.paths["/v1/vms"].post.responses["409"].description).toContain("CONFLICT");
  });
});

describe("VM migration", () => {
  let api: FakeApi;
  let gateOpen = true;
  beforeAll(async () => {
    api = await startFakeApi({ acceptsBatchCommands: () => gateOpen });
    api.node.addWorker(1, { features: ["qemu"] });
    api.node.addWorker(2, { features: ["qemu"] });
    await call(api.url, "POST", "/v1/vms", {
      body: { name: "mover", spec: { driver: "qemu", kernel: "/boot/vmlinuz" } },
    });
  });
  afterAll(async () => {
    await api.close();
  });

  it("proposes migrateVm with the target, or none, and answers with the VM migrating", async () => {
    const named = await call(api.url, "POST", "/v1/vms/mover/migrate", {
      body: { targetNodeId: 2 },
    });
    expect(named.status).toBe(200);
    expect(named.body).toMatchObject({ status: "migrating", migration: { targetNodeId: 2 } });
    expect(api.node.proposals.at(-1)?.command).toEqual({
      type: "migrateVm",
      name: "mover",
      targetNodeId: 2,
    });
    const picked = await call(api.url, "POST", "/v1/vms/mover/migrate", { body: {} });
    expect(picked.status).toBe(200);
    expect(api.node.proposals.at(-1)?.command).toEqual({ type: "migrateVm", name: "mover" });
    const client = new BlixardClient({ endpoints: [api.url.href] });
    const viaSdk = await client.orchestrator.migrateVm("mover", { to: 1 });
    expect(viaSdk.migration?.targetNodeId).toBe(1);
  });

  it("refuses a bad target with 400 and an unknown VM with 404, proposing nothing bad", async () => {
    const before = api.node.proposals.length;
    const zero = await call(api.url, "POST", "/v1/vms/mover/migrate", {
      body: { targetNodeId: 0 },
    });
    expect(zero.status).toBe(400);
    expect(api.node.proposals.length).toBe(before);
    const unknown = await call(api.url, "POST", "/v1/vms/nope/migrate", { body: {} });
    expect(unknown).toMatchObject({ status: 404, body: { code: "NOT_FOUND" } });
  });

  it("refuses with INVALID_ARGUMENT, proposing nothing, until every member can apply it", async () => {
    const before = api.node.proposals.length;
    gateOpen = false;
    try {
      const answer = await call(api.url, "POST", "/v1/vms/mover/migrate", { body: {} });
      expect(answer).toMatchObject({
        status: 400,
        body: { code: "INVALID_ARGUMENT", message: expect.stringContaining("rolling upgrade") },
      });
      expect(api.node.proposals.length).toBe(before);
    } finally {
      gateOpen = true;
    }
  });

  it("documents the route in /openapi.json", async () => {
    const doc = (await call(api.url, "GET", "/openapi.json")).body;
    const route = doc.paths["/v1/vms/{name}/migrate"]?.post;
    expect(route).toBeDefined();
    const body = route.requestBody.content["application/json"].schema;
    expect(body.properties.targetNodeId).toMatchObject({ minimum: 1 });
  });
});

describe("agent reports", () => {
  let api: FakeApi;
  let batchesTaken = true;
  beforeAll(async () => {
    api = await startFakeApi({ acceptsBatchCommands: () => batchesTaken });
    api.node.addWorker(1);
  });
  afterAll(async () => {
    await api.close();
  });

  const started = (id: string, attempt = 1) => ({ type: "taskStarted", id, nodeId: 1, attempt });
  async function submit(): Promise<string> {
    const answer = await call(api.url, "POST", "/v1/tasks", { body: { spec: { command: "x" } } });
    return answer.body.id as string;
  }

  it("answers a single report with accepted only", async () => {
    const id = await submit();
    const answer = await call(api.url, "POST", "/v1/agent/reports", {
      body: { command: started(id) },
    });
    expect(answer).toMatchObject({ status: 200, body: { accepted: true } });
    expect(answer.body.items).toBeUndefined();
  });

  it("applies a batch in one proposal and answers one outcome per report, in order", async () => {
    const [a, b] = [await submit(), await submit()];
    const before = api.node.proposals.length;
    const reports = [started(a), started("no-such-task"), started(b, 7)];
    const answer = await call(api.url, "POST", "/v1/agent/reports", {
      body: { command: { type: "agentReports", nodeId: 1, reports } },
    });
    expect(answer.status).toBe(200);
    expect(api.node.proposals.length).toBe(before + 1);
    expect(api.node.proposals.at(-1)?.command).toMatchObject({ type: "agentReports", reports });
    expect(answer.body).toEqual({
      accepted: true,
      items: [
        { ok: true, id: a, status: "running", nodeId: 1 },
        { ok: false, id: "no-such-task", code: "NOT_FOUND", message: expect.any(String) },
        { ok: false, id: b, code: "CONFLICT", message: expect.stringContaining("attempt") },
      ],
    });
    const got = await call(api.url, "GET", `/v1/tasks/${b}`);
    expect(got.body).toMatchObject({ status: "assigned" });
  });

  it("refuses a batch with INVALID_ARGUMENT while the cluster does not take batches, proposing nothing", async () => {
    const id = await submit();
    const before = api.node.proposals.length;
    batchesTaken = false;
    try {
      const answer = await call(api.url, "POST", "/v1/agent/reports", {
        body: { command: { type: "agentReports", nodeId: 1, reports: [started(id)] } },
      });
      expect(answer).toMatchObject({
        status: 400,
        body: { code: "INVALID_ARGUMENT", message: expect.stringContaining("on its own") },
      });
      expect(api.node.proposals.length).toBe(before);
      // The same report on its own still goes through.
      const single = await call(api.url, "POST", "/v1/agent/reports", {
        body: { command: started(id) },
      });
      expect(single.status).toBe(200);
    } finally {
      batchesTaken = true;
    }
  });

  it("refuses a batch submit with INVALID_ARGUMENT while the cluster does not take batches", async () => {
    const before = api.node.proposals.length;
    batchesTaken = false;
    try {
      const answer = await call(api.url, "POST", "/v1/tasks/batch", {
        body: { specs: [{ command: "x" }] },
      });
      expect(answer).toMatchObject({
        status: 400,
        body: { code: "INVALID_ARGUMENT", message: expect.stringContaining("one by one") },
      });
      expect(api.node.proposals.length).toBe(before);
    } finally {
      batchesTaken = true;
    }
    const taken = await call(api.url, "POST", "/v1/tasks/batch", {
      body: { specs: [{ command: "x" }] },
    });
    expect(taken.status).toBe(200);
  });

  it("documents the batch outcomes in /openapi.json", async () => {
    const doc = (await call(api.url, "GET", "/openapi.json")).body;
    const route = doc.paths["/v1/agent/reports"].post;
    expect(route.summary ?? route.description).toContain("agentReports");
    const schema = route.responses["200"].content["application/json"].schema;
    expect(schema.properties.items.items.anyOf).toHaveLength(2);
  });
});

describe("task listing, waiting and logs", () => {
  let api: FakeApi;
  beforeEach(async () => {
    api = await startFakeApi({ requestTimeoutMs: 2000 });
    api.node.addWorker(1);
    return () => api.close();
  });

  async function submit(command = "true"): Promise<string> {
    const response = await call(api.url, "POST", "/v1/tasks", { body: { spec: { command } } });
    expect(response.status).toBe(200);
    return response.body.id as string;
  }

  it("pages through tasks in id order, and filters by status and node", async () => {
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await submit());
    api.node.finish(ids[1]!, { status: "succeeded", result: { exitCode: 0 } });
    const first = await call(api.url, "GET", "/v1/tasks?limit=2");
    expect(first.body.tasks.map((t: { id: string }) => t.id)).toEqual(ids.slice(0, 2));
    expect(first.body).toMatchObject({ more: true, nextAfter: ids[1] });
    const second = await call(api.url, "GET", `/v1/tasks?limit=2&after=${first.body.nextAfter}`);
    expect(second.body.tasks.map((t: { id: string }) => t.id)).toEqual(ids.slice(2, 4));
    const last = await call(api.url, "GET", `/v1/tasks?limit=2&after=${second.body.nextAfter}`);
    expect(last.body.tasks.map((t: { id: string }) => t.id)).toEqual([ids[4]]);
    expect(last.body.more).toBe(false);
    expect(last.body.nextAfter).toBeUndefined();
    // Exactly a full page and nothing after it: not "more".
    const exact = await call(api.url, "GET", `/v1/tasks?limit=1&after=${ids[3]}`);
    expect(exact.body).toMatchObject({ more: false });
    const succeeded = await call(api.url, "GET", "/v1/tasks?status=succeeded");
    expect(succeeded.body.tasks.map((t: { id: string }) => t.id)).toEqual([ids[1]]);
    const onNode2 = await call(api.url, "GET", "/v1/tasks?node=2");
    expect(onNode2.body.tasks).toEqual([]);
  });

  it("answers a wait with done: false when the long-poll runs out", async () => {
    const id = await submit();
    const response = await call(api.url, "GET", `/v1/tasks/${id}/wait?timeoutMs=30`);
    expect(response.status).toBe(200);
    expect(response.body).toMatchObject({ done: false, task: { id, status: "assigned" } });
    expect(api.node.listenerCount).toBe(0);
    expect(api.service.waiters).toBe(0);
  });

  it("answers a wait before the request deadline when the asked timeout is longer", async () => {
    const id = await submit();
    // The node's request deadline is 2 s; the wait asks for 60 s and must not turn into a 504.
    const response = await call(api.url, "GET", `/v1/tasks/${id}/wait?timeoutMs=60000`);
    expect(response.status).toBe(200);
    expect(response.body.done).toBe(false);
  });

  it("answers a waiting request as soon as the task ends, and then serves its logs", async () => {
    const id = await submit("make");
    const pending = call(api.url, "GET", `/v1/tasks/${id}/wait?timeoutMs=60000`);
    await until(() => (api.service.waiters === 1 ? true : undefined), "the wait to begin");
    const logsBefore = await call(api.url, "GET", `/v1/tasks/${id}/logs`);
    expect(logsBefore.body).toMatchObject({ available: false, stdout: "", status: "assigned" });
    api.node.markRunning(id);
    api.node.finish(id, {
      status: "failed",
      result: { exitCode: 2, stdout: "out\n", stderr: "err\n", stderrTruncated: true },
    });
    const response = await pending;
    expect(response.body).toMatchObject({ done: true, task: { status: "failed" } });
    expect(response.body.task.result).toMatchObject({ exitCode: 2, stdout: "out\n" });
    const logs = await call(api.url, "GET", `/v1/tasks/${id}/logs`);
    expect(logs.body).toEqual({
      id,
      status: "failed",
      available: true,
      stdout: "out\n",
      stderr: "err\n",
      stdoutTruncated: false,
      stderrTruncated: true,
    });
  });

  it("cancels a placed task by flagging it; cancelling an ended one is CONFLICT", async () => {
    const id = await submit();
    const cancelled = await call(api.url, "POST", `/v1/tasks/${id}/cancel`);
    expect(cancelled.body).toMatchObject({ id, status: "assigned", cancelRequested: true });
    api.node.finish(id, { status: "cancelled" });
    const again = await call(api.url, "POST", `/v1/tasks/${id}/cancel`);
    expect(again.status).toBe(409);
  });

  it("applies a retried submit with the same session once: the same task comes back", async () => {
    const headers = { "blixard-client-id": "cli-session-a", "blixard-sequence": "1" };
    const body = { spec: { command: "echo", args: ["once"] } };
    const first = await call(api.url, "POST", "/v1/tasks", { body, headers });
    const retry = await call(api.url, "POST", "/v1/tasks", { body, headers });
    expect(retry.body).toEqual(first.body);
    const all = await call(api.url, "GET", "/v1/tasks");
    expect(
      all.body.tasks.filter((t: { spec: { args: string[] } }) => t.spec.args[0] === "once"),
    ).toHaveLength(1);
    const sessions = api.node.proposals.slice(-2).map((p) => p.options.session);
    expect(sessions).toEqual([
      { clientId: "cli-session-a", sequence: 1, ackedBelow: 1 },
      { clientId: "cli-session-a", sequence: 1, ackedBelow: 1 },
    ]);
  });
});

describe("forwarding orchestrator writes from a follower", () => {
  let leader: FakeApi;
  let follower: FakeApi;
  beforeAll(async () => {
    leader = await startFakeApi({ node: new FakeOrchestratorNode(1) });
    leader.node.addWorker(1);
    const followerNode = new FakeOrchestratorNode(2);
    followerNode.role = "follower";
    followerNode.leaderId = 1;
    follower = await startFakeApi({
      node: followerNode,
      leaderApiAddress: (id) => (id === 1 ? leader.url : undefined),
    });
  });
  afterAll(async () => {
    await follower.close();
    await leader.close();
  });

  it("forwards a submit with its session headers and answers with the leader's result", async () => {
    const response = await call(follower.url, "POST", "/v1/tasks", {
      body: { spec: { command: "uptime" } },
      headers: { "blixard-client-id": "fwd", "blixard-sequence": "1" },
    });
    expect(response.status).toBe(200);
    expect(response.headers.get("blixard-leader-address")).toBe(leader.url.href);
    expect(response.body.spec.command).toBe("uptime");
    expect(leader.node.proposals.at(-1)?.options.session).toEqual({
      clientId: "fwd",
      sequence: 1,
      ackedBelow: 1,
    });
    expect(follower.node.proposals.at(-1)?.command.type).toBe("submitTask");
  });

  it("forwards VM, worker and settings writes, and errors come back as the leader said", async () => {
    const created = await call(follower.url, "POST", "/v1/vms", {
      body: { name: "fwd-vm", spec: PROCESS_VM },
    });
    expect(created.status).toBe(200);
    const duplicate = await call(follower.url, "POST", "/v1/vms", {
      body: { name: "fwd-vm", spec: PROCESS_VM },
    });
    expect(duplicate.status).toBe(409);
    expect((await call(follower.url, "POST", "/v1/workers/1/drain")).body.status).toBe("draining");
    expect((await call(follower.url, "DELETE", "/v1/vms/fwd-vm")).status).toBe(200);
    expect(
      (
        await call(follower.url, "PUT", "/v1/settings/orchestrator", {
          body: { placement: "spread" },
        })
      ).body,
    ).toEqual({ placement: "spread" });
  });

  it("serves linearizable reads locally and forwards lease reads", async () => {
    const local = await call(follower.url, "GET", "/v1/vms");
    expect(local.status).toBe(200);
    expect(local.headers.get("blixard-leader-address")).toBeNull();
    const lease = await call(follower.url, "GET", "/v1/workers?consistency=lease");
    expect(lease.status).toBe(200);
    expect(lease.headers.get("blixard-leader-address")).toBe(leader.url.href);
    expect(lease.body.workers.map((w: { nodeId: number }) => w.nodeId)).toEqual([1]);
  });

  it("answers 421 NOT_LEADER with a hint when the leader's address is unknown", async () => {
    follower.node.leaderId = 7;
    try {
      const response = await call(follower.url, "POST", "/v1/tasks", {
        body: { spec: { command: "x" } },
      });
      expect(response.status).toBe(421);
      expect(response.body).toMatchObject({ code: "NOT_LEADER", leaderHint: { id: 7 } });
    } finally {
      follower.node.leaderId = 1;
    }
  });
});

describe("batch submit through the client", () => {
  let api: FakeApi;
  beforeAll(async () => {
    api = await startFakeApi();
    api.node.addWorker(1);
  });
  afterAll(async () => {
    await api.close();
  });

  it("submits many specs in one proposal and reads each outcome", async () => {
    const client = new BlixardClient({ endpoints: [api.url.href] });
    const before = api.node.proposals.length;
    const answer = await client.orchestrator.submitTasks(
      Array.from({ length: 5 }, (_, i) => ({ command: "echo", args: [String(i)] })),
    );
    expect(api.node.proposals.length).toBe(before + 1);
    expect(answer.items).toHaveLength(5);
    for (const [i, item] of answer.items.entries()) {
      expect(item).toMatchObject({ ok: true, status: "assigned", nodeId: 1 });
      const task = await client.orchestrator.getTask(item.id);
      expect(task.spec.args).toEqual([String(i)]);
    }
  });

  it("refuses a bad spec in the batch with InvalidArgumentError", async () => {
    const client = new BlixardClient({ endpoints: [api.url.href] });
    await expect(
      client.orchestrator.submitTasks([{ command: "echo" }, { command: "x", maxAttempts: 0 }]),
    ).rejects.toMatchObject({ code: "INVALID_ARGUMENT" });
  });
});
