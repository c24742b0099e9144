/**
 * The VM commands of the orchestrator model: create and validation, placement with features and
 * anti-affinity, desired state, the agent's observations, delete; and settings. Each test checks
 * the model's invariants at the end.
 */
import { afterEach, describe, expect, it } from "vitest";
import type { VmHealthCheck, VmSpec } from "../../../src/statemachine/orchestrator/types.js";
import { Harness, checkInvariants, qemuSpec, res, vmSpec } from "./fixtures.js";

let h: Harness;
afterEach(() => checkInvariants(h.model));

function observe(
  name: string,
  nodeId: number,
  status: "starting" | "running" | "unhealthy" | "stopping" | "stopped" | "failed",
  restarts = 0,
  error = "",
) {
  return { type: "vmObserved", name, nodeId, status, restarts, error } as const;
}

/** A health check: no probe unless given, default timings. */
function health(overrides: Partial<VmHealthCheck>): VmHealthCheck {
  return {
    tcpPort: 0,
    command: "",
    intervalMs: 10_000,
    timeoutMs: 2000,
    failureThreshold: 3,
    ...overrides,
  };
}

describe("createVm", () => {
  it("places a VM desired running: scheduled, holding vcpus × 1000 millicores, memory and disk", () => {
    h = new Harness();
    h.register(1, res(4000, 4096, 100));
    const vm = h.createVm("web-1", vmSpec({ vcpus: 2, memoryMb: 1024, diskGb: 10 }));
    expect(vm).toMatchObject({
      status: "scheduled",
      desired: "running",
      nodeId: 1,
      restarts: 0,
      lastError: "",
      pendingReason: "",
    });
    expect(h.worker(1).allocated).toEqual(res(2000, 1024, 10));
  });

  it("creates a VM desired stopped without placing it", () => {
    h = new Harness();
    h.register(1, res(4000, 4096));
    expect(h.createVm("v", vmSpec(), "stopped")).toMatchObject({ status: "stopped", nodeId: null });
    expect(h.worker(1).allocated).toEqual(res(0, 0, 0));
  });

  it("refuses a duplicate name with CONFLICT", () => {
    h = new Harness();
    h.createVm("v");
    const error = h.err({ type: "createVm", name: "v", spec: vmSpec(), desired: "running" });
    expect(error).toMatchObject({ code: "CONFLICT" });
    expect(error.message).toContain("already exists");
  });

  it.each<[string, string, Partial<VmSpec>, string]>([
    ["an uppercase name", "Web", {}, "name"],
    ["a long name", "x".repeat(64), {}, "name"],
    ["0 vcpus", "v", { vcpus: 0 }, "vcpus"],
    ["0 memory", "v", { memoryMb: 0 }, "memoryMb"],
    ["negative memory", "v", { memoryMb: -256 }, "memoryMb"],
    [
      "an unknown driver",
      "v",
      { driver: "docker" as never },
      "driver must be one of process, qemu",
    ],
    [
      "a process VM without a command",
      "v",
      { command: "" },
      "command is required by the process driver",
    ],
    ["a process VM with a kernel", "v", { kernel: "/boot/k" }, "kernel is a qemu setting"],
    [
      "a qemu VM without kernel or image",
      "v",
      { driver: "qemu", command: "", args: [] },
      "needs a kernel",
    ],
    [
      "a qemu VM with a command",
      "v",
      { driver: "qemu", image: "/d.img" },
      "for the process driver",
    ],
    [
      "an initrd without a kernel",
      "v",
      { driver: "qemu", command: "", args: [], image: "/d.img", initrd: "/i" },
      "need a kernel",
    ],
    ["a bad anti-affinity group", "v", { antiAffinityGroup: "a b" }, "antiAffinityGroup"],
    [
      "a health check with neither probe",
      "v",
      { driver: "qemu", command: "", args: [], kernel: "/k", health: health({}) },
      "exactly one of tcpPort",
    ],
    [
      "a health check with both probes",
      "v",
      {
        driver: "qemu",
        command: "",
        args: [],
        kernel: "/k",
        health: health({ tcpPort: 80, command: "true" }),
      },
      "exactly one of tcpPort",
    ],
    [
      "a health probe's timeout longer than its interval",
      "v",
      {
        driver: "qemu",
        command: "",
        args: [],
        kernel: "/k",
        health: health({ tcpPort: 80, intervalMs: 1000, timeoutMs: 1001 }),
      },
      "must not exceed intervalMs",
    ],
    [
      "a health interval under a second",
      "v",
      {
        driver: "qemu",
        command: "",
        args: [],
        kernel: "/k",
        health: health({ tcpPort: 80, intervalMs: 999, timeoutMs: 10 }),
      },
      "intervalMs",
    ],
    [
      "a health check on a process VM",
      "v",
      { health: health({ tcpPort: 80 }) },
      "health is a qemu setting",
    ],
    [
      "a bad restart mode",
      "v",
      { restart: { mode: "always" as never, maxRestarts: 1, backoffMs: 1 } },
      "mode",
    ],
  ])("refuses %s with a message naming the problem", (_what, name, overrides, message) => {
    h = new Harness();
    const error = h.err({ type: "createVm", name, spec: vmSpec(overrides), desired: "running" });
    expect(error.code).toMatch(/INVALID_ARGUMENT|TOO_LARGE/);
    expect(error.message).toContain(message);
  });

  it("accepts a qemu VM from a kernel with initrd and cmdline, or from an image", () => {
    h = new Harness();
    h.createVm("k", qemuSpec({ initrd: "/boot/initrd", cmdline: "console=ttyS0" }));
    h.createVm("i", qemuSpec({ kernel: "", image: "/var/lib/vm.img" }));
  });

  it("needs the qemu feature for a qemu VM and says so when no worker has it", () => {
    h = new Harness();
    h.register(1, res(4000, 4096));
    expect(h.createVm("q", qemuSpec()).pendingReason).toBe("no online worker has feature qemu");
    h.register(2, res(4000, 4096), ["qemu"]);
    expect(h.vm("q")).toMatchObject({ status: "scheduled", nodeId: 2 });
  });

  it("never puts two VMs of one anti-affinity group on a worker", () => {
    h = new Harness();
    h.register(1, res(8000, 8192));
    h.register(2, res(8000, 8192));
    const spec = vmSpec({ antiAffinityGroup: "db" });
    expect(h.createVm("db-1", spec).nodeId).toBe(1);
    expect(h.createVm("db-2", spec).nodeId).toBe(2);
    expect(h.createVm("db-3", spec).pendingReason).toBe(
      "every online worker already holds a VM of anti-affinity group db",
    );
    expect(h.createVm("other", vmSpec()).nodeId).toBe(1);
    h.ok({ type: "setVmDesired", name: "db-1", desired: "stopped" });
    h.ok(observe("db-1", 1, "stopped"));
    expect(h.vm("db-3")).toMatchObject({ status: "scheduled", nodeId: 1 });
  });
});

describe("vmObserved", () => {
  it("records what the VM's agent sees", () => {
    h = new Harness();
    h.register(1, res(4000, 4096));
    h.createVm("v");
    h.ok(observe("v", 1, "starting"));
    const vm = (h.ok(observe("v", 1, "running", 2, "exited 1; restarted")) as { vm: object }).vm;
    expect(vm).toMatchObject({ status: "running", restarts: 2, lastError: "exited 1; restarted" });
    const before = h.model.snapshot();
    h.ok(observe("v", 1, "running", 2, "exited 1; restarted"));
    expect(h.model.snapshot()).toEqual(before);
  });

  it("records a guest that turns unhealthy and recovers, keeping the VM on its node", () => {
    h = new Harness();
    h.register(1, res(4000, 4096), ["qemu"]);
    h.createVm("v", qemuSpec({ health: health({ tcpPort: 80 }) }));
    h.ok(observe("v", 1, "running"));
    const reason = "health check failed 3 times in a row: tcp guest port 80: connection refused";
    expect(h.ok(observe("v", 1, "unhealthy", 0, reason))).toMatchObject({
      vm: { status: "unhealthy", nodeId: 1, lastError: reason },
    });
    // Still holding its resources: an unhealthy guest runs on, it is only reported.
    expect(h.worker(1).allocated).toEqual(res(1000, 512, 0));
    expect(h.ok(observe("v", 1, "running", 0, reason))).toMatchObject({
      vm: { status: "running", nodeId: 1 },
    });
  });

  it("refuses a report from another node, or about a VM on no node, with CONFLICT", () => {
    h = new Harness();
    h.register(1, res(4000, 4096));
    h.register(2, res(4000, 4096));
    h.createVm("v");
    expect(h.err(observe("v", 2, "running")).message).toContain("VM v is on node 1, not node 2");
    h.createVm("s", vmSpec(), "stopped");
    expect(h.err(observe("s", 1, "running")).message).toContain("on no node");
  });

  it("refuses the model's own statuses from an agent", () => {
    h = new Harness();
    h.register(1, res(4000, 4096));
    h.createVm("v");
    const command = {
      type: "vmObserved",
      name: "v",
      nodeId: 1,
      status: "scheduled",
      restarts: 0,
      error: "",
    };
    expect(h.err(command as never).code).toBe("INVALID_ARGUMENT");
  });

  it("answers NOT_FOUND for an unknown VM", () => {
    h = new Harness();
    expect(h.err(observe("nope", 1, "running")).code).toBe("NOT_FOUND");
    expect(h.err({ type: "setVmDesired", name: "nope", desired: "stopped" }).code).toBe(
      "NOT_FOUND",
    );
    expect(h.err({ type: "deleteVm", name: "nope" }).code).toBe("NOT_FOUND");
  });
});

describe("setVmDesired", () => {
  it("stops a placed VM through its agent: resources are released when it reports stopped", () => {
    h = new Harness();
    h.register(1, res(1000, 1024));
    h.createVm("a");
    h.createVm("b");
    expect(h.vm("b").status).toBe("pending");
    h.ok(observe("a", 1, "running"));
    h.ok({ type: "setVmDesired", name: "a", desired: "stopped" });
    expect(h.vm("a")).toMatchObject({ desired: "stopped", status: "running", nodeId: 1 });
    h.ok(observe("a", 1, "stopping"));
    expect(h.vm("b").status).toBe("pending");
    h.ok(observe("a", 1, "stopped"));
    expect(h.vm("a")).toMatchObject({ status: "stopped", nodeId: null });
    expect(h.vm("b")).toMatchObject({ status: "scheduled", nodeId: 1 });
  });

  it("stops a pending VM at once and takes it out of the queue", () => {
    h = new Harness();
    h.createVm("v");
    h.ok({ type: "setVmDesired", name: "v", desired: "stopped" });
    expect(h.vm("v")).toMatchObject({ status: "stopped", pendingReason: "" });
    expect(h.model.pendingQueue()).toEqual([]);
  });

  it("releases a failed VM at once when stopped", () => {
    h = new Harness();
    h.register(1, res(1000, 1024));
    h.createVm("v");
    h.ok(observe("v", 1, "failed", 3, "gave up after 3 restarts"));
    h.ok({ type: "setVmDesired", name: "v", desired: "stopped" });
    expect(h.vm("v")).toMatchObject({
      status: "stopped",
      nodeId: null,
      lastError: "gave up after 3 restarts",
    });
  });

  it("starts a stopped VM by placing it", () => {
    h = new Harness();
    h.register(1, res(1000, 1024));
    h.createVm("v", vmSpec(), "stopped");
    h.ok({ type: "setVmDesired", name: "v", desired: "running" });
    expect(h.vm("v")).toMatchObject({ desired: "running", status: "scheduled", nodeId: 1 });
  });

  it("restarts a failed VM afresh: released, placed again, restart count reset", () => {
    h = new Harness();
    h.register(1, res(1000, 1024));
    h.createVm("v");
    h.ok(observe("v", 1, "failed", 3, "boom"));
    h.ok({ type: "setVmDesired", name: "v", desired: "running" });
    expect(h.vm("v")).toMatchObject({ status: "scheduled", nodeId: 1, restarts: 0 });
  });

  it("starts again a VM that exited cleanly while it was wanted running", () => {
    h = new Harness();
    h.register(1, res(1000, 1024));
    h.createVm("v");
    h.ok(observe("v", 1, "running"));
    h.ok(observe("v", 1, "stopped"));
    expect(h.vm("v")).toMatchObject({ desired: "running", status: "stopped", nodeId: 1 });
    h.ok({ type: "setVmDesired", name: "v", desired: "running" });
    expect(h.vm("v")).toMatchObject({ status: "scheduled", nodeId: 1, restarts: 0 });
  });

  it("keeps a VM on its node when started again before it stopped", () => {
    h = new Harness();
    h.register(1, res(1000, 1024));
    h.createVm("v");
    h.ok(observe("v", 1, "running"));
    h.ok({ type: "setVmDesired", name: "v", desired: "stopped" });
    h.ok({ type: "setVmDesired", name: "v", desired: "running" });
    expect(h.vm("v")).toMatchObject({ desired: "running", status: "running", nodeId: 1 });
  });

  it("ignores a retried copy of a requested stop's end once the VM is wanted running again (seed 920068)", () => {
    h = new Harness();
    h.register(1, res(1000, 1024));
    h.createVm("v");
    h.ok(observe("v", 1, "running"));
    h.ok({ type: "setVmDesired", name: "v", desired: "stopped" });
    h.ok(observe("v", 1, "stopping"));
    h.ok({ type: "setVmDesired", name: "v", desired: "running" });
    const stopped = { ...observe("v", 1, "stopped"), requestedStop: true } as const;
    h.ok(stopped);
    expect(h.vm("v")).toMatchObject({ desired: "running", status: "scheduled", nodeId: 1 });
    // The agent did not learn the outcome and sends the same report again.
    h.ok(stopped);
    expect(h.vm("v")).toMatchObject({ desired: "running", status: "scheduled", nodeId: 1 });
    h.ok(observe("v", 1, "starting"));
    h.ok(stopped);
    expect(h.vm("v")).toMatchObject({ status: "starting", nodeId: 1 });
    // A VM that exits by itself is still recorded stopped.
    h.ok(observe("v", 1, "stopped"));
    expect(h.vm("v")).toMatchObject({ desired: "running", status: "stopped", nodeId: 1 });
  });

  it("releases a VM when a requested stop ends while it is wanted stopped", () => {
    h = new Harness();
    h.register(1, res(1000, 1024));
    h.createVm("v");
    h.ok(observe("v", 1, "running"));
    h.ok({ type: "setVmDesired", name: "v", desired: "stopped" });
    h.ok({ ...observe("v", 1, "stopped"), requestedStop: true });
    expect(h.vm("v")).toMatchObject({ status: "stopped", nodeId: null });
  });

  it("changes nothing when the state is already desired", () => {
    h = new Harness();
    h.createVm("v", vmSpec(), "stopped");
    const before = h.model.snapshot();
    h.ok({ type: "setVmDesired", name: "v", desired: "stopped" });
    expect(h.model.snapshot()).toEqual(before);
  });
});

describe("deleteVm", () => {
  it("deletes a stopped VM and a pending one", () => {
    h = new Harness();
    h.createVm("stopped", vmSpec(), "stopped");
    h.createVm("pending");
    expect(h.ok({ type: "deleteVm", name: "stopped" })).toEqual({ type: "deleted" });
    expect(h.ok({ type: "deleteVm", name: "pending" })).toEqual({ type: "deleted" });
    expect(h.model.vms()).toEqual([]);
    expect(h.model.pendingQueue()).toEqual([]);
  });

  it("refuses to delete a VM still on a node, telling the user to stop it first", () => {
    h = new Harness();
    h.register(1, res(1000, 1024));
    h.createVm("v");
    h.ok({ type: "setVmDesired", name: "v", desired: "stopped" });
    const error = h.err({ type: "deleteVm", name: "v" });
    expect(error.code).toBe("CONFLICT");
    expect(error.message).toContain("stop it first");
    h.ok(observe("v", 1, "stopped"));
    h.ok({ type: "deleteVm", name: "v" });
  });
});

describe("setSettings", () => {
  it("switches placement to spread", () => {
    h = new Harness();
    h.register(1, res(4000, 4096));
    h.register(2, res(4000, 4096));
    h.createVm("a");
    expect(h.createVm("b").nodeId).toBe(1);
    expect(h.ok({ type: "setSettings", settings: { placement: "spread" } })).toEqual({
      type: "settings",
      settings: { placement: "spread" },
    });
    expect(h.createVm("c").nodeId).toBe(2);
    expect(h.model.settings()).toEqual({ placement: "spread" });
    const bad = h.err({ type: "setSettings", settings: { placement: "random" as never } });
    expect(bad.code).toBe("INVALID_ARGUMENT");
  });
});
