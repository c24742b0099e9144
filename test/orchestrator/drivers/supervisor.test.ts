/**
 * The supervision loop on its own: a launcher whose runs the test starts, ends and stops by hand,
 * and a manual clock, so every interleaving (a stop during a start, during a backoff, a start that
 * completes after a stop) is exercised exactly, without processes or real time.
 */
import { describe, expect, it } from "vitest";
import { CancelledError, UnavailableError } from "../../../src/common/errors.js";
import type { RestartPolicy } from "../../../src/statemachine/orchestrator/types.js";
import type { ExitStatus } from "../../../src/orchestrator/drivers/process-group.js";
import {
  Supervisor,
  type LaunchedRun,
  type Launcher,
} from "../../../src/orchestrator/drivers/supervisor.js";
import type { VmObservation, VmStopMethod } from "../../../src/orchestrator/drivers/vm-driver.js";
import type { HealthChange } from "../../../src/orchestrator/drivers/health-check.js";
import { ManualClock } from "./helpers.js";

/** A run the test controls. */
interface FakeRun extends LaunchedRun {
  end(status: ExitStatus): void;
  readonly stopCalls: number[];
}

function fakeRun(pid: number, stopMethod: VmStopMethod = "SIGTERM"): FakeRun {
  let end!: (status: ExitStatus) => void;
  const exited = new Promise<ExitStatus>((resolve) => (end = resolve));
  const stopCalls: number[] = [];
  return {
    pid,
    exited,
    end,
    stopCalls,
    stop: async (graceMs) => {
      stopCalls.push(graceMs);
      end({ code: null, signal: "SIGTERM" });
      await exited;
      return stopMethod;
    },
  };
}

/** Launches wait until the test answers them. */
class FakeLauncher implements Launcher {
  readonly launches: {
    signal: AbortSignal;
    resolve: (run: LaunchedRun) => void;
    reject: (error: Error) => void;
  }[] = [];
  readonly notes: string[] = [];
  closed = false;

  launch(signal: AbortSignal): Promise<LaunchedRun> {
    return new Promise((resolve, reject) => this.launches.push({ signal, resolve, reject }));
  }

  note(line: string): void {
    this.notes.push(line);
  }

  async close(): Promise<void> {
    this.closed = true;
  }

  /** The latest launch, once the supervisor has asked for it. */
  async next(count: number): Promise<FakeLauncher["launches"][number]> {
    while (this.launches.length < count) await new Promise((r) => setImmediate(r));
    return this.launches[count - 1] as FakeLauncher["launches"][number];
  }
}

function supervise(policy: Partial<RestartPolicy> = {}, previousRestarts = 0) {
  const clock = new ManualClock();
  const launcher = new FakeLauncher();
  const seen: VmObservation[] = [];
  const supervisor = new Supervisor({
    name: "vm",
    policy: { mode: "on-failure", maxRestarts: 3, backoffMs: 100, ...policy },
    clock,
    launcher,
    onChange: (o) => seen.push(o),
    previousRestarts,
    defaultGraceMs: 5_000,
  });
  return { clock, launcher, seen, supervisor };
}

/** Lets pending promise callbacks run. */
const settle = (): Promise<void> => new Promise((r) => setImmediate(r));

describe("Supervisor", () => {
  it("reports a running guest unhealthy and running again as its health watch says, without restarting it, and stops the watch with the run", async () => {
    const { launcher, seen, supervisor } = supervise();
    let report: (change: HealthChange) => void = () => undefined;
    let watchStops = 0;
    const run: LaunchedRun = {
      ...fakeRun(7),
      watchHealth: (onChange) => {
        report = onChange;
        return { stop: () => (watchStops += 1), done: Promise.resolve() };
      },
    };
    (await launcher.next(1)).resolve(run);
    await settle();
    expect(supervisor.observe().status).toBe("running");
    report({ healthy: false, reason: "health check failed 3 times in a row: refused" });
    expect(supervisor.observe()).toMatchObject({
      status: "unhealthy",
      pid: 7,
      restarts: 0,
      lastError: "health check failed 3 times in a row: refused",
    });
    report({ healthy: true, reason: "" });
    expect(supervisor.observe()).toMatchObject({ status: "running", lastError: "" });
    // Unhealthy never ends the run: no second launch was asked for.
    expect(launcher.launches).toHaveLength(1);
    const stopped = await supervisor.stop({ graceMs: 10 });
    expect(stopped.observation.status).toBe("stopped");
    expect(watchStops).toBeGreaterThanOrEqual(1);
    // A change reported after the stop is ignored.
    report({ healthy: false, reason: "late" });
    expect(seen.map((o) => o.status)).toEqual([
      "starting",
      "running",
      "unhealthy",
      "running",
      "stopping",
      "stopped",
    ]);
  });

  it("waits backoff · 2^n between restarts, capped at 30 s, on the clock it is given", async () => {
    const { clock, launcher, supervisor } = supervise({ maxRestarts: 10, backoffMs: 1_000 });
    const delays: number[] = [];
    for (let n = 1; n <= 11; n++) {
      const run = fakeRun(n);
      (await launcher.next(n)).resolve(run);
      await settle();
      expect(supervisor.observe()).toMatchObject({ status: "running", pid: n, restarts: n - 1 });
      run.end({ code: 1, signal: null });
      await settle();
      if (n === 11) break;
      const pending = clock.pendingDelays();
      expect(pending).toHaveLength(1);
      delays.push(pending[0] as number);
      expect(supervisor.observe()).toMatchObject({ status: "starting", restartInMs: pending[0] });
      clock.advance(pending[0] as number);
    }
    expect(delays).toEqual([
      1_000, 2_000, 4_000, 8_000, 16_000, 30_000, 30_000, 30_000, 30_000, 30_000,
    ]);
    expect(await supervisor.settled).toMatchObject({ status: "failed", restarts: 10 });
    expect(launcher.closed).toBe(true);
  });

  it("stops during a start: the launch is aborted and nothing is reported running", async () => {
    const { launcher, seen, supervisor } = supervise();
    const launch = await launcher.next(1);
    const stopping = supervisor.stop({ graceMs: 1_234 });
    expect(launch.signal.aborted).toBe(true);
    launch.reject(new CancelledError("aborted"));
    const result = await stopping;
    expect(result).toMatchObject({
      method: "not-running",
      observation: { status: "stopped", lastError: "" },
    });
    expect(seen.map((o) => o.status)).toEqual(["starting", "stopped"]);
  });

  it("stops a run whose start completed just after the stop was asked for", async () => {
    const { launcher, seen, supervisor } = supervise();
    const launch = await launcher.next(1);
    const stopping = supervisor.stop({ graceMs: 1_234 });
    const run = fakeRun(7);
    launch.resolve(run);
    const result = await stopping;
    expect(run.stopCalls).toEqual([1_234]);
    expect(result).toMatchObject({ method: "SIGTERM", observation: { status: "stopped" } });
    expect(seen.map((o) => o.status)).toEqual(["starting", "stopping", "stopped"]);
  });

  it("stops during a backoff without waiting for it, and cancels its timer", async () => {
    const { clock, launcher, supervisor } = supervise({ backoffMs: 20_000 });
    const run = fakeRun(1);
    (await launcher.next(1)).resolve(run);
    await settle();
    run.end({ code: 2, signal: null });
    await settle();
    expect(clock.pendingDelays()).toEqual([20_000]);
    const result = await supervisor.stop();
    expect(result).toMatchObject({
      method: "not-running",
      observation: { status: "stopped", lastError: "exited with code 2", restarts: 0 },
    });
    expect(clock.pendingDelays()).toEqual([]);
    expect(launcher.launches).toHaveLength(1);
  });

  it("stops a running VM with the default grace period and reports how", async () => {
    const { launcher, supervisor } = supervise();
    const run = fakeRun(3, "powerdown");
    (await launcher.next(1)).resolve(run);
    await settle();
    const result = await supervisor.stop();
    expect(run.stopCalls).toEqual([5_000]);
    expect(result.method).toBe("powerdown");
    expect(result.observation).toMatchObject({ status: "stopped", pid: null });
  });

  it("counts a start that fails as a failure under the policy, keeping its message", async () => {
    const { clock, launcher, supervisor } = supervise({ maxRestarts: 1 });
    (await launcher.next(1)).reject(new UnavailableError("QEMU exited with code 1"));
    await settle();
    expect(supervisor.observe()).toMatchObject({
      status: "starting",
      lastError: "QEMU exited with code 1",
      restartInMs: 100,
    });
    clock.advance(100);
    (await launcher.next(2)).reject(new UnavailableError("QEMU exited with code 1 again"));
    expect(await supervisor.settled).toMatchObject({
      status: "failed",
      restarts: 1,
      lastError: "QEMU exited with code 1 again",
    });
    expect(launcher.notes).toContain("failed for good: QEMU exited with code 1 again");
  });

  it("fails a booting run whose machine exits, even cleanly, before its guest is ready", async () => {
    const { launcher, supervisor } = supervise({ mode: "never", maxRestarts: 0 });
    const run = fakeRun(7);
    (await launcher.next(1)).resolve({ ...run, ready: new Promise<void>(() => undefined) });
    await settle();
    expect(supervisor.observe().status).toBe("booting");
    run.end({ code: 0, signal: null });
    expect(await supervisor.settled).toMatchObject({
      status: "failed",
      lastError: "the machine exited with code 0 before its guest announced readiness",
    });
  });

  it("carries previous restarts into the limit and the backoff", async () => {
    const { clock, launcher, supervisor } = supervise({ maxRestarts: 3 }, 2);
    const first = fakeRun(1);
    (await launcher.next(1)).resolve(first);
    await settle();
    first.end({ code: null, signal: "SIGSEGV" });
    await settle();
    expect(clock.pendingDelays()).toEqual([400]);
    clock.advance(400);
    const second = fakeRun(2);
    (await launcher.next(2)).resolve(second);
    await settle();
    expect(supervisor.observe().restarts).toBe(3);
    second.end({ code: null, signal: "SIGSEGV" });
    expect(await supervisor.settled).toMatchObject({
      status: "failed",
      restarts: 3,
      lastError: "killed by signal SIGSEGV",
    });
  });
});
