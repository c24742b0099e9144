/**
 * Followed logs across real processes (TLS, ACLs enforced): `task logs --follow` and
 * `vm logs --follow` asked of a node that does not run the work are forwarded to the one that
 * does; a line the task or VM writes after the follow started arrives, and the stream ends when
 * the task ends or the VM is deleted. Each piece of work waits for a flag file the test creates,
 * so "after the follow started" is a fact, not a timing guess.
 */
import { existsSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import type { BlixardClient, TaskLogEvent, VmLogEvent } from "../../src/client/index.js";
import { ensureBuilt } from "../cli/helpers.js";
import { ProcessCluster, until } from "./process-cluster.js";

let cluster: ProcessCluster;
let client: BlixardClient;
const RESOURCES = { cpuMillis: 100, memoryMb: 16, diskGb: 0 };

beforeAll(async () => {
  await ensureBuilt();
  cluster = await ProcessCluster.create({
    size: 3,
    name: "blixard-follow",
    extraArgs: ["--enable-raw-exec"],
  });
  cluster.startAll();
  await cluster.waitForLeader(undefined, 60_000);
  await cluster.bootstrapAcl();
  client = cluster.client();
  await cluster.waitForOnlineWorkers(client);
});

afterAll(async () => {
  await cluster?.destroy();
});

beforeEach(({ onTestFailed }) => {
  onTestFailed(() => {
    process.stderr.write(`node logs:\n${cluster.logs(60)}\n`);
  });
});

/** A shell loop that waits for `flag` to exist. */
function waitFor(flag: string): string {
  return `while [ ! -e ${flag} ]; do sleep 0.05; done`;
}

/** Stops VM `name`, waits for it to stop, and deletes it. */
async function stopAndDelete(name: string): Promise<void> {
  await client.orchestrator.stopVm(name);
  await until(async () => {
    const vm = await client.orchestrator.getVm(name);
    return vm.status === "stopped" ? vm : undefined;
  }, `VM ${name} to stop`);
  await client.orchestrator.deleteVm(name);
}

/** A node other than `nodeId`. */
function otherThan(nodeId: number): number {
  return cluster.nodes.map((n) => n.id).find((id) => id !== nodeId) as number;
}

describe("followed logs across real processes", () => {
  it("task logs --follow through another node: a later line arrives, the stream ends with the task", async () => {
    const flag = join(tmpdir(), `blixard-follow-${process.pid}-${Date.now()}`);
    const task = await client.orchestrator.submitTask({
      command: `echo first; ${waitFor(flag)}; echo second; echo oops >&2; exit 3`,
      shell: true,
      resources: RESOURCES,
    });
    const running = await until(async () => {
      const t = await client.orchestrator.getTask(task.id);
      return t.status === "running" ? t : undefined;
    }, "the task to run");
    const elsewhere = cluster.client([otherThan(running.nodeId!)]);
    const events = elsewhere.orchestrator.followTaskLogs(task.id);
    const seen: TaskLogEvent[] = [];
    for await (const event of events) {
      seen.push(event);
      // The task cannot go on until the first line was delivered here.
      if (event.type === "output" && event.text.includes("first")) writeFileSync(flag, "");
    }
    const stdout = seen.flatMap((e) =>
      e.type === "output" && e.stream === "stdout" ? [e.text] : [],
    );
    const stderr = seen.flatMap((e) =>
      e.type === "output" && e.stream === "stderr" ? [e.text] : [],
    );
    expect(stdout.join("")).toBe("first\nsecond\n");
    expect(stderr.join("")).toBe("oops\n");
    expect(seen[0]).toEqual({ type: "attempt", attempt: 1 });
    expect(seen.at(-1)).toEqual({
      type: "end",
      status: "failed",
      exitCode: 3,
      error: "",
      nodeId: running.nodeId,
    });
    expect(existsSync(flag)).toBe(true);
  });

  it("vm logs --follow through another node: a later line arrives, the stream ends on delete", async () => {
    const flag = join(tmpdir(), `blixard-follow-vm-${process.pid}-${Date.now()}`);
    await client.orchestrator.createVm("follow-me", {
      driver: "process",
      command: "/bin/sh",
      args: ["-c", `echo hello; ${waitFor(flag)}; echo later; sleep 600`],
    });
    const vm = await until(async () => {
      const v = await client.orchestrator.getVm("follow-me");
      return v.status === "running" ? v : undefined;
    }, "the VM to run");
    const elsewhere = cluster.client([otherThan(vm.nodeId!)]);
    let text = "";
    const seen: VmLogEvent[] = [];
    let deleted: Promise<void> | undefined;
    for await (const event of elsewhere.orchestrator.followVmLogs("follow-me", { tail: 10 })) {
      seen.push(event);
      if (event.type !== "output") continue;
      text += event.text;
      if (text.includes("hello") && !existsSync(flag)) writeFileSync(flag, "");
      // A running VM is stopped before it can be deleted; the stream goes on meanwhile.
      if (text.includes("later") && deleted === undefined) deleted = stopAndDelete("follow-me");
    }
    await deleted;
    expect(text).toMatch(/hello\n(.|\n)*later\n/);
    expect(seen.at(-1)).toEqual({ type: "deleted" });
  });
});
