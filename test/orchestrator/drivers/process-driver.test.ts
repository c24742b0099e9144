import { existsSync, statSync } from "node:fs";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../../src/common/errors.js";
import type { RestartPolicy, VmSpec } from "../../../src/statemachine/orchestrator/types.js";
import {
  ProcessDriver,
  type ProcessDriverOptions,
} from "../../../src/orchestrator/drivers/process-driver.js";
import { ProcessRegistry } from "../../../src/orchestrator/drivers/process-registry.js";
import type { VmHandle, VmObservation } from "../../../src/orchestrator/drivers/vm-driver.js";
import { isAlive, makeTempDir, readOrEmpty, readPid, realClock, waitFor } from "./helpers.js";

let temp: { dir: string; remove: () => void };
const started: VmHandle[] = [];
beforeAll(() => {
  temp = makeTempDir("pvm");
});
afterEach(async () => {
  // Never leave a process behind, whatever a test did.
  await Promise.all(started.splice(0).map((handle) => handle.stop({ graceMs: 100 })));
});
afterAll(() => temp.remove());

function vmSpec(command: string, restart: Partial<RestartPolicy> = {}): VmSpec {
  return {
    vcpus: 1,
    memoryMb: 64,
    diskGb: 0,
    driver: "process",
    command: "/bin/sh",
    args: ["-c", command],
    kernel: "",
    initrd: "",
    image: "",
    cmdline: "",
    requiredFeatures: [],
    antiAffinityGroup: "",
    restart: { mode: "on-failure", maxRestarts: 3, backoffMs: 20, ...restart },
  };
}

function driver(overrides: Partial<ProcessDriverOptions> = {}): ProcessDriver {
  return new ProcessDriver({ clock: realClock, logDir: join(temp.dir, "logs"), ...overrides });
}

/** Starts a VM and records every observation it reports. */
function startVm(
  d: ProcessDriver,
  name: string,
  spec: VmSpec,
  previousRestarts?: number,
): { handle: VmHandle; seen: VmObservation[]; log: () => string } {
  const seen: VmObservation[] = [];
  const handle = d.start({
    name,
    spec,
    onChange: (o) => seen.push(o),
    ...(previousRestarts === undefined ? {} : { previousRestarts }),
  });
  started.push(handle);
  return { handle, seen, log: () => readOrEmpty(join(temp.dir, "logs", `${name}.log`)) };
}

describe("ProcessDriver: restart policy", () => {
  it("restarts a crashing process with doubling backoff until maxRestarts, then fails", async () => {
    const { handle, seen, log } = startVm(driver(), "crasher", vmSpec("echo boom; exit 7"));
    const final = await handle.settled;
    expect(final).toMatchObject({
      name: "crasher",
      status: "failed",
      restarts: 3,
      lastError: "exited with code 7",
      pid: null,
      restartInMs: null,
    });
    expect(seen.filter((o) => o.restartInMs !== null).map((o) => o.restartInMs)).toEqual([
      20, 40, 80,
    ]);
    expect(seen.filter((o) => o.status === "running")).toHaveLength(4);
    // Each restart is reported: the count rises by one before each new run.
    expect([...new Set(seen.map((o) => o.restarts))]).toEqual([0, 1, 2, 3]);
    expect(log().match(/^boom$/gm)).toHaveLength(4);
    expect(log()).toContain("failed for good: exited with code 7");
  });

  it("counts previous restarts toward the limit and continues their backoff", async () => {
    const { handle, seen } = startVm(driver(), "carry-on", vmSpec("exit 1"), 2);
    expect((await handle.settled).restarts).toBe(3);
    expect(seen.filter((o) => o.restartInMs !== null).map((o) => o.restartInMs)).toEqual([80]);
  });

  it("does not restart under the never policy", async () => {
    const { handle, seen } = startVm(driver(), "once", vmSpec("exit 2", { mode: "never" }));
    expect(await handle.settled).toMatchObject({
      status: "failed",
      restarts: 0,
      lastError: "exited with code 2",
    });
    expect(seen.map((o) => o.status)).toEqual(["starting", "running", "failed"]);
  });

  it("treats a clean exit as stopped, not as a failure to restart", async () => {
    const { handle, seen } = startVm(driver(), "clean", vmSpec("echo done"));
    expect(await handle.settled).toMatchObject({ status: "stopped", restarts: 0, lastError: "" });
    expect(seen.map((o) => o.status)).toEqual(["starting", "running", "stopped"]);
  });

  it("reports a death by signal as the error", async () => {
    const { handle } = startVm(driver(), "segv", vmSpec("kill -SEGV $$", { mode: "never" }));
    expect((await handle.settled).lastError).toBe("killed by signal SIGSEGV");
  });

  it("fails a command that cannot start, applying the policy to it too", async () => {
    const spec = { ...vmSpec("", { maxRestarts: 1 }), command: "/no/such/binary", args: [] };
    const { handle } = startVm(driver(), "missing", spec);
    const final = await handle.settled;
    expect(final.status).toBe("failed");
    expect(final.restarts).toBe(1);
    expect(final.lastError).toMatch(/cannot start "\/no\/such\/binary".*ENOENT/);
  });
});

describe("ProcessDriver: stopping", () => {
  it("stops gracefully with SIGTERM to the group, the process's trap running", async () => {
    const pidFile = join(temp.dir, "graceful-child.pid");
    const { handle, log } = startVm(
      driver(),
      "graceful",
      vmSpec(
        `trap 'echo got TERM; exit 0' TERM; sleep 1000 & echo $! > '${pidFile}'; echo ready; wait`,
      ),
    );
    await waitFor(() => log().includes("ready\n"), "the VM to install its trap");
    const { pid } = handle.observe();
    const result = await handle.stop({ graceMs: 10_000 });
    expect(result.method).toBe("SIGTERM");
    expect(result.observation).toMatchObject({ status: "stopped", pid: null, lastError: "" });
    expect(log()).toContain("got TERM\n");
    expect(isAlive(pid as number)).toBe(false);
    await waitFor(() => !isAlive(readPid(pidFile)), "the VM's child to die");
  });

  it("kills a process that ignores SIGTERM once the grace period is over", async () => {
    const { handle, seen, log } = startVm(
      driver(),
      "stubborn",
      vmSpec("trap '' TERM; echo ready; while :; do sleep 1; done"),
    );
    await waitFor(() => log().includes("ready\n"), "the VM to ignore SIGTERM");
    const result = await handle.stop({ graceMs: 200 });
    expect(result.method).toBe("SIGKILL");
    // A requested stop ends stopped, even though the process died of SIGKILL.
    expect(result.observation.status).toBe("stopped");
    expect(seen.map((o) => o.status)).toEqual(["starting", "running", "stopping", "stopped"]);
  });

  it("cancels a pending restart when stopped during the backoff", async () => {
    const { handle, seen } = startVm(driver(), "backoff", vmSpec("exit 1", { backoffMs: 60_000 }));
    await waitFor(() => handle.observe().restartInMs !== null, "the first crash");
    const result = await handle.stop();
    expect(result.method).toBe("not-running");
    expect(result.observation).toMatchObject({ status: "stopped", restarts: 0 });
    expect(result.observation.lastError).toBe("exited with code 1");
    expect(seen.filter((o) => o.status === "running")).toHaveLength(1);
  });

  it("stops a VM asked to stop before it started, and a second stop gets the same answer", async () => {
    const { handle, seen } = startVm(driver(), "never-ran", vmSpec("sleep 1000"));
    const first = handle.stop();
    expect(handle.stop()).toBe(first);
    const result = await first;
    expect(result.observation.status).toBe("stopped");
    expect(seen.filter((o) => o.status === "running")).toHaveLength(0);
    expect((await handle.stop()).method).toBe("not-running");
  });

  it("answers a stop after the VM already failed with not-running", async () => {
    const { handle } = startVm(driver(), "gone", vmSpec("exit 3", { mode: "never" }));
    await handle.settled;
    const result = await handle.stop();
    expect(result).toMatchObject({ method: "not-running", observation: { status: "failed" } });
  });
});

describe("ProcessDriver: log file", () => {
  it("rotates the log at its cap, keeping one older generation", async () => {
    const { handle, log } = startVm(
      driver({ logMaxBytes: 4096 }),
      "chatty",
      vmSpec("head -c 20000 /dev/zero | tr '\\0' x", { mode: "never" }),
    );
    expect((await handle.settled).status).toBe("stopped");
    const path = join(temp.dir, "logs", "chatty.log");
    expect(statSync(path).size).toBeLessThanOrEqual(4096);
    expect(statSync(`${path}.1`).size).toBe(4096);
    expect(log()).toContain("exited with code 0");
  });
});

describe("ProcessDriver: refusing what it cannot run", () => {
  it("refuses names that cannot name files, specs of other drivers and empty commands", () => {
    const d = driver();
    const onChange = (): void => undefined;
    for (const name of ["", "..", "../etc", "a/b", ".hidden", "x".repeat(64), "with space", "é"]) {
      expect(() => d.start({ name, spec: vmSpec("true"), onChange })).toThrow(InvalidArgumentError);
    }
    expect(() =>
      d.start({ name: "q", spec: { ...vmSpec("true"), driver: "qemu" }, onChange }),
    ).toThrow(/uses the qemu driver/);
    expect(() =>
      d.start({ name: "e", spec: { ...vmSpec("true"), command: "" }, onChange }),
    ).toThrow(/has no command/);
  });
});

describe("ProcessRegistry: an agent restarted after a crash", () => {
  it("kills the VM processes its previous incarnation left running, and only those", async () => {
    const registryDir = join(temp.dir, "run");
    const pidFile = join(temp.dir, "orphan-child.pid");
    // The old agent: its VM runs, and the agent "dies" without stopping it.
    const old = startVm(
      driver({ registry: new ProcessRegistry(registryDir) }),
      "orphan",
      vmSpec(`sleep 1000 & echo $! > '${pidFile}'; echo ready; wait`, { mode: "never" }),
    );
    await waitFor(() => old.log().includes("ready\n"), "the VM to start");
    await waitFor(() => existsSync(join(registryDir, "vm-orphan.json")), "the pid record");
    const pid = old.handle.observe().pid as number;
    const childPid = readPid(pidFile);
    // A record of a process that has exited since, and one whose pid now belongs to another
    // process (this test's own pid, with a start time that does not match).
    const fresh = new ProcessRegistry(registryDir);
    await fresh.record("vm-exited", 2_147_483_000, "exited-long-ago");
    await writeRecord(registryDir, "vm-reused", process.pid, "1");

    const reaped = await fresh.reapOrphans();
    expect(reaped.map((r) => [r.record.key, r.action])).toEqual([
      ["vm-exited", "unverifiable"],
      ["vm-orphan", "killed"],
      ["vm-reused", "gone"],
    ]);
    await waitFor(() => !isAlive(pid) && !isAlive(childPid), "the orphan group to die");
    expect(isAlive(process.pid)).toBe(true);
    expect(await fresh.list()).toEqual([]);
    // The old handle sees its process die, as it would have had the agent lived.
    expect(await old.handle.settled).toMatchObject({
      status: "failed",
      lastError: "killed by signal SIGKILL",
    });
  });

  it("forgets a process once it has exited", async () => {
    const registryDir = join(temp.dir, "run-forget");
    const { handle } = startVm(
      driver({ registry: new ProcessRegistry(registryDir) }),
      "short",
      vmSpec("exit 0"),
    );
    await handle.settled;
    expect(await new ProcessRegistry(registryDir).list()).toEqual([]);
  });
});

async function writeRecord(
  dir: string,
  key: string,
  pid: number,
  startTicks: string,
): Promise<void> {
  const { writeFile } = await import("node:fs/promises");
  await writeFile(join(dir, `${key}.json`), JSON.stringify({ key, pid, startTicks, command: "x" }));
}
