/**
 * The task commands through the installed entry point (`bin/blixard.js`, a child process) against
 * an API server with a fake orchestrator: the process's exit status is the task's.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startFakeApi, type FakeApi } from "../api/orchestrator-fakes.js";
import { cli, ensureBuilt } from "./helpers.js";

describe("blixard task through bin/blixard.js", () => {
  let api: FakeApi;
  beforeAll(async () => {
    await ensureBuilt();
    api = await startFakeApi();
    api.node.addWorker(1);
    api.node.autoFinish = (task) =>
      task.spec.command === "fail3"
        ? { status: "failed", result: { exitCode: 3, stdout: "partial\n", stderr: "boom\n" } }
        : task.spec.command === "slow"
          ? { status: "timed_out", result: { error: "killed after the timeout" } }
          : undefined;
  });
  afterAll(async () => {
    await api.close();
  });

  it("prints the id of a submitted task and exits 0", async () => {
    const run = await cli(["task", "submit", "--", "echo", "hi"], {
      BLIXARD_ENDPOINTS: api.url.href,
    });
    expect(run.status).toBe(0);
    expect(run.stdout).toMatch(/^task-\d{4}\n$/);
  });

  it("exits with the task's exit code, and 124 for a timed-out task", async () => {
    const failed = await cli(["task", "submit", "--wait", "--", "fail3"], {
      BLIXARD_ENDPOINTS: api.url.href,
    });
    expect(failed).toMatchObject({ status: 3, stdout: "partial\n" });
    expect(failed.stderr).toMatch(/^boom\ntask task-\d{4} failed with exit code 3\n$/);
    const slow = await cli(["task", "submit", "--wait", "--", "slow"], {
      BLIXARD_ENDPOINTS: api.url.href,
    });
    expect(slow.status).toBe(124);
  });

  it("task logs --follow prints the output of an ended task and exits with its exit code", async () => {
    const submitted = await cli(["task", "submit", "--", "fail3"], {
      BLIXARD_ENDPOINTS: api.url.href,
    });
    const id = submitted.stdout.trim();
    const followed = await cli(["task", "logs", id, "--follow"], {
      BLIXARD_ENDPOINTS: api.url.href,
    });
    expect(followed).toMatchObject({ status: 3, stdout: "partial\n" });
    expect(followed.stderr).toBe(`boom\ntask ${id} failed with exit code 3\n`);
  });
});
