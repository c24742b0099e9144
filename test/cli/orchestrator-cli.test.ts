/**
 * The worker, task and VM commands, run in-process through `main()` against an API server whose
 * orchestrator is a fake node: parsing (the `--` separator, repeatable flags, units), output for
 * people and for scripts, and the exit codes of `--wait`.
 */
import { InvalidArgumentError } from "commander";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { main } from "../../src/cli/main.js";
import {
  collectEnv,
  collectFeatures,
  parseCpu,
  parseNonNegativeInt,
} from "../../src/cli/commands/orchestrator-flags.js";
import { parseDuration } from "../../src/cli/options.js";
import { commandLine, formatCpu } from "../../src/cli/commands/orchestrator-format.js";
import { taskExitCode } from "../../src/cli/commands/task-exit-codes.js";
import type { Task } from "../../src/client/index.js";
import type { TaskSpec } from "../../src/statemachine/orchestrator/types.js";
import { until } from "../api/harness.js";
import { startFakeApi, type FakeApi, type FakeOutcome } from "../api/orchestrator-fakes.js";

interface Run {
  readonly code: number;
  readonly stdout: string;
  readonly stderr: string;
}

const text = (chunk: unknown): string =>
  typeof chunk === "string" ? chunk : Buffer.from(chunk as Uint8Array).toString();

/** Runs `blixard ...args` in this process, capturing what it writes. */
async function blixard(...args: string[]): Promise<Run> {
  let stdout = "";
  let stderr = "";
  const out = vi.spyOn(process.stdout, "write").mockImplementation((chunk: unknown) => {
    stdout += text(chunk);
    return true;
  });
  const err = vi.spyOn(process.stderr, "write").mockImplementation((chunk: unknown) => {
    stderr += text(chunk);
    return true;
  });
  try {
    const code = await main(["node", "blixard", ...args]);
    return { code, stdout, stderr };
  } finally {
    out.mockRestore();
    err.mockRestore();
  }
}

/** How the fake ends a task, by its command: the commands below stand for outcomes. */
const OUTCOMES: Record<string, FakeOutcome> = {
  ok: { status: "succeeded", result: { exitCode: 0, stdout: "hello\n", durationMs: 12 } },
  fail3: { status: "failed", result: { exitCode: 3, stdout: "partial\n", stderr: "boom\n" } },
  slow: { status: "timed_out", result: { error: "killed after the 5000 ms timeout (SIGTERM)" } },
  gone: { status: "lost", result: { error: "node 2 went offline" } },
  nostart: { status: "failed", result: { exitCode: null, error: "spawn nostart ENOENT" } },
  killed: { status: "failed", result: { exitCode: null, error: "killed by SIGKILL" } },
  cancel: { status: "cancelled", result: { error: "cancelled by a user" } },
  chatty: {
    status: "succeeded",
    result: { exitCode: 0, stdout: "a lot", stdoutTruncated: true, stderr: "warn\n" },
  },
};

describe("blixard worker, task and vm commands", () => {
  let api: FakeApi;
  const savedEndpoints = process.env["BLIXARD_ENDPOINTS"];
  beforeAll(async () => {
    api = await startFakeApi();
    api.node.addWorker(1, {
      features: ["cgroups", "raw_exec", "ssd"],
      capacity: { cpuMillis: 4000, memoryMb: 8192, diskGb: 50 },
    });
    api.node.addWorker(2, { features: ["raw_exec"] });
    api.node.addWorker(3, { features: [] });
    api.node.autoFinish = (task) => OUTCOMES[task.spec.command];
    process.env["BLIXARD_ENDPOINTS"] = api.url.href;
  });
  afterAll(async () => {
    if (savedEndpoints === undefined) delete process.env["BLIXARD_ENDPOINTS"];
    else process.env["BLIXARD_ENDPOINTS"] = savedEndpoints;
    await api.close();
  });

  function lastSpec(): TaskSpec {
    const command = api.node.proposals.at(-1)?.command;
    if (command?.type !== "submitTask") throw new Error(`last proposal is ${command?.type}`);
    return command.spec;
  }

  describe("task submit", () => {
    it("prints only the new id, and passes everything after -- as the command", async () => {
      const run = await blixard("task", "submit", "--", "echo", "hello", "--flag", "-x");
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(/^task-\d{4}\n$/);
      expect(lastSpec()).toMatchObject({ command: "echo", args: ["hello", "--flag", "-x"] });
      const got = api.node.queries.task(run.stdout.trim());
      expect(got?.spec.command).toBe("echo");
    });

    it("turns flags into the spec: cores to millicores, repeatable --env and --feature", async () => {
      const run = await blixard(
        "task",
        "submit",
        "--cpu",
        "0.5",
        "--memory",
        "128",
        "--disk",
        "2",
        "--feature",
        "ssd",
        "--feature",
        "kvm,gpu",
        "--env",
        "A=1",
        "--env",
        "B=x=y",
        "--env",
        "EMPTY=",
        "--env",
        "A=2",
        "--cwd",
        "/srv",
        "--kill-after",
        "5000",
        "--max-attempts",
        "2",
        "--",
        "make",
        "all",
      );
      expect(run.code).toBe(0);
      expect(lastSpec()).toEqual({
        command: "make",
        args: ["all"],
        env: { A: "2", B: "x=y", EMPTY: "" },
        cwd: "/srv",
        shell: false,
        resources: { cpuMillis: 500, memoryMb: 128, diskGb: 2 },
        requiredFeatures: ["ssd", "kvm", "gpu"],
        timeoutMs: 5000,
        maxAttempts: 2,
      });
    });

    it("leaves unset flags to the node's defaults and accepts millicores", async () => {
      expect((await blixard("task", "submit", "--cpu", "250m", "uptime")).code).toBe(0);
      expect(lastSpec()).toMatchObject({
        command: "uptime",
        args: [],
        resources: { cpuMillis: 250, memoryMb: 256, diskGb: 0 },
        maxAttempts: 3,
      });
    });

    it("joins the operands into one script with --shell", async () => {
      expect((await blixard("task", "submit", "--shell", "--", "echo $HOME", "|", "wc")).code).toBe(
        0,
      );
      expect(lastSpec()).toMatchObject({ command: "echo $HOME | wc", args: [], shell: true });
    });

    it("prints the whole task with --json", async () => {
      const run = await blixard("task", "submit", "--json", "--", "date");
      const task = JSON.parse(run.stdout) as Task;
      expect(task).toMatchObject({ spec: { command: "date" }, status: "assigned", nodeId: 1 });
    });

    it("refuses bad flags as usage errors (exit 64) without contacting the node", async () => {
      const before = api.node.proposals.length;
      const cases: [string[], RegExp][] = [
        [["--env", "NOEQUALS", "x"], /NAME=VALUE/],
        [["--env", "1A=b", "x"], /NAME=VALUE/],
        [["--cpu", "-1", "x"], /CPU amount/],
        [["--cpu", "0.0001", "x"], /CPU amount/],
        [["--cpu", "two", "x"], /CPU amount/],
        [["--memory", "-5", "x"], /integer/],
        [["--memory", "1.5", "x"], /integer/],
        [["--feature", "needs space", "x"], /feature name/],
        [["--max-attempts", "0", "x"], /positive integer/],
        [[], /missing required argument 'command'/],
      ];
      for (const [args, message] of cases) {
        const run = await blixard("task", "submit", ...args);
        expect({ args, code: run.code }).toEqual({ args, code: 64 });
        expect(run.stderr).toMatch(message);
      }
      expect(api.node.proposals.length).toBe(before);
    });

    it("reports the node's refusal of a bad spec with exit 2 and the field's name", async () => {
      const run = await blixard("task", "submit", "--kill-after", "9999999999", "--", "ls");
      expect(run.code).toBe(2);
      expect(run.stderr).toMatch(/^error: .*spec\/timeoutMs must be <= .*\[INVALID_ARGUMENT\]\n$/);
      const big = await blixard(
        "task",
        "submit",
        "--",
        "x",
        ...Array.from({ length: 300 }, () => "a"),
      );
      expect(big.code).toBe(14);
      expect(big.stderr).toMatch(/args has 300 items.*\[TOO_LARGE\]/);
    });
  });

  describe("task submit --wait and task wait", () => {
    const cases: [string, number, string, RegExp, string[]][] = [
      ["ok", 0, "hello\n", /^$/, []],
      ["fail3", 3, "partial\n", /^boom\ntask \S+ failed with exit code 3\n$/, []],
      ["slow", 124, "", /timed out after 5\.0 s: killed after/, ["--kill-after", "5000"]],
      ["gone", 125, "", /was lost with its node after 1 attempt\(s\): node 2 went offline/, []],
      ["nostart", 127, "", /failed: spawn nostart ENOENT/, []],
      ["killed", 137, "", /failed: killed by SIGKILL/, []],
      ["cancel", 130, "", /was cancelled: cancelled by a user/, []],
    ];
    for (const [command, exitCode, stdout, stderr, flags] of cases) {
      it(`exits ${exitCode} for a task that ends like "${command}"`, async () => {
        const run = await blixard("task", "submit", "--wait", ...flags, "--", command);
        expect(run.code).toBe(exitCode);
        expect(run.stdout).toBe(stdout);
        expect(run.stderr).toMatch(stderr);
      });
    }

    it("prints the ended task as JSON with --json, with the same exit code", async () => {
      const run = await blixard("task", "submit", "--wait", "--json", "--", "fail3");
      expect(run.code).toBe(3);
      const task = JSON.parse(run.stdout) as Task;
      expect(task).toMatchObject({ status: "failed", result: { exitCode: 3, stderr: "boom\n" } });
      expect(run.stderr).toBe("");
    });

    it("notes truncated output on stderr", async () => {
      const run = await blixard("task", "submit", "--wait", "--", "chatty");
      expect(run.code).toBe(0);
      expect(run.stdout).toBe("a lot");
      expect(run.stderr).toBe("warn\n(stdout truncated: over the node's output cap)\n");
    });

    it("waits for a task submitted earlier until it ends", async () => {
      const id = (await blixard("task", "submit", "--", "later")).stdout.trim();
      const waiting = blixard("task", "wait", id);
      await until(() => (api.service.waiters > 0 ? true : undefined), "the CLI's long-poll");
      api.node.finish(id, { status: "failed", result: { exitCode: 42, stdout: "done\n" } });
      const run = await waiting;
      expect(run.code).toBe(42);
      expect(run.stdout).toBe("done\n");
    });

    it("gives up with TIMEOUT (exit 11) after --timeout, and the task goes on", async () => {
      const id = (await blixard("task", "submit", "--", "forever")).stdout.trim();
      const run = await blixard("task", "wait", "--timeout", "300", id);
      expect(run.code).toBe(11);
      expect(run.stderr).toMatch(/did not end within 300 ms.*\[TIMEOUT\]/);
      expect(api.node.queries.task(id)?.status).toBe("assigned");
    });

    it("exits 3 for an unknown task", async () => {
      const run = await blixard("task", "wait", "no-such-task");
      expect(run.code).toBe(3);
      expect(run.stderr).toMatch(/\[NOT_FOUND\]/);
    });
  });

  describe("task list, get, logs, cancel", () => {
    it("lists tasks as a table, pages with --limit and --after, and filters", async () => {
      const a = (await blixard("task", "submit", "--", "sleep", "1")).stdout.trim();
      const b = (await blixard("task", "submit", "--", "sleep", "2")).stdout.trim();
      const table = await blixard("task", "list", "--status", "assigned");
      expect(table.code).toBe(0);
      expect(table.stdout.split("\n")[0]).toMatch(
        /^ID\s+STATUS\s+NODE\s+ATTEMPTS\s+EXIT\s+COMMAND$/,
      );
      expect(table.stdout).toMatch(new RegExp(`${a}\\s+assigned\\s+1\\s+1/3\\s+-\\s+sleep 1`));
      const all = JSON.parse((await blixard("task", "list", "--json", "--limit", "1000")).stdout);
      const ids = all.tasks.map((t: Task) => t.id) as string[];
      const before = ids[ids.indexOf(a) - 1];
      const page = await blixard("task", "list", "--json", "--limit", "1", "--after", before ?? "");
      expect(JSON.parse(page.stdout)).toMatchObject({
        tasks: [{ id: a }],
        more: true,
        nextAfter: a,
      });
      const human = await blixard("task", "list", "--limit", "1", "--after", a);
      expect(human.stdout).toContain(b);
      expect(human.stderr).toBe("");
      const more = await blixard("task", "list", "--limit", "1", "--after", before ?? "");
      expect(more.stderr).toBe(`(more: --after ${a})\n`);
      expect((await blixard("task", "list", "--status", "done")).code).toBe(64);
    });

    it("shows one task's details, and its logs on stdout and stderr", async () => {
      const run = await blixard("task", "submit", "--wait", "--", "fail3");
      expect(run.code).toBe(3);
      const id = api.node.queries.tasks({ limit: 1000 }).at(-1)?.id ?? "";
      const details = await blixard("task", "get", id);
      expect(details.stdout).toMatch(/status\s+failed/);
      expect(details.stdout).toMatch(/command\s+fail3/);
      expect(details.stdout).toMatch(/exit code\s+3/);
      expect(details.stdout).toMatch(/resources\s+cpu 1, 256 MB, 0 GB/);
      const logs = await blixard("task", "logs", id);
      expect(logs).toEqual({ code: 0, stdout: "partial\n", stderr: "boom\n" });
      const json = JSON.parse((await blixard("task", "logs", "--json", id)).stdout);
      expect(json).toMatchObject({ id, available: true, stdout: "partial\n" });
    });

    it("says when a task has no output yet", async () => {
      const id = (await blixard("task", "submit", "--", "busy")).stdout.trim();
      const logs = await blixard("task", "logs", id);
      expect(logs).toEqual({
        code: 0,
        stdout: "",
        stderr: `task ${id} is assigned and has no output yet\n`,
      });
    });

    it("cancels a task; cancelling an ended one is CONFLICT (exit 4)", async () => {
      const id = (await blixard("task", "submit", "--", "busy")).stdout.trim();
      expect((await blixard("task", "cancel", id)).stdout).toBe(
        `task ${id}: cancel requested; node 1 stops it (it is assigned)\n`,
      );
      expect((await blixard("task", "get", id)).stdout).toMatch(/cancel\s+requested/);
      api.node.finish(id, { status: "cancelled" });
      const again = await blixard("task", "cancel", id);
      expect(again.code).toBe(4);
      expect((await blixard("task", "get", "missing")).code).toBe(3);
    });
  });

  describe("vm", () => {
    it("creates a process VM from the operands after --, with its flags", async () => {
      const run = await blixard(
        "vm",
        "create",
        "web-1",
        "--driver",
        "process",
        "--vcpus",
        "2",
        "--memory",
        "64",
        "--feature",
        "ssd",
        "--anti-affinity",
        "web",
        "--restart",
        "never",
        "--max-restarts",
        "0",
        "--backoff-ms",
        "10",
        "--",
        "/usr/bin/python3",
        "-m",
        "http.server",
      );
      expect(run).toEqual({
        code: 0,
        stdout: "vm web-1 created: desired running, pending\n",
        stderr: "",
      });
      expect(api.node.queries.vm("web-1")?.spec).toEqual({
        vcpus: 2,
        memoryMb: 64,
        diskGb: 0,
        driver: "process",
        command: "/usr/bin/python3",
        args: ["-m", "http.server"],
        kernel: "",
        initrd: "",
        image: "",
        cmdline: "",
        requiredFeatures: ["ssd"],
        antiAffinityGroup: "web",
        restart: { mode: "never", maxRestarts: 0, backoffMs: 10 },
      });
    });

    it("creates a stopped qemu VM; a duplicate name exits 4 CONFLICT", async () => {
      const run = await blixard(
        "vm",
        "create",
        "micro",
        "--driver",
        "qemu",
        "--kernel",
        "/boot/vmlinux",
        "--cmdline",
        "console=ttyS0 quiet",
        "--stopped",
        "--json",
      );
      expect(run.code).toBe(0);
      expect(JSON.parse(run.stdout)).toMatchObject({
        name: "micro",
        desired: "stopped",
        spec: { driver: "qemu", kernel: "/boot/vmlinux", cmdline: "console=ttyS0 quiet" },
      });
      const again = await blixard("vm", "create", "micro", "--driver", "qemu", "--image", "/d.img");
      expect(again.code).toBe(4);
      expect(again.stderr).toMatch(/micro.*\[CONFLICT\]/);
    });

    it("refuses bad VM input: usage errors (64) locally, spec errors (2) from the node", async () => {
      const missingDriver = await blixard("vm", "create", "x", "--", "/bin/true");
      expect(missingDriver.code).toBe(64);
      expect(missingDriver.stderr).toMatch(/--driver/);
      expect((await blixard("vm", "create", "x", "--driver", "docker")).code).toBe(64);
      const noCommand = await blixard("vm", "create", "x", "--driver", "process");
      expect(noCommand.code).toBe(2);
      expect(noCommand.stderr).toMatch(/spec\.command is required by the process driver/);
      const badName = await blixard(
        "vm",
        "create",
        "Bad_Name",
        "--driver",
        "process",
        "--",
        "/bin/true",
      );
      expect(badName.code).toBe(2);
      expect(badName.stderr).toMatch(/name/);
      const kernelOnProcess = await blixard(
        "vm",
        "create",
        "y",
        "--driver",
        "process",
        "--kernel",
        "/k",
        "--",
        "/bin/true",
      );
      expect(kernelOnProcess.stderr).toMatch(/kernel is a qemu setting.*\[INVALID_ARGUMENT\]/);
    });

    it("lists, shows, stops, starts and deletes VMs", async () => {
      await blixard("vm", "create", "svc", "--driver", "process", "--", "/bin/sleep", "1000");
      const list = await blixard("vm", "list");
      expect(list.stdout.split("\n")[0]).toMatch(/^NAME\s+DESIRED\s+STATUS\s+NODE\s+DRIVER/);
      expect(list.stdout).toMatch(/svc\s+running\s+pending\s+-\s+process\s+1\s+256\s+0/);
      const get = await blixard("vm", "get", "svc");
      expect(get.stdout).toMatch(/command\s+\/bin\/sleep 1000/);
      expect(get.stdout).toMatch(/restart\s+on-failure, at most 5, backoff from 1\.0 s/);
      expect((await blixard("vm", "stop", "svc")).stdout).toBe(
        "vm svc: desired stopped, pending\n",
      );
      expect((await blixard("vm", "start", "svc")).stdout).toBe(
        "vm svc: desired running, pending\n",
      );
      expect((await blixard("vm", "delete", "svc")).stdout).toBe("vm svc deleted\n");
      expect((await blixard("vm", "get", "svc")).code).toBe(3);
      const json = JSON.parse((await blixard("vm", "list", "--json")).stdout);
      expect(json.vms.map((v: { name: string }) => v.name)).not.toContain("svc");
    });
  });

  describe("worker", () => {
    it("lists workers with allocation over capacity", async () => {
      const run = await blixard("worker", "list");
      expect(run.code).toBe(0);
      expect(run.stdout).toMatch(
        /^NODE\s+STATUS\s+CPU\s+MEMORY MB\s+DISK GB\s+LIMITS\s+FEATURES\n/,
      );
      expect(run.stdout).toMatch(
        /\n1\s+online\s+0\/4\s+0\/8192\s+0\/50\s+enforced\s+cgroups,raw_exec,ssd\n/,
      );
      // Raw exec without cgroups: said plainly; no raw exec: nothing to limit.
      expect(run.stdout).toMatch(/\n2\s+online\s+.*\s+NOT enforced\s+raw_exec\n/);
      expect(run.stdout).toMatch(/\n3\s+online\s+.*\s+-\s+-\n/);
      const json = JSON.parse(
        (await blixard("worker", "list", "--json", "--consistency", "stale")).stdout,
      );
      expect(json.workers).toHaveLength(3);
      expect(api.node.barriers.at(-1)).toBe("stale");
    });

    it("drains and undrains a worker; an unknown one exits 3", async () => {
      // Node 3 runs no raw work, so nothing is on it: drained at once, the command returns.
      expect((await blixard("worker", "drain", "3", "--deadline", "5m")).stdout).toBe(
        "worker 3 is drained; moved 0 tasks and 0 VMs to other workers\n",
      );
      expect((await blixard("worker", "get", "3")).stdout).toMatch(/status\s+drained/);
      expect((await blixard("worker", "undrain", "3")).stdout).toBe("worker 3 is online\n");
      expect((await blixard("worker", "drain", "9")).code).toBe(3);
      expect((await blixard("worker", "drain", "zero")).code).toBe(64);
      for (const deadline of ["5", "5 minutes", "-1s", "31d"]) {
        const bad = await blixard("worker", "drain", "1", "--deadline", deadline);
        expect(bad.code, deadline).toBe(64);
        expect(bad.stderr, deadline).toContain("--deadline");
      }
    });
  });

  it("lists the new command groups in --help", async () => {
    const run = await blixard("--help");
    for (const group of ["worker", "task", "vm"])
      expect(run.stdout).toMatch(new RegExp(`\\n\\s+${group} `));
    const submitHelp = await blixard("task", "submit", "--help");
    expect(submitHelp.stdout).toContain("124 timed out");
  });
});

describe("flag parsers and exit codes", () => {
  it("parses durations with units, alone or in a row, and refuses bare numbers", () => {
    expect(parseDuration("0")).toBe(0);
    expect(parseDuration("500ms")).toBe(500);
    expect(parseDuration("30s")).toBe(30_000);
    expect(parseDuration("5m")).toBe(300_000);
    expect(parseDuration("1h30m")).toBe(5_400_000);
    expect(parseDuration(" 2d ")).toBe(172_800_000);
    for (const bad of ["", "5", "1.5s", "5 m", "m", "1h 30m", "-1s", "5mm", "1y"]) {
      expect(() => parseDuration(bad), bad).toThrow(/not a duration/);
    }
  });

  it("parses CPU as cores or millicores", () => {
    expect(parseCpu("1")).toBe(1000);
    expect(parseCpu("0.25")).toBe(250);
    expect(parseCpu("2.125")).toBe(2125);
    expect(parseCpu("750m")).toBe(750);
    expect(parseCpu("0")).toBe(0);
    for (const bad of ["", "-1", "1.2345", "1e3", "0x10", "m", "1.5m", "2000000000000"]) {
      expect(() => parseCpu(bad), bad).toThrow(InvalidArgumentError);
    }
  });

  it("parses integers ≥ 0, environment pairs and feature lists", () => {
    expect(parseNonNegativeInt("0")).toBe(0);
    expect(() => parseNonNegativeInt("-1")).toThrow(InvalidArgumentError);
    expect(collectEnv("A=b=c")).toEqual({ A: "b=c" });
    expect(collectEnv("_X=", { A: "1" })).toEqual({ A: "1", _X: "" });
    expect(() => collectEnv("=v")).toThrow(InvalidArgumentError);
    expect(collectFeatures("a, b", ["a"])).toEqual(["a", "b"]);
    expect(() => collectFeatures(",")).toThrow(InvalidArgumentError);
  });

  it("maps each way a task ends to its documented exit code", () => {
    const base = {
      id: "t",
      cancelRequested: false,
      spec: {} as Task["spec"],
      nodeId: 1,
      attempts: 1,
      pendingReason: "",
      submittedAtMs: 0,
      updatedAtMs: 0,
    };
    const result = (exitCode: number | null, error = "") => ({
      exitCode,
      stdout: "",
      stderr: "",
      stdoutTruncated: false,
      stderrTruncated: false,
      durationMs: 0,
      error,
    });
    const code = (status: Task["status"], r: Task["result"] = null) =>
      taskExitCode({ ...base, status, result: r });
    expect(code("succeeded", result(0))).toBe(0);
    expect(code("failed", result(7))).toBe(7);
    expect(code("failed", result(0))).toBe(1);
    expect(code("failed", result(300))).toBe(1);
    expect(code("failed", result(null, "spawn ENOENT"))).toBe(127);
    expect(code("failed", result(null, "killed by SIGSEGV"))).toBe(139);
    expect(code("failed", null)).toBe(127);
    expect(code("timed_out")).toBe(124);
    expect(code("lost")).toBe(125);
    expect(code("cancelled")).toBe(130);
    expect(code("running")).toBeUndefined();
    expect(code("pending")).toBeUndefined();
  });

  it("formats CPU and command lines for people", () => {
    expect(formatCpu(1500)).toBe("1.5");
    expect(commandLine("sh", ["-c", "echo 'hi' there", ""])).toBe(
      `sh -c 'echo '\\''hi'\\'' there' ''`,
    );
  });
});
