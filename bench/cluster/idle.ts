/**
 * `bench:cluster --only idle`: the idle figure alone, measured longer and repeatedly. A 3-node
 * Blixard cluster is started, preloaded and warmed up as the full suite does, then sits with no
 * client traffic for `windows` windows of `seconds` each; per window and member it prints the
 * CPU used (% of one core, /proc/<pid>/stat) and the wake-ups per second (voluntary and
 * involuntary context switches of the main thread: each is one sleep of the event loop), and the
 * median of the windows, which is the figure to quote.
 */
import { readFileSync } from "node:fs";
import { BlixardCluster } from "./blixard.js";
import { quantile } from "./load.js";
import { contextSwitches, tempDir } from "./procs.js";
import { idleCpu } from "./workloads.js";

/** Options of the idle measurement. */
export interface IdleOptions {
  /** Length of one window, ms. */
  readonly windowMs: number;
  /** How many windows. */
  readonly windows: number;
  /** Keys preloaded before the warm-up (as the suite does). */
  readonly keys: number;
  readonly valueBytes: number;
  /** Writes each member's CPU profile (node --cpu-prof) to this directory when set. */
  readonly cpuProfileDir?: string;
  readonly log: (line: string) => void;
}

/** Per member, the median over the windows. */
export interface IdleResult {
  readonly cpuPctPerMember: number[];
  readonly wakeupsPerSecPerMember: number[];
}

/** Runs the idle measurement on a fresh cluster and prints its lines. */
export async function idleOnly(options: IdleOptions): Promise<IdleResult> {
  const { log } = options;
  const cluster = new BlixardCluster(
    tempDir("blixard-bench-"),
    3,
    [],
    options.cpuProfileDir === undefined
      ? []
      : ["--cpu-prof", "--cpu-prof-dir", options.cpuProfileDir],
  );
  log(`${cluster.name}: starting ${cluster.size} members`);
  try {
    await cluster.start();
    let leader = await cluster.waitForLeader();
    const value = "v".repeat(options.valueBytes);
    for (let n = 0; n < options.keys; n += 64) {
      // On a busy machine an election can come during the preload: retry the batch then.
      for (let attempt = 1; ; attempt++) {
        try {
          await Promise.all(
            Array.from({ length: Math.min(64, options.keys - n) }, (_, i) =>
              cluster.put(leader, `bench-${n + i}`, value),
            ),
          );
          break;
        } catch (error) {
          if (attempt >= 5) throw error;
          leader = await cluster.waitForLeader();
        }
      }
    }
    const cpu: number[][] = [];
    const wakeups: number[][] = [];
    for (let w = 0; w < options.windows; w++) {
      const pids = cluster.pids();
      const before = pids.map((pid) => contextSwitches(pid).mainThread);
      const started = performance.now();
      const pct = await idleCpu(cluster, options.windowMs);
      const seconds = (performance.now() - started) / 1000;
      const perSec = pids.map(
        (pid, i) => (contextSwitches(pid).mainThread - (before[i] ?? 0)) / seconds,
      );
      cpu.push(pct);
      wakeups.push(perSec);
      log(
        `  window ${w + 1}: CPU ${pct.map((p) => `${p.toFixed(2)}%`).join(", ")} of a core; ` +
          `main-thread wake-ups ${perSec.map((n) => n.toFixed(0)).join(", ")}/s ` +
          `(leader is member ${leader + 1}; load ${loadavg()})`,
      );
    }
    const median = (rows: number[][]): number[] =>
      Array.from({ length: cluster.size }, (_, m) =>
        quantile(
          rows.map((r) => r[m] ?? Number.NaN).sort((a, b) => a - b),
          0.5,
        ),
      );
    const result = { cpuPctPerMember: median(cpu), wakeupsPerSecPerMember: median(wakeups) };
    process.stdout.write(
      `idle CPU per member (median of ${options.windows} × ${options.windowMs / 1000} s): ` +
        `${result.cpuPctPerMember.map((p) => `${p.toFixed(2)}%`).join(" / ")} ` +
        `(target <= 1% of a core: ${result.cpuPctPerMember.every((p) => p <= 1) ? "met" : "NOT met"}); ` +
        `main-thread wake-ups ${result.wakeupsPerSecPerMember.map((n) => n.toFixed(0)).join(" / ")}/s; ` +
        `load ${loadavg()}\n`,
    );
    process.stdout.write(
      `BENCH_JSON ${JSON.stringify({ idle: result, windows: { cpu, wakeups } })}\n`,
    );
    return result;
  } finally {
    await cluster.stop();
  }
}

function loadavg(): string {
  // Node's os.loadavg() has the same three numbers; /proc/loadavg is what the reports quote.
  return readFileSync("/proc/loadavg", "utf8").split(" ").slice(0, 3).join(" ");
}
