/**
 * `execInVm` of the real node's orchestrator service: it runs the command through this node's
 * driver only for a qemu VM placed here, forwards to the node that runs it elsewhere (the server
 * turns ServedByOtherNodeError into a forward, as for console logs), refuses what cannot work
 * with a code that says why, and keeps the guest's timeout inside the request's deadline.
 */
import { describe, expect, it } from "vitest";
import { ServedByOtherNodeError } from "../../src/api/forward.js";
import { InMemoryMemberDirectory } from "../../src/api/member-directory.js";
import { RaftOrchestratorService } from "../../src/api/raft-orchestrator-service.js";
import type { GuestExecRequest } from "../../src/orchestrator/drivers/guest-agent-client.js";
import { CommandPort } from "../../src/node/command-port.js";
import type { Vm, VmSpec } from "../../src/statemachine/orchestrator/types.js";
import { ManualClock } from "../node/fakes.js";
import { FakeOrchestratorNode } from "./orchestrator-fakes.js";

const QEMU: VmSpec = {
  vcpus: 1,
  memoryMb: 128,
  diskGb: 0,
  driver: "qemu",
  command: "",
  args: [],
  kernel: "/images/vmlinuz",
  initrd: "/images/initramfs.cpio.gz",
  image: "",
  cmdline: "",
  requiredFeatures: [],
  antiAffinityGroup: "",
  restart: { mode: "on-failure", maxRestarts: 5, backoffMs: 1000 },
};

function vm(name: string, overrides: Partial<Vm> = {}): Vm {
  return {
    name,
    spec: QEMU,
    desired: "running",
    status: "running",
    nodeId: 1,
    restarts: 0,
    lastError: "",
    pendingReason: "",
    createdAtMs: 0,
    updatedAtMs: 0,
    ...overrides,
  };
}

function setup() {
  const node = new FakeOrchestratorNode(1);
  const clock = new ManualClock();
  const directory = new InMemoryMemberDirectory([
    [2, { raftAddress: "127.0.0.1:7002", apiAddress: "http://127.0.0.1:8002" }],
  ]);
  const requests: GuestExecRequest[] = [];
  const service = new RaftOrchestratorService({
    node,
    commands: new CommandPort({ node, clock, leaderAddress: () => undefined }),
    clock,
    directory,
    execInVm: async (name, request) => {
      requests.push(request);
      return { exitCode: 3, output: `ran ${request.command} in ${name}`, truncated: false };
    },
  });
  return { node, service, requests };
}

describe("RaftOrchestratorService.execInVm", () => {
  it("runs the command on this node's driver for a qemu VM placed here, with the default timeout", async () => {
    const { node, service, requests } = setup();
    node.putVm(vm("web"));
    await expect(
      service.execInVm("web", { command: "uptime" }, { timeoutMs: 10_000 }),
    ).resolves.toEqual({ nodeId: 1, exitCode: 3, output: "ran uptime in web", truncated: false });
    expect(requests.map((r) => [r.command, r.timeoutMs])).toEqual([["uptime", 5000]]);
  });

  it("hands a VM placed on another node to that node", async () => {
    const { node, service, requests } = setup();
    node.putVm(vm("elsewhere", { nodeId: 2 }));
    const error = await service
      .execInVm("elsewhere", { command: "true" }, { timeoutMs: 10_000 })
      .catch((e: unknown) => e);
    expect(error).toBeInstanceOf(ServedByOtherNodeError);
    expect(error).toMatchObject({ nodeId: 2, apiAddress: "http://127.0.0.1:8002" });
    expect(requests).toEqual([]);
  });

  it("refuses an unknown VM, a process VM, a VM on no node, and a timeout the deadline cannot hold", async () => {
    const { node, service, requests } = setup();
    node.putVm(
      vm("proc", {
        spec: { ...QEMU, driver: "process", command: "/bin/sleep", kernel: "", initrd: "" },
      }),
    );
    node.putVm(vm("off", { status: "stopped", nodeId: null, desired: "stopped" }));
    node.putVm(vm("web"));
    const attempt = (name: string, timeoutMs?: number) =>
      service.execInVm(
        name,
        { command: "true", ...(timeoutMs === undefined ? {} : { timeoutMs }) },
        { timeoutMs: 10_000 },
      );
    await expect(attempt("nope")).rejects.toMatchObject({ code: "NOT_FOUND" });
    await expect(attempt("proc")).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringContaining("process driver") as unknown,
    });
    await expect(attempt("off")).rejects.toMatchObject({
      code: "CONFLICT",
      message: expect.stringContaining("start it first") as unknown,
    });
    // 10 s of deadline leave 6 s for the command (3 s for its answer, a margin, whole seconds).
    await expect(attempt("web", 6000)).resolves.toMatchObject({ exitCode: 3 });
    await expect(attempt("web", 6001)).rejects.toMatchObject({
      code: "INVALID_ARGUMENT",
      message: expect.stringContaining("does not fit in this request's deadline") as unknown,
    });
    expect(requests.map((r) => r.timeoutMs)).toEqual([6000]);
  });
});
