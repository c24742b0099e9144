/**
 * The qemu driver against a fake QEMU (always) and a real `qemu-system-x86_64 -M microvm` under
 * TCG (when the binary is installed). Without the binary the real-QEMU tests are skipped, unless
 * BLIXARD_REQUIRE_QEMU=1 makes a missing binary a failure.
 */
import { existsSync, readFileSync, truncateSync, writeFileSync } from "node:fs";
import { rmdir } from "node:fs/promises";
import { kvmUsable } from "../../../src/orchestrator/host/probe.js";
import { join } from "node:path";
import { afterAll, afterEach, beforeAll, describe, expect, it } from "vitest";
import { InvalidArgumentError } from "../../../src/common/errors.js";
import { findOnPath } from "../../../src/orchestrator/host/probe.js";
import {
  QemuDriver,
  type QemuDriverOptions,
} from "../../../src/orchestrator/drivers/qemu-driver.js";
import { detectCgroups, type CgroupDetection } from "../../../src/orchestrator/confine/cgroups.js";
import {
  QEMU_MEMORY_OVERHEAD_MB,
  qemuLimits,
} from "../../../src/orchestrator/drivers/qemu-cgroup.js";
import type { RestartPolicy, VmSpec } from "../../../src/statemachine/orchestrator/types.js";
import type { VmHandle, VmObservation } from "../../../src/orchestrator/drivers/vm-driver.js";
import { isAlive, makeTempDir, readOrEmpty, realClock, waitFor, writeFakeQemu } from "./helpers.js";

const REAL_QEMU = await findOnPath("qemu-system-x86_64", process.env["PATH"] ?? "");
const REQUIRE_QEMU = process.env["BLIXARD_REQUIRE_QEMU"] === "1";

let temp: { dir: string; remove: () => void };
let fakeBinary: string;
let disk: string;
const started: VmHandle[] = [];

beforeAll(() => {
  temp = makeTempDir("qemu");
  fakeBinary = writeFakeQemu(temp.dir);
  // An empty disk: the firmware finds nothing to boot and the machine idles.
  disk = join(temp.dir, "empty disk.img");
  writeFileSync(disk, "");
  truncateSync(disk, 1024 * 1024);
});
afterEach(async () => {
  await Promise.all(started.splice(0).map((handle) => handle.stop({ graceMs: 100 })));
});
afterAll(() => temp.remove());

function qemuSpec(restart: Partial<RestartPolicy> = {}): VmSpec {
  return {
    vcpus: 1,
    memoryMb: 64,
    diskGb: 0,
    driver: "qemu",
    command: "",
    args: [],
    kernel: "",
    initrd: "",
    image: disk,
    cmdline: "",
    requiredFeatures: [],
    antiAffinityGroup: "",
    restart: { mode: "never", maxRestarts: 0, backoffMs: 20, ...restart },
  };
}

function fakeDriver(mode: string, overrides: Partial<QemuDriverOptions> = {}): QemuDriver {
  return new QemuDriver({
    clock: realClock,
    runDir: join(temp.dir, "run"),
    logDir: join(temp.dir, "logs"),
    binary: fakeBinary,
    accel: "tcg",
    quitTimeoutMs: 300,
    baseEnv: {
      PATH: process.env["PATH"] ?? "/usr/bin:/bin",
      HOME: temp.dir,
      FAKE_QEMU_MODE: mode,
      FAKE_QEMU_ARGS_FILE: join(temp.dir, `args-${mode}.json`),
    },
    ...overrides,
  });
}

function startVm(
  driver: QemuDriver,
  name: string,
  spec: VmSpec = qemuSpec(),
): { handle: VmHandle; seen: VmObservation[]; log: () => string } {
  const seen: VmObservation[] = [];
  const handle = driver.start({ name, spec, onChange: (o) => seen.push(o) });
  started.push(handle);
  return { handle, seen, log: () => readOrEmpty(join(temp.dir, "logs", `${name}.log`)) };
}

async function running(handle: VmHandle): Promise<number> {
  await waitFor(() => handle.observe().status !== "starting", `${handle.name} to leave starting`);
  expect(handle.observe().status).toBe("running");
  return handle.observe().pid as number;
}

describe("QemuDriver with a fake QEMU: the stop sequence", () => {
  it("is running once QMP answers, and stops by system_powerdown when the guest obeys", async () => {
    const driver = fakeDriver("powerdown");
    const { handle, seen, log } = startVm(driver, "obedient");
    const pid = await running(handle);
    // A disk-only VM has no guest agent channel: exec says so, and once stopped that it runs not.
    const exec = { command: "true", timeoutMs: 1000 };
    await expect(driver.exec("obedient", exec)).rejects.toThrow(/no guest agent channel/);
    const result = await handle.stop({ graceMs: 10_000 });
    expect(result.method).toBe("powerdown");
    expect(result.observation).toMatchObject({ status: "stopped", pid: null, lastError: "" });
    expect(seen.map((o) => o.status)).toEqual(["starting", "running", "stopping", "stopped"]);
    expect(isAlive(pid)).toBe(false);
    expect(log()).toContain("fake guest console: booting");
    expect(log()).toContain('qmp event SHUTDOWN {"guest":true,"reason":"guest-shutdown"}');
    await expect(driver.exec("obedient", exec)).rejects.toThrow(/does not run on this node/);
  });

  it("tells QEMU to quit when the guest ignores the powerdown for the grace period", async () => {
    const { handle } = startVm(fakeDriver("quit-only"), "ignores-acpi");
    await running(handle);
    const result = await handle.stop({ graceMs: 200 });
    expect(result.method).toBe("quit");
    expect(result.observation.status).toBe("stopped");
  });

  it("kills a QEMU that answers nothing and ignores SIGTERM", async () => {
    const { handle, log } = startVm(fakeDriver("deaf"), "deaf");
    const pid = await running(handle);
    const result = await handle.stop({ graceMs: 100 });
    expect(result.method).toBe("SIGKILL");
    expect(result.observation.status).toBe("stopped");
    expect(isAlive(pid)).toBe(false);
    expect(log()).toContain("QEMU did not exit; SIGKILL");
  });

  it("passes the command line it built, with the socket in the run directory", async () => {
    const { handle } = startVm(fakeDriver("powerdown"), "argv");
    await running(handle);
    const argv = JSON.parse(
      readFileSync(join(temp.dir, "args-powerdown.json"), "utf8"),
    ) as string[];
    expect(argv).toContain(
      `socket,id=qmp0,path=${join(temp.dir, "run", "argv.qmp")},server=on,wait=off`,
    );
    // No disk directory: the base is attached read-only.
    expect(argv).toContain(
      `id=disk0,node-name=disk0fmt,file=${disk},format=raw,if=none,readonly=on`,
    );
    expect(argv.slice(argv.indexOf("-accel"), argv.indexOf("-accel") + 2)).toEqual([
      "-accel",
      "tcg",
    ]);
  });
});

describe("QemuDriver with a fake QEMU: runs that end by themselves", () => {
  it("reports a guest that powers off by itself as stopped, not restarted", async () => {
    const { handle } = startVm(
      fakeDriver("guest-shutdown"),
      "self-off",
      qemuSpec({ mode: "on-failure", maxRestarts: 3 }),
    );
    expect(await handle.settled).toMatchObject({ status: "stopped", restarts: 0 });
  });

  it("restarts a crashing QEMU under on-failure up to the limit", async () => {
    const { handle, seen } = startVm(
      fakeDriver("crash"),
      "crashy",
      qemuSpec({ mode: "on-failure", maxRestarts: 2, backoffMs: 10 }),
    );
    const final = await handle.settled;
    expect(final).toMatchObject({ status: "failed", restarts: 2 });
    expect(final.lastError).toMatch(/exited with code 3/);
    expect(seen.filter((o) => o.restartInMs !== null).map((o) => o.restartInMs)).toEqual([10, 20]);
  });

  it("fails a QEMU that dies at start, quoting what it printed", async () => {
    const { handle } = startVm(fakeDriver("die-at-start"), "kvm-refused");
    const final = await handle.settled;
    expect(final.status).toBe("failed");
    expect(final.lastError).toBe(
      "QEMU exited with code 1 before its monitor answered: qemu-system-x86_64: -accel kvm: failed to initialize kvm: Permission denied",
    );
  });

  it("gives up on a QEMU whose monitor never appears within the start timeout, and kills it", async () => {
    // The fake opens its socket only after 60 s.
    const { handle } = startVm(
      new QemuDriver({
        clock: realClock,
        runDir: join(temp.dir, "run"),
        logDir: join(temp.dir, "logs"),
        binary: fakeBinary,
        accel: "tcg",
        startTimeoutMs: 300,
        baseEnv: { PATH: "/usr/bin:/bin", HOME: temp.dir, FAKE_QEMU_DELAY_MS: "60000" },
      }),
      "late",
    );
    const final = await handle.settled;
    expect(final.status).toBe("failed");
    expect(final.lastError).toMatch(/within 300 ms; QEMU was killed/);
  });

  it("fails the start when the disk image does not exist", async () => {
    const spec = { ...qemuSpec(), image: join(temp.dir, "missing.img") };
    const { handle } = startVm(fakeDriver("powerdown"), "no-disk", spec);
    const final = await handle.settled;
    expect(final.status).toBe("failed");
    expect(final.lastError).toMatch(/the disk image .*missing\.img cannot be read \(ENOENT\)/);
  });

  it("refuses at once a spec it can never run", () => {
    const driver = fakeDriver("powerdown");
    const onChange = (): void => undefined;
    expect(() => driver.start({ name: "x", spec: { ...qemuSpec(), image: "" }, onChange })).toThrow(
      InvalidArgumentError,
    );
    expect(() =>
      driver.start({ name: "x", spec: { ...qemuSpec(), driver: "process" }, onChange }),
    ).toThrow(/uses the process driver/);
    const health = {
      tcpPort: 80,
      command: "",
      intervalMs: 1000,
      timeoutMs: 500,
      failureThreshold: 1,
    };
    expect(() => driver.start({ name: "x", spec: { ...qemuSpec(), health }, onChange })).toThrow(
      /a health check needs a VM that boots a kernel/,
    );
    const longRun = new QemuDriver({
      clock: realClock,
      runDir: `/tmp/${"r".repeat(100)}`,
      logDir: join(temp.dir, "logs"),
    });
    expect(() => longRun.start({ name: "x", spec: qemuSpec(), onChange })).toThrow(
      /give the driver a shorter run directory/,
    );
  });
});

describe.runIf(REAL_QEMU !== null)("QemuDriver with a real qemu-system-x86_64 (TCG)", () => {
  function realDriver(): QemuDriver {
    return new QemuDriver({
      clock: realClock,
      runDir: join(temp.dir, "real-run"),
      logDir: join(temp.dir, "logs"),
      accel: "tcg",
      quitTimeoutMs: 300,
      // A loaded CI machine can take a while to bring TCG up.
      startTimeoutMs: 60_000,
    });
  }

  it("starts a microvm, reaches QMP, and stops it through QMP (the guest has no ACPI: quit)", async () => {
    const { handle, log } = startVm(realDriver(), "real-qmp");
    const pid = await running(handle);
    expect(readFileSync(`/proc/${pid}/cmdline`, "utf8")).toContain("microvm");
    const result = await handle.stop({ graceMs: 300 });
    // Nothing in the empty disk answers the ACPI power button, so QEMU is told to quit.
    expect(result.method).toBe("quit");
    expect(result.observation.status).toBe("stopped");
    expect(isAlive(pid)).toBe(false);
    expect(log()).toMatch(/qmp event POWERDOWN/);
    expect(log()).toMatch(/qmp event SHUTDOWN \{"guest":false,"reason":"host-qmp-quit"\}/);
  });

  it("runs with the default accelerator choice: KVM when usable (host CPU, or QEMU's default model where the host model cannot run), else TCG", async () => {
    const driver = new QemuDriver({
      clock: realClock,
      runDir: join(temp.dir, "real-run"),
      logDir: join(temp.dir, "logs"),
      quitTimeoutMs: 300,
      startTimeoutMs: 60_000,
    });
    const { handle, log } = startVm(driver, "real-auto");
    const pid = await running(handle);
    const cmdline = readFileSync(`/proc/${pid}/cmdline`, "utf8").split("\0");
    expect(cmdline).toContain((await kvmUsable()) ? "kvm" : "tcg");
    const result = await handle.stop({ graceMs: 300 });
    expect(result.observation.status, log()).toBe("stopped");
    expect(isAlive(pid)).toBe(false);
  });

  it("kills a real QEMU that cannot answer (stopped with SIGSTOP)", async () => {
    const { handle } = startVm(realDriver(), "real-frozen");
    const pid = await running(handle);
    process.kill(pid, "SIGSTOP");
    const result = await handle.stop({ graceMs: 200 });
    expect(result.method).toBe("SIGKILL");
    expect(result.observation.status).toBe("stopped");
    expect(isAlive(pid)).toBe(false);
  });
});

// Registered only when it must fail, so a machine with QEMU reports no skipped test for it.
if (REAL_QEMU === null && REQUIRE_QEMU) {
  it("qemu-system-x86_64 is on PATH (BLIXARD_REQUIRE_QEMU=1)", () => {
    expect.fail(
      "BLIXARD_REQUIRE_QEMU=1 but qemu-system-x86_64 is not on PATH; install it (apt-get install -y qemu-system-x86) or unset BLIXARD_REQUIRE_QEMU",
    );
  });
}

describe("QemuDriver in a cgroup of its own", () => {
  const IS_ROOT = process.getuid?.() === 0;
  const nodeName = `qemu-test-${process.pid}`;
  let cgroups: CgroupDetection | undefined;
  beforeAll(async () => {
    cgroups = await detectCgroups({ nodeName });
  });
  afterAll(async () => {
    if (cgroups?.enforced === true) {
      for (const dir of new Set([cgroups.layout.cpuDir, cgroups.layout.memoryDir])) {
        await rmdir(dir).catch(() => undefined);
      }
    }
  });

  it(
    IS_ROOT
      ? "runs QEMU in vm-<name> with the VM's vCPUs and memory plus QEMU's overhead as limits, and removes the group after"
      : "runs QEMU unconfined where this user cannot create cgroups",
    async () => {
      const detection = cgroups as CgroupDetection;
      // Root on this machine kind (cgroup v1) creates its groups; elsewhere the driver must run
      // QEMU in the node's own group without complaint.
      if (IS_ROOT) expect(detection.enforced).toBe(true);
      const spec = { ...qemuSpec(), vcpus: 2, memoryMb: 96 };
      const { handle, log } = startVm(
        fakeDriver("powerdown", { cgroups: detection }),
        "boxed",
        spec,
      );
      const pid = await running(handle);
      if (!detection.enforced) {
        expect(log()).not.toContain("cgroup vm-boxed");
        return;
      }
      const { version, cpuDir, memoryDir } = detection.layout;
      const cpuGroup = join(cpuDir, "vm-boxed");
      const memoryGroup = join(memoryDir, "vm-boxed");
      const read = (dir: string, file: string): string => readFileSync(join(dir, file), "utf8");
      expect(read(cpuGroup, "cgroup.procs").split("\n")).toContain(String(pid));
      const memoryBytes = (96 + QEMU_MEMORY_OVERHEAD_MB) * 1024 * 1024;
      if (version === 1) {
        expect(read(memoryGroup, "cgroup.procs").split("\n")).toContain(String(pid));
        expect(read(cpuGroup, "cpu.cfs_quota_us").trim()).toBe("200000");
        expect(read(memoryGroup, "memory.limit_in_bytes").trim()).toBe(String(memoryBytes));
      } else {
        expect(read(cpuGroup, "cpu.max").trim()).toBe("200000 100000");
        expect(read(cpuGroup, "memory.max").trim()).toBe(String(memoryBytes));
      }
      expect(log()).toContain(
        `cgroup vm-boxed: 2000 millicores, ${96 + QEMU_MEMORY_OVERHEAD_MB} MB`,
      );
      await handle.stop({ graceMs: 10_000 });
      await waitFor(
        () => !existsSync(cpuGroup) && !existsSync(memoryGroup),
        "the VM's cgroup to be removed",
      );
    },
  );

  it("puts limits in qemuLimits: vCPUs × 1000 millicores, memory plus the overhead", () => {
    expect(qemuLimits({ ...qemuSpec(), vcpus: 3, memoryMb: 512 })).toEqual({
      cpuMillis: 3000,
      memoryMb: 512 + QEMU_MEMORY_OVERHEAD_MB,
    });
  });
});
