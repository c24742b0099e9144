/**
 * Live migration in the orchestrator model (`vm-migration.ts`): `migrateVm` picks or checks a
 * target that then holds the VM too; the target's reports move the VM or roll it back; the
 * source's end, a stop, a drain or a node going offline end the migration; snapshots keep it.
 * Each test checks the model's invariants at the end.
 */
import { afterEach, describe, expect, it } from "vitest";
import { OrchestratorModel } from "../../../src/statemachine/orchestrator/model.js";
import type { Vm, VmSpec, VmStatus } from "../../../src/statemachine/orchestrator/types.js";
import { Harness, checkInvariants, qemuSpec, res, sameBytes, vmSpec } from "./fixtures.js";

let h: Harness;
afterEach(() => checkInvariants(h.model));

function observe(
  name: string,
  nodeId: number,
  status: Exclude<VmStatus, "pending" | "scheduled" | "migrating">,
  extra: {
    error?: string;
    incomingUri?: string;
    incomingDiskUri?: string;
    sendFailedTo?: string;
    restarts?: number;
  } = {},
) {
  return {
    type: "vmObserved",
    name,
    nodeId,
    status,
    restarts: extra.restarts ?? 0,
    error: extra.error ?? "",
    ...(extra.incomingUri === undefined ? {} : { incomingUri: extra.incomingUri }),
    ...(extra.incomingDiskUri === undefined ? {} : { incomingDiskUri: extra.incomingDiskUri }),
    ...(extra.sendFailedTo === undefined ? {} : { sendFailedTo: extra.sendFailedTo }),
  } as const;
}

function migrate(name: string, targetNodeId?: number) {
  return {
    type: "migrateVm",
    name,
    ...(targetNodeId === undefined ? {} : { targetNodeId }),
  } as const;
}

/** Three qemu workers and VM `v` running on node 1 (binpack puts it on the lowest id). */
function running(spec: Partial<VmSpec> = {}): Harness {
  const harness = new Harness();
  for (const nodeId of [1, 2, 3]) harness.register(nodeId, res(4000, 4096, 10), ["qemu"]);
  harness.createVm("v", qemuSpec({ vcpus: 1, memoryMb: 1024, ...spec }));
  harness.ok(observe("v", 1, "running"));
  return harness;
}

function vmOf(result: unknown): Vm {
  return (result as { vm: Vm }).vm;
}

describe("migrateVm", () => {
  it("makes a running VM migrating to the named node, which holds its resources too", () => {
    h = running();
    const vm = vmOf(h.ok(migrate("v", 3)));
    expect(vm).toMatchObject({ status: "migrating", nodeId: 1 });
    expect(vm.migration).toEqual({ targetNodeId: 3, incomingUri: "", startedAtMs: h.nowMs - 1 });
    expect(h.worker(1).allocated).toEqual(res(1000, 1024, 0));
    expect(h.worker(3).allocated).toEqual(res(1000, 1024, 0));
    expect(h.model.assignments(3).vms.map((v) => v.name)).toEqual(["v"]);
  });

  it("picks a node other than the VM's own when none is named", () => {
    h = running();
    const vm = vmOf(h.ok(migrate("v")));
    expect(vm.migration?.targetNodeId).toBe(2);
  });

  it.each<[string, (harness: Harness) => void, ReturnType<typeof migrate>, string, RegExp]>([
    ["an unknown VM", () => undefined, migrate("nope", 2), "NOT_FOUND", /does not exist/],
    ["an unregistered target", () => undefined, migrate("v", 9), "NOT_FOUND", /not a registered/],
    [
      "its own node",
      () => undefined,
      migrate("v", 1),
      "INVALID_ARGUMENT",
      /already runs on node 1/,
    ],
    [
      "a VM already migrating",
      (harness) => harness.ok(migrate("v", 2)),
      migrate("v", 3),
      "CONFLICT",
      /already migrating to node 2/,
    ],
    [
      "a VM that is not running",
      (harness) => harness.ok(observe("v", 1, "unhealthy", { error: "probe failed" })),
      migrate("v", 2),
      "CONFLICT",
      /is unhealthy on node 1; only a running VM/,
    ],
    [
      "a target without room",
      (harness) => harness.createVm("big", qemuSpec({ vcpus: 4, memoryMb: 1024 })),
      migrate("v", 2),
      "CONFLICT",
      /node 2 cannot take it/,
    ],
    [
      "a drained target",
      (harness) => harness.ok({ type: "setWorkerDrain", nodeId: 2, draining: true }),
      migrate("v", 2),
      "CONFLICT",
      /node 2 cannot take it/,
    ],
  ])("refuses %s", (_what, setUp, command, code, message) => {
    h = running();
    setUp(h);
    const error = h.err(command);
    expect(error.code).toBe(code);
    expect(error.message).toMatch(message);
  });

  it("refuses a process VM as invalid", () => {
    h = new Harness();
    h.register(1, res(4000, 4096, 10), ["qemu"]);
    h.register(2, res(4000, 4096, 10), ["qemu"]);
    h.createVm("p", vmSpec());
    h.ok(observe("p", 1, "running"));
    expect(h.err(migrate("p", 2)).message).toMatch(/only qemu VMs/);
  });

  it("migrates a VM with a disk: the target's disk address is recorded with its stream's", () => {
    h = new Harness();
    h.register(1, res(4000, 4096, 10), ["qemu"]);
    h.register(2, res(4000, 4096, 10), ["qemu"]);
    h.createVm("d", qemuSpec({ diskGb: 1 }));
    h.ok(observe("d", 1, "running"));
    h.ok(migrate("d", 2));
    h.ok(
      observe("d", 2, "booting", {
        incomingUri: "tcp:127.0.0.1:4444",
        incomingDiskUri: "nbd:127.0.0.1:4445",
      }),
    );
    expect(h.vm("d").migration).toMatchObject({
      incomingUri: "tcp:127.0.0.1:4444",
      diskUri: "nbd:127.0.0.1:4445",
    });
    const bytes = h.model.snapshot();
    const restored = new OrchestratorModel();
    restored.restore(bytes);
    expect(restored.vm("d")?.migration?.diskUri).toBe("nbd:127.0.0.1:4445");
    expect(sameBytes(restored.snapshot(), bytes)).toBe(true);
    expect(vmOf(h.ok(observe("d", 2, "running")))).toMatchObject({ nodeId: 2, status: "running" });
  });

  it("refuses a disk address that is not nbd:HOST:PORT", () => {
    h = running();
    h.ok(migrate("v", 2));
    const error = h.err(
      observe("v", 2, "booting", {
        incomingUri: "tcp:127.0.0.1:4444",
        incomingDiskUri: "file:/etc/shadow",
      }),
    );
    expect(error.code).toBe("INVALID_ARGUMENT");
  });

  it("never picks a node holding the VM's anti-affinity group", () => {
    h = running({ antiAffinityGroup: "web" });
    h.createVm("w2", qemuSpec({ antiAffinityGroup: "web" }));
    expect(h.vm("w2").nodeId).toBe(2);
    expect(vmOf(h.ok(migrate("v"))).migration?.targetNodeId).toBe(3);
  });
});

describe("the reports of a migration", () => {
  it("records where the target listens, then moves the VM when the target runs it", () => {
    h = running();
    h.ok(migrate("v", 2));
    h.ok(observe("v", 2, "starting"));
    expect(h.vm("v").migration?.incomingUri).toBe("");
    h.ok(observe("v", 2, "booting", { incomingUri: "tcp:127.0.0.1:4444" }));
    expect(h.vm("v").migration?.incomingUri).toBe("tcp:127.0.0.1:4444");
    // The source's health reports change nothing but its error while it migrates.
    h.ok(observe("v", 1, "running", { error: "noted" }));
    expect(h.vm("v")).toMatchObject({ status: "migrating", lastError: "noted" });
    const moved = vmOf(h.ok(observe("v", 2, "running")));
    expect(moved).toMatchObject({ status: "running", nodeId: 2, lastError: "" });
    expect(moved.migration).toBeUndefined();
    expect(h.worker(1).allocated).toEqual(res(0, 0, 0));
    expect(h.worker(2).allocated).toEqual(res(1000, 1024, 0));
    // The source's copy is stale now.
    expect(h.err(observe("v", 1, "stopped")).code).toBe("CONFLICT");
  });

  it("rolls back to the source when the target fails, with the reason", () => {
    h = running();
    h.ok(migrate("v", 2));
    const back = vmOf(h.ok(observe("v", 2, "failed", { error: "kernel cannot be read" })));
    expect(back).toMatchObject({
      status: "running",
      nodeId: 1,
      lastError: "migration to node 2 failed: kernel cannot be read",
    });
    expect(back.migration).toBeUndefined();
    expect(h.worker(2).allocated).toEqual(res(0, 0, 0));
    // Late reports of the target's copy are stale.
    expect(h.err(observe("v", 2, "stopped")).code).toBe("CONFLICT");
  });

  it("refuses an incoming URI that is not tcp:HOST:PORT", () => {
    h = running();
    h.ok(migrate("v", 2));
    const error = h.err(observe("v", 2, "booting", { incomingUri: "exec:rm -rf /" }));
    expect(error.code).toBe("INVALID_ARGUMENT");
  });

  it("rolls back at once when the source could not send to where the target listens", () => {
    h = running();
    h.ok(migrate("v", 2));
    h.ok(observe("v", 2, "booting", { incomingUri: "tcp:127.0.0.1:4444" }));
    // A failure to send somewhere else (an earlier attempt's address) changes nothing.
    h.ok(observe("v", 1, "running", { sendFailedTo: "tcp:127.0.0.1:9", error: "old" }));
    expect(h.vm("v").status).toBe("migrating");
    const back = vmOf(
      h.ok(
        observe("v", 1, "running", {
          sendFailedTo: "tcp:127.0.0.1:4444",
          error: "connection refused",
        }),
      ),
    );
    expect(back).toMatchObject({
      status: "running",
      nodeId: 1,
      lastError: "migration to node 2 failed: connection refused",
    });
    expect(back.migration).toBeUndefined();
    expect(h.worker(2).allocated).toEqual(res(0, 0, 0));
  });

  it("ends the migration when the source's copy ends: the restart policy applies there", () => {
    h = running();
    h.ok(migrate("v", 2));
    const after = vmOf(h.ok(observe("v", 1, "starting", { error: "crashed", restarts: 1 })));
    expect(after).toMatchObject({ status: "starting", nodeId: 1, restarts: 1 });
    expect(after.migration).toBeUndefined();
    expect(h.worker(2).allocated).toEqual(res(0, 0, 0));
  });

  it("ends the migration when the VM is asked to stop: the source stops it", () => {
    h = running();
    h.ok(migrate("v", 2));
    const stopping = vmOf(h.ok({ type: "setVmDesired", name: "v", desired: "stopped" }));
    expect(stopping).toMatchObject({ desired: "stopped", status: "running", nodeId: 1 });
    expect(stopping.migration).toBeUndefined();
    h.ok(observe("v", 1, "stopped"));
    expect(h.vm("v")).toMatchObject({ status: "stopped", nodeId: null });
  });

  it("rolls back when the target goes offline or is drained", () => {
    h = running();
    h.ok(migrate("v", 2));
    h.ok({ type: "markWorkerOffline", nodeId: 2 });
    expect(h.vm("v")).toMatchObject({
      status: "running",
      nodeId: 1,
      lastError: "migration to node 2 failed: node 2 went offline",
    });
    h.ok(migrate("v", 3));
    h.ok({ type: "setWorkerDrain", nodeId: 3, draining: true });
    expect(h.vm("v")).toMatchObject({ status: "running", nodeId: 1 });
    expect(h.vm("v").lastError).toMatch(/node 3 was drained/);
    expect(h.worker(3).status).toBe("drained");
  });

  it("reschedules as usual when the source goes offline mid-migration", () => {
    h = running();
    h.ok(migrate("v", 3));
    h.ok({ type: "markWorkerOffline", nodeId: 1 });
    const vm = h.vm("v");
    expect(vm.migration).toBeUndefined();
    expect(vm).toMatchObject({ status: "scheduled", nodeId: 2 });
    expect(h.worker(3).allocated).toEqual(res(0, 0, 0));
  });

  it("keeps a migration through a snapshot, byte for byte", () => {
    h = running();
    h.ok(migrate("v", 2));
    h.ok(observe("v", 2, "booting", { incomingUri: "tcp:[::1]:4444" }));
    const bytes = h.model.snapshot();
    const restored = new OrchestratorModel();
    restored.restore(bytes);
    expect(sameBytes(restored.snapshot(), bytes)).toBe(true);
    expect(restored.vm("v")?.migration?.incomingUri).toBe("tcp:[::1]:4444");
    expect(restored.worker(2)?.allocated).toEqual(res(1000, 1024, 0));
    checkInvariants(restored);
  });
});

describe("where a VM's current disk is (diskNodeId)", () => {
  it("is the node a VM with a disk was seen launched on; a VM without one has none", () => {
    h = running({ diskGb: 1 });
    expect(h.vm("v").diskNodeId).toBe(1);
    h.createVm("plain", qemuSpec({ vcpus: 1, memoryMb: 512 }));
    h.ok(observe("plain", 1, "running"));
    expect(h.vm("plain").diskNodeId).toBeUndefined();
  });

  it("stays through a stop and goes to the node the VM runs on next", () => {
    h = running({ diskGb: 1 });
    h.ok({ type: "setVmDesired", name: "v", desired: "stopped" });
    h.ok(observe("v", 1, "stopped"));
    expect(h.vm("v")).toMatchObject({ status: "stopped", nodeId: null, diskNodeId: 1 });
    // Node 1 fills up: started again, the VM runs on node 2, on a fresh disk that is now current.
    h.createVm("filler", qemuSpec({ vcpus: 3, memoryMb: 3500 }));
    h.ok({ type: "setVmDesired", name: "v", desired: "running" });
    expect(h.vm("v").nodeId).toBe(2);
    expect(h.vm("v").diskNodeId).toBe(1);
    h.ok(observe("v", 2, "starting"));
    expect(h.vm("v").diskNodeId).toBe(1);
    h.ok(observe("v", 2, "booting"));
    expect(h.vm("v").diskNodeId).toBe(2);
  });

  it("moves with a migration, stays on a rollback, and survives a snapshot byte for byte", () => {
    h = running({ diskGb: 1 });
    h.ok(migrate("v", 2));
    h.ok(observe("v", 2, "failed", { error: "no kernel" }));
    expect(h.vm("v")).toMatchObject({ nodeId: 1, diskNodeId: 1 });
    h.ok(migrate("v", 3));
    const during = h.model.snapshot();
    const restoredDuring = new OrchestratorModel();
    restoredDuring.restore(during);
    expect(sameBytes(restoredDuring.snapshot(), during)).toBe(true);
    h.ok(observe("v", 3, "running"));
    expect(h.vm("v")).toMatchObject({ nodeId: 3, diskNodeId: 3 });
    const bytes = h.model.snapshot();
    const restored = new OrchestratorModel();
    restored.restore(bytes);
    expect(sameBytes(restored.snapshot(), bytes)).toBe(true);
    expect(restored.vm("v")?.diskNodeId).toBe(3);
  });
});
