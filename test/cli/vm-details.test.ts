/**
 * `vm get`'s field/value view (`orchestrator-format.ts`): where a VM's current disk is shows
 * once the model knows it, and not for a VM without one.
 */
import { describe, expect, it } from "vitest";
import { vmDetails } from "../../src/cli/commands/orchestrator-format.js";
import type { Vm } from "../../src/client/index.js";
import { qemuSpec } from "../orchestrator/model/fixtures.js";

function vm(extra: Partial<Vm> = {}): Vm {
  return {
    name: "store",
    spec: qemuSpec({ diskGb: 1 }),
    desired: "stopped",
    status: "stopped",
    nodeId: null,
    restarts: 0,
    lastError: "",
    pendingReason: "",
    createdAtMs: 0,
    updatedAtMs: 0,
    ...extra,
  } as Vm;
}

describe("vmDetails", () => {
  it("names the node that holds the VM's current disk", () => {
    expect(vmDetails(vm({ diskNodeId: 2 }))).toMatch(/disk on\s+node 2/);
  });

  it("says nothing of a disk the model has not placed", () => {
    expect(vmDetails(vm())).not.toMatch(/disk on/);
  });
});
