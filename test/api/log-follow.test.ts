/**
 * `GET /v1/tasks/{id}/logs?follow=true` and `GET /v1/vms/{name}/logs?follow=true` in process,
 * through the client's async iterables: output written after the follow started arrives, the
 * stream ends when the task ends or the VM is deleted, a rotated VM log is followed into its new
 * file without losing the old file's last lines, and a task that already ended gives its result.
 */
import { appendFileSync, renameSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { BlixardClient, type TaskLogEvent, type VmLogEvent } from "../../src/client/index.js";
import { LiveOutputHub } from "../../src/orchestrator/drivers/live-output.js";
import { makeTempDir } from "../orchestrator/drivers/helpers.js";
import { startFakeApi, type FakeApi } from "./orchestrator-fakes.js";

const RESOURCES = { cpuMillis: 100, memoryMb: 16, diskGb: 0 };
const bytes = (text: string): Uint8Array => new TextEncoder().encode(text);

let api: FakeApi;
let hub: LiveOutputHub;
let client: BlixardClient;
let temp: { dir: string; remove: () => void };

beforeEach(async () => {
  temp = makeTempDir("follow");
  hub = new LiveOutputHub(1024);
  api = await startFakeApi({ vmLogDir: temp.dir, liveOutput: hub });
  api.node.addWorker(1);
  client = new BlixardClient({ endpoints: [api.url.href] });
});

afterEach(async () => {
  await api.close();
  temp.remove();
});

/** Pulls events from `events` until `until` holds for the one pulled; returns all pulled. */
async function pullUntil<T>(
  events: AsyncIterator<T>,
  until: (event: T) => boolean,
  seen: T[] = [],
): Promise<T[]> {
  for (;;) {
    const next = await events.next();
    if (next.done === true) return seen;
    seen.push(next.value);
    if (until(next.value)) return seen;
  }
}

describe("task logs --follow", () => {
  it("streams output written after the follow started, then ends with the task", async () => {
    const task = await client.orchestrator.submitTask({ command: "x", resources: RESOURCES });
    expect(task.nodeId).toBe(1);
    const attempt = hub.open(task.id, 1);
    api.node.markRunning(task.id);
    attempt.push("stdout", bytes("before the follow\n"));
    const events = client.orchestrator.followTaskLogs(task.id);
    const first = await pullUntil(events, (e) => e.type === "output");
    expect(first).toEqual([
      { type: "attempt", attempt: 1 },
      { type: "output", stream: "stdout", text: "before the follow\n" },
    ]);
    // A multi-byte character split across two chunks arrives whole.
    const euro = bytes("€\n");
    attempt.push("stderr", euro.subarray(0, 1));
    attempt.push("stderr", euro.subarray(1));
    attempt.push("stdout", bytes("after\n"));
    const more = await pullUntil(events, (e) => e.type === "output" && e.stream === "stdout");
    expect(more).toEqual([
      { type: "output", stream: "stderr", text: "€\n" },
      { type: "output", stream: "stdout", text: "after\n" },
    ]);
    attempt.end();
    api.node.finish(task.id, { status: "failed", result: { exitCode: 2, stdout: "x" } });
    const rest: TaskLogEvent[] = [];
    for await (const event of events) rest.push(event);
    // The result's output is not repeated: it was streamed.
    expect(rest).toEqual([{ type: "end", status: "failed", exitCode: 2, error: "", nodeId: 1 }]);
  });

  it("gives a task that already ended its captured output and its end", async () => {
    const task = await client.orchestrator.submitTask({ command: "x", resources: RESOURCES });
    api.node.finish(task.id, {
      status: "succeeded",
      result: { exitCode: 0, stdout: "out\n", stderr: "err\n" },
    });
    const events: TaskLogEvent[] = [];
    for await (const event of client.orchestrator.followTaskLogs(task.id)) events.push(event);
    expect(events).toEqual([
      { type: "output", stream: "stdout", text: "out\n" },
      { type: "output", stream: "stderr", text: "err\n" },
      { type: "end", status: "succeeded", exitCode: 0, error: "", nodeId: 1 },
    ]);
  });

  it("waits for an assigned task to start, and answers 404 for an unknown task", async () => {
    const task = await client.orchestrator.submitTask({ command: "x", resources: RESOURCES });
    const events = client.orchestrator.followTaskLogs(task.id);
    const pending = events.next();
    const attempt = hub.open(task.id, 1);
    attempt.push("stdout", bytes("started\n"));
    expect((await pending).value).toEqual({ type: "attempt", attempt: 1 });
    expect((await events.next()).value).toEqual({
      type: "output",
      stream: "stdout",
      text: "started\n",
    });
    await events.return(undefined);
    const unknown = client.orchestrator.followTaskLogs("task-9999").next();
    await expect(unknown).rejects.toMatchObject({ code: "NOT_FOUND" });
  });

  it("stops following when the signal aborts, and unsubscribes on the node", async () => {
    const task = await client.orchestrator.submitTask({ command: "x", resources: RESOURCES });
    const before = api.node.listenerCount;
    const controller = new AbortController();
    const events = client.orchestrator.followTaskLogs(task.id, { signal: controller.signal });
    const attempt = hub.open(task.id, 1);
    attempt.push("stdout", bytes("one\n"));
    await pullUntil(events, (e) => e.type === "output");
    controller.abort();
    expect((await events.next()).done).toBe(true);
    await waitFor(() => api.node.listenerCount === before);
  });
});

describe("vm logs --follow", () => {
  it("streams the tail, then what is written, across a rotation, until the VM is deleted", async () => {
    await client.orchestrator.createVm("web", { driver: "process", command: "true" });
    const log = join(temp.dir, "web.log");
    writeFileSync(log, "one\ntwo\nthree\n");
    const events = client.orchestrator.followVmLogs("web", { tail: 2 });
    expect((await events.next()).value).toEqual({ type: "output", text: "two\nthree\n" });
    appendFileSync(log, "four\n");
    expect((await events.next()).value).toEqual({ type: "output", text: "four\n" });
    // Rotation as the drivers do it: the last lines of the old file come first.
    appendFileSync(log, "five\n");
    renameSync(log, `${log}.1`);
    writeFileSync(log, "six\n");
    const seen = await pullUntil<VmLogEvent>(
      events,
      (e) => e.type === "output" && e.text.includes("six"),
    );
    const text = seen.map((e) => (e.type === "output" ? e.text : `[${e.type}]`)).join("");
    expect(text).toBe("five\n[rotated]six\n");
    await client.orchestrator.deleteVm("web");
    const rest: VmLogEvent[] = [];
    for await (const event of events) rest.push(event);
    expect(rest).toEqual([{ type: "deleted" }]);
  });

  it("answers 404 for a VM this node keeps no log of", async () => {
    await client.orchestrator.createVm("db", { driver: "process", command: "true" });
    await expect(client.orchestrator.followVmLogs("db").next()).rejects.toMatchObject({
      code: "NOT_FOUND",
    });
  });
});

async function waitFor(condition: () => boolean): Promise<void> {
  while (!condition()) await new Promise((resolve) => setImmediate(resolve));
}
