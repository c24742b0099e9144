import { chmodSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { TaskSpec } from "../../../src/statemachine/orchestrator/types.js";
import { ProcessRegistry } from "../../../src/orchestrator/drivers/process-registry.js";
import { runTask, type RunTaskOptions } from "../../../src/orchestrator/drivers/task-runner.js";
import { isAlive, makeTempDir, readPid, realClock, waitFor } from "./helpers.js";

let temp: { dir: string; remove: () => void };
beforeAll(() => {
  temp = makeTempDir("task");
});
afterAll(() => temp.remove());

function spec(overrides: Partial<TaskSpec>): TaskSpec {
  return {
    command: "true",
    args: [],
    env: {},
    cwd: "",
    shell: false,
    resources: { cpuMillis: 100, memoryMb: 16, diskGb: 0 },
    requiredFeatures: [],
    timeoutMs: 0,
    maxAttempts: 1,
    ...overrides,
  };
}

function options(overrides: Partial<RunTaskOptions> = {}): RunTaskOptions {
  return { clock: realClock, defaultCwd: temp.dir, ...overrides };
}

/** A shell script that starts `sleep 1000` in the background, records its pid, then waits. */
function grandchildScript(pidFile: string, before = ""): string {
  return `${before} sleep 1000 & echo $! > '${pidFile}'; echo started; wait`;
}

describe("runTask: how a command ends", () => {
  it("runs a command without a shell and captures its stdout", async () => {
    const run = await runTask(
      spec({ command: "echo", args: ["hello", "$HOME", "a b"] }),
      options(),
    );
    expect(run.outcome).toBe("succeeded");
    // No shell: `$HOME` is not expanded and "a b" stays one argument.
    expect(run.result).toMatchObject({
      exitCode: 0,
      stdout: "hello $HOME a b\n",
      stderr: "",
      stdoutTruncated: false,
      stderrTruncated: false,
      error: "",
    });
    expect(run.result.durationMs).toBeGreaterThanOrEqual(0);
  });

  it("reports a non-zero exit as failed with its exit code and keeps stderr apart", async () => {
    const run = await runTask(
      spec({ command: "echo out; echo err >&2; exit 3", shell: true }),
      options(),
    );
    expect(run.outcome).toBe("failed");
    expect(run.result).toMatchObject({ exitCode: 3, stdout: "out\n", stderr: "err\n", error: "" });
  });

  it("passes arguments to a shell script as positional parameters, not as script text", async () => {
    const run = await runTask(
      spec({ command: 'printf "%s|" "$@"; echo "$0"', args: ["a b", "$(id)", ";"], shell: true }),
      options(),
    );
    expect(run.result.stdout).toBe("a b|$(id)|;|sh\n");
  });

  it("reports a death by signal with exit code null and the signal's name", async () => {
    const run = await runTask(spec({ command: "kill -SEGV $$", shell: true }), options());
    expect(run.outcome).toBe("failed");
    expect(run.result.exitCode).toBeNull();
    expect(run.result.error).toBe("killed by signal SIGSEGV");
  });

  it("fails a missing command with exit code null and a clear error", async () => {
    const run = await runTask(spec({ command: "no-such-command-blixard-test" }), options());
    expect(run.outcome).toBe("failed");
    expect(run.result.exitCode).toBeNull();
    expect(run.result.error).toMatch(/cannot start "no-such-command-blixard-test".*ENOENT/);
  });

  it("fails a file that is not executable with a permission error", async () => {
    const script = join(temp.dir, "not-executable.sh");
    writeFileSync(script, "#!/bin/sh\necho hi\n");
    chmodSync(script, 0o644);
    const run = await runTask(spec({ command: script }), options());
    expect(run.outcome).toBe("failed");
    expect(run.result.exitCode).toBeNull();
    expect(run.result.error).toMatch(/permission denied \(EACCES\)/);
  });

  it("keeps an error message within the model's bound", async () => {
    const long = `/${"d".repeat(5000)}/tool`;
    const run = await runTask(spec({ command: long }), options());
    expect(run.outcome).toBe("failed");
    expect(new TextEncoder().encode(run.result.error).length).toBeLessThanOrEqual(4096);
    expect(run.result.error).toMatch(/^cannot start "\/ddd/);
    expect(run.result.error.endsWith("…")).toBe(true);
  });

  it("fails an empty command without starting anything", async () => {
    const run = await runTask(spec({ command: "" }), options());
    expect(run.outcome).toBe("failed");
    expect(run.result.error).toBe("the task has no command");
  });
});

describe("runTask: environment and working directory", () => {
  it("gives the task PATH, HOME and its own env, never the agent's environment", async () => {
    process.env["BLIXARD_AGENT_SECRET"] = "do-not-leak";
    try {
      const run = await runTask(spec({ command: "env", env: { GREETING: "hi there" } }), options());
      const names = run.result.stdout
        .trim()
        .split("\n")
        .map((line) => line.slice(0, line.indexOf("=")))
        .sort();
      // `env` may be given PWD by nothing but a shell; without one the list is exact.
      expect(names).toEqual(["GREETING", "HOME", "PATH"]);
      expect(run.result.stdout).toContain("GREETING=hi there\n");
    } finally {
      delete process.env["BLIXARD_AGENT_SECRET"];
    }
  });

  it("lets spec.env override the base environment", async () => {
    const run = await runTask(
      spec({ command: "sh", args: ["-c", 'echo "$HOME"'], env: { HOME: "/elsewhere" } }),
      options({ baseEnv: { PATH: "/usr/bin:/bin", HOME: "/base" } }),
    );
    expect(run.result.stdout).toBe("/elsewhere\n");
  });

  it("runs in the default directory, in spec.cwd, and resolves a relative cwd", async () => {
    mkdirSync(join(temp.dir, "sub dir"), { recursive: true });
    const byDefault = await runTask(spec({ command: "pwd" }), options());
    expect(byDefault.result.stdout).toBe(`${temp.dir}\n`);
    const absolute = await runTask(spec({ command: "pwd", cwd: "/" }), options());
    expect(absolute.result.stdout).toBe("/\n");
    const relative = await runTask(spec({ command: "pwd", cwd: "sub dir" }), options());
    expect(relative.result.stdout).toBe(`${join(temp.dir, "sub dir")}\n`);
  });

  it("fails with a clear error when the working directory does not exist", async () => {
    const missing = join(temp.dir, "missing");
    const run = await runTask(spec({ command: "pwd", cwd: missing }), options());
    expect(run.outcome).toBe("failed");
    expect(run.result.exitCode).toBeNull();
    expect(run.result.error).toBe(`working directory ${missing} does not exist`);
  });
});

describe("runTask: output caps", () => {
  it("keeps the first bytes of a large output, flags the truncation and does not block", async () => {
    // 1 MiB through a 1000-byte cap: the task must still run to completion.
    const run = await runTask(
      spec({ command: "head -c 1048576 /dev/zero | tr '\\0' a; echo done >&2", shell: true }),
      options({ outputCapBytes: 1000 }),
    );
    expect(run.outcome).toBe("succeeded");
    expect(run.result.stdout).toBe("a".repeat(1000));
    expect(run.result.stdoutTruncated).toBe(true);
    expect(run.result.stderr).toBe("done\n");
    expect(run.result.stderrTruncated).toBe(false);
  });

  it("does not cut a multi-byte character in half at the cap", async () => {
    // "é" is two bytes: a 7-byte cap keeps three of them, not three and a half.
    const run = await runTask(
      spec({ command: "printf", args: ["ééééé"] }),
      options({ outputCapBytes: 7 }),
    );
    expect(run.result.stdout).toBe("ééé");
    expect(run.result.stdoutTruncated).toBe(true);
  });

  it("keeps an output exactly at the cap whole and untruncated", async () => {
    const run = await runTask(
      spec({ command: "printf", args: ["12345"] }),
      options({ outputCapBytes: 5 }),
    );
    expect(run.result.stdout).toBe("12345");
    expect(run.result.stdoutTruncated).toBe(false);
  });
});

describe("runTask: timeouts, cancellation and the process group", () => {
  it("times out: stops the whole group, grandchildren included", async () => {
    const pidFile = join(temp.dir, "timeout-grandchild.pid");
    const run = await runTask(
      spec({ command: grandchildScript(pidFile), shell: true, timeoutMs: 300 }),
      options(),
    );
    expect(run.outcome).toBe("timed_out");
    expect(run.result.exitCode).toBeNull();
    expect(run.result.error).toBe(
      "timed out after 300 ms; its process group was stopped with SIGTERM",
    );
    expect(run.result.stdout).toBe("started\n");
    const grandchild = readPid(pidFile);
    await waitFor(() => !isAlive(grandchild), "the grandchild to die");
  });

  it("kills with SIGKILL a task that ignores SIGTERM, after the grace period", async () => {
    const pidFile = join(temp.dir, "stubborn-grandchild.pid");
    let pid = 0;
    const run = await runTask(
      // An ignored signal stays ignored in the children: sleep ignores SIGTERM too.
      spec({ command: grandchildScript(pidFile, "trap '' TERM;"), shell: true, timeoutMs: 300 }),
      options({ killGraceMs: 200, onStarted: (p) => (pid = p) }),
    );
    expect(run.outcome).toBe("timed_out");
    expect(run.result.exitCode).toBeNull();
    expect(run.result.error).toBe(
      "timed out after 300 ms; it did not exit within 200 ms of SIGTERM and was killed with SIGKILL",
    );
    expect(isAlive(pid)).toBe(false);
    const grandchild = readPid(pidFile);
    await waitFor(() => !isAlive(grandchild), "the grandchild to die");
  });

  it("cancels a running task through its AbortSignal", async () => {
    const pidFile = join(temp.dir, "cancel-grandchild.pid");
    const controller = new AbortController();
    const running = runTask(
      spec({ command: grandchildScript(pidFile), shell: true }),
      options({
        signal: controller.signal,
        onStarted: () => undefined,
      }),
    );
    await waitFor(
      () => /^\d+\n$/.test(readOrNull(pidFile) ?? ""),
      "the task to start its grandchild",
    );
    controller.abort();
    const run = await running;
    expect(run.outcome).toBe("cancelled");
    expect(run.result.exitCode).toBeNull();
    expect(run.result.error).toBe("cancelled; its process group was stopped with SIGTERM");
    const grandchild = readPid(pidFile);
    await waitFor(() => !isAlive(grandchild), "the grandchild to die");
  });

  it("does not start a task whose signal has already aborted", async () => {
    const marker = join(temp.dir, "never-created");
    const controller = new AbortController();
    controller.abort();
    const run = await runTask(
      spec({ command: "touch", args: [marker] }),
      options({ signal: controller.signal }),
    );
    expect(run.outcome).toBe("cancelled");
    expect(run.result.error).toBe("cancelled before it started");
    expect(readOrNull(marker)).toBeNull();
  });

  it("kills what a succeeded task left running in the background", async () => {
    const pidFile = join(temp.dir, "leftover.pid");
    // The background sleep keeps stdout open: the result must not wait for it.
    const run = await runTask(
      spec({ command: `sleep 1000 & echo $! > '${pidFile}'; echo bye`, shell: true }),
      options(),
    );
    expect(run.outcome).toBe("succeeded");
    expect(run.result.stdout).toBe("bye\n");
    const leftover = readPid(pidFile);
    await waitFor(() => !isAlive(leftover), "the background process to die");
  });

  it("records the running task in a registry and forgets it when it ends", async () => {
    const registry = new ProcessRegistry(join(temp.dir, "task-run"));
    const listed: string[][] = [];
    const controller = new AbortController();
    const running = runTask(spec({ command: "sleep", args: ["1000"] }), {
      ...options({ signal: controller.signal }),
      registration: { registry, key: "task-42" },
    });
    await waitFor(() => existsSync(join(temp.dir, "task-run", "task-42.json")), "the record");
    listed.push((await registry.list()).map((r) => `${r.key} ${r.command}`));
    controller.abort();
    expect((await running).outcome).toBe("cancelled");
    listed.push((await registry.list()).map((r) => r.key));
    expect(listed).toEqual([["task-42 sleep"], []]);
  });

  it("lets a task finish before its timeout", async () => {
    const run = await runTask(
      spec({ command: "echo", args: ["quick"], timeoutMs: 30_000 }),
      options(),
    );
    expect(run.outcome).toBe("succeeded");
    expect(run.result.stdout).toBe("quick\n");
  });
});

function readOrNull(path: string): string | null {
  try {
    return readFileSync(path, "utf8");
  } catch {
    return null;
  }
}
