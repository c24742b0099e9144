/**
 * Closed-loop load: `concurrency` workers each issue one operation at a time for a fixed
 * duration. Latency is per successful operation; throughput counts successes over the wall time
 * until the last worker finished. CPU use of the servers and of this process is sampled too, to
 * tell a busy server from a busy load generator.
 */
import { cpuSeconds, machineCpuSeconds, sleep } from "./procs.js";

/** The numbers of one workload. */
export interface WorkloadResult {
  readonly ops: number;
  readonly errors: number;
  readonly seconds: number;
  readonly opsPerSec: number;
  readonly p50Ms: number;
  readonly p99Ms: number;
  /** CPU the servers used, in percent of one core (200 = both cores of this machine). */
  readonly serverCpuPct: number;
  /** CPU this process (the load generator) used, in percent of one core. */
  readonly benchCpuPct: number;
  /** Server CPU per successful operation, µs (NaN if none succeeded). */
  readonly serverCpuUsPerOp: number;
  /**
   * Load-generator CPU per successful operation, µs (NaN if none succeeded): what the client
   * path costs, so that a client that burns this process's cores (the gRPC one does) shows as
   * such and not as a slow server.
   */
  readonly benchCpuUsPerOp: number;
  /**
   * CPU the whole machine used, in percent of one core: more than servers + bench means other
   * work competed for the cores during the measurement.
   */
  readonly machineCpuPct: number;
  /** The first error seen, if any. */
  readonly firstError?: string;
}

/** The `q` quantile (0..1) of sorted values, nearest rank. */
export function quantile(sorted: readonly number[], q: number): number {
  if (sorted.length === 0) return Number.NaN;
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[rank] ?? Number.NaN;
}

/**
 * Runs `op` from `concurrency` workers for `durationMs`. `op(worker, n)` gets its worker number
 * and a global operation counter.
 */
export async function closedLoop(options: {
  readonly concurrency: number;
  readonly durationMs: number;
  readonly serverPids: () => readonly number[];
  readonly op: (worker: number, n: number) => Promise<unknown>;
}): Promise<WorkloadResult> {
  const latencies: number[] = [];
  let errors = 0;
  let firstError: string | undefined;
  let counter = 0;
  const pids = options.serverPids();
  const serverCpu0 = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0);
  const benchCpu0 = process.cpuUsage();
  const machine0 = machineCpuSeconds();
  const start = performance.now();
  const end = start + options.durationMs;
  const worker = async (w: number): Promise<void> => {
    while (performance.now() < end) {
      const t0 = performance.now();
      try {
        await options.op(w, counter++);
        latencies.push(performance.now() - t0);
      } catch (error) {
        errors++;
        firstError ??= error instanceof Error ? error.message : String(error);
        await sleep(1);
      }
    }
  };
  await Promise.all(Array.from({ length: options.concurrency }, (_, w) => worker(w)));
  const seconds = (performance.now() - start) / 1000;
  const serverCpu = pids.reduce((sum, pid) => sum + cpuSeconds(pid), 0) - serverCpu0;
  const benchCpu = process.cpuUsage(benchCpu0);
  const machine1 = machineCpuSeconds();
  const benchCpuSeconds = (benchCpu.user + benchCpu.system) / 1e6;
  const perOpUs = (cpu: number): number =>
    latencies.length === 0 ? Number.NaN : (cpu * 1e6) / latencies.length;
  latencies.sort((a, b) => a - b);
  return {
    ops: latencies.length,
    errors,
    seconds,
    opsPerSec: latencies.length / seconds,
    p50Ms: quantile(latencies, 0.5),
    p99Ms: quantile(latencies, 0.99),
    serverCpuPct: (serverCpu / seconds) * 100,
    benchCpuPct: (benchCpuSeconds / seconds) * 100,
    serverCpuUsPerOp: perOpUs(serverCpu),
    benchCpuUsPerOp: perOpUs(benchCpuSeconds),
    machineCpuPct: ((machine1.busy - machine0.busy) / seconds) * 100,
    ...(firstError === undefined ? {} : { firstError }),
  };
}
