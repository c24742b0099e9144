/**
 * The workload suite, the same for every {@link ClusterTarget}: sequential writes, concurrent
 * writes at several depths, linearizable reads, and failover after SIGKILLing the leader.
 * Writes run twice: to the leader only (as Blixard's SDK sends them: no forwarding hop on either
 * system) and spread over every member round-robin (as etcd's clients and any load balancer
 * send them: two thirds reach a follower, which hands them to the leader). And each of those
 * twice again: over the fixed set of `keys` keys (a state of constant size), and with a key never
 * written before per write (a growing state: what a fill costs, not only an overwrite). Reads
 * are spread over all members (both systems serve linearizable reads on followers through
 * ReadIndex).
 */
import { closedLoop, quantile, type WorkloadResult } from "./load.js";
import { cpuSeconds, sleep } from "./procs.js";
import type { ClusterTarget } from "./target.js";

/** Options of a suite run. */
export interface SuiteOptions {
  /** Length of each timed workload. */
  readonly durationMs: number;
  /** Failover repetitions. */
  readonly failovers: number;
  /** Value size in bytes. */
  readonly valueBytes: number;
  /** Distinct keys written and read. */
  readonly keys: number;
  /** Progress lines go here. */
  readonly log: (line: string) => void;
  /** Only the workloads whose names match (all when undefined); failover runs only if it matches "failover". */
  readonly match?: RegExp;
}

/** A named extra workload only one system has (e.g. the Blixard SDK). */
export interface ExtraWorkload {
  readonly name: string;
  readonly concurrency: number;
  readonly op: (worker: number, n: number) => Promise<unknown>;
  /** Runs before the workload (e.g. opens watchers). */
  readonly setup?: () => Promise<void>;
  /** Runs after it. */
  readonly teardown?: () => Promise<void>;
}

/** A timed workload of the suite. */
interface SuiteWorkload {
  readonly name: string;
  readonly concurrency: number;
  readonly kind: "write" | "read";
  /** Writes go round every member instead of to the leader. */
  readonly everyMember: boolean;
  /** Each write takes a key never written before instead of one of the `keys` fixed keys. */
  readonly distinctKeys: boolean;
}

/** The eight write workloads (leader or every member, 1 to 256 in flight) on one kind of key. */
function writeWorkloads(distinctKeys: boolean): SuiteWorkload[] {
  return [false, true].flatMap((everyMember) =>
    [1, 16, 64, 256].map((concurrency) => {
      const notes = [
        ...(concurrency === 1 && !everyMember ? ["sequential"] : []),
        ...(everyMember ? ["every member"] : []),
        ...(distinctKeys ? ["distinct keys"] : []),
      ];
      return {
        name: `write c=${concurrency}${notes.length === 0 ? "" : ` (${notes.join(", ")})`}`,
        concurrency,
        kind: "write" as const,
        everyMember,
        distinctKeys,
      };
    }),
  );
}

/**
 * The timed workloads in the order they run. The reads come before the distinct-key writes so
 * that they, like the fixed-key writes, see only the preloaded keys (numbers comparable with
 * runs before the distinct-key rows existed).
 */
const SUITE: readonly SuiteWorkload[] = [
  ...writeWorkloads(false),
  {
    name: "linearizable read c=64",
    concurrency: 64,
    kind: "read",
    everyMember: true,
    distinctKeys: false,
  },
  ...writeWorkloads(true),
];

/** The workload names, in report order (the order they run). */
export const WORKLOADS: readonly string[] = SUITE.map(({ name }) => name);

/** The failover measurements. */
export interface FailoverResult {
  /** ms from the leader's SIGKILL to the first write issued after it that succeeded. */
  readonly runsMs: number[];
  readonly medianMs: number;
  /** The slowest run (the target holds for every run, not only the median). */
  readonly maxMs: number;
  /** Writes that failed while the cluster had no leader, per run. */
  readonly failedWrites: number[];
}

/** Everything one system measured. */
export interface SuiteResult {
  readonly workloads: Record<string, WorkloadResult>;
  readonly failover: FailoverResult;
  /** CPU each member used while the cluster sat idle after the warm-up, in % of one core. */
  readonly idleCpuPctPerMember: number[];
}

/** Runs the whole suite against a started target. */
export async function runSuite(
  target: ClusterTarget,
  options: SuiteOptions,
  extras: readonly ExtraWorkload[] = [],
): Promise<SuiteResult> {
  const value = "v".repeat(options.valueBytes);
  const key = (n: number): string => `bench-${n % options.keys}`;
  const log = options.log;
  const workloads: Record<string, WorkloadResult> = {};
  const leader = await target.waitForLeader();
  const run = async (
    name: string,
    concurrency: number,
    op: (worker: number, n: number) => Promise<unknown>,
    durationMs = options.durationMs,
  ): Promise<WorkloadResult | undefined> => {
    if (options.match !== undefined && !options.match.test(name) && !name.startsWith("warm-up")) {
      return undefined;
    }
    const result = await closedLoop({
      concurrency,
      durationMs,
      serverPids: () => target.pids(),
      op,
    });
    log(
      `  ${target.name} ${name}: ${result.opsPerSec.toFixed(0)} ops/s, p50 ${result.p50Ms.toFixed(2)} ms, ` +
        `p99 ${result.p99Ms.toFixed(2)} ms, errors ${result.errors}, server CPU ${result.serverCpuPct.toFixed(0)}%, ` +
        `bench CPU ${result.benchCpuPct.toFixed(0)}% (${result.benchCpuUsPerOp.toFixed(0)} µs/op), ` +
        `machine CPU ${result.machineCpuPct.toFixed(0)}%` +
        (result.firstError === undefined
          ? ""
          : ` (first error: ${result.firstError.slice(0, 200)})`),
    );
    return result;
  };

  // Every key exists before the reads; this doubles as a warm-up (JIT, connections, WAL files).
  log(`  ${target.name}: preloading ${options.keys} keys and warming up`);
  for (let n = 0; n < options.keys; n += 64) {
    await Promise.all(
      Array.from({ length: Math.min(64, options.keys - n) }, (_, i) =>
        target.put(leader, key(n + i), value),
      ),
    );
  }
  await run("warm-up c=64", 64, (_, n) => target.put(leader, key(n), value), 1000);
  const idleCpuPctPerMember = await idleCpu(target, IDLE_MS);
  log(
    `  ${target.name} idle: ${idleCpuPctPerMember.map((p) => `${p.toFixed(1)}%`).join(", ")} of a core per member`,
  );

  const record = (name: string, result: WorkloadResult | undefined): void => {
    if (result !== undefined) workloads[name] = result;
  };
  // Distinct keys are `d-<worker>-<n>` with n counting every distinct-key write of the suite, not
  // only of one workload, so that no later workload overwrites an earlier one's key.
  let distinctWrites = 0;
  const opOf = (workload: SuiteWorkload): ((worker: number, n: number) => Promise<void>) => {
    if (workload.kind === "read") return (_, n) => target.get(n % target.size, key(n));
    const keyOf = workload.distinctKeys
      ? (worker: number): string => `d-${worker}-${distinctWrites++}`
      : (_: number, n: number): string => key(n);
    // Member (worker + n) % size: each worker's successive writes go round the members, as a
    // balancer sends them.
    const member = workload.everyMember
      ? (worker: number, n: number): number => (worker + n) % target.size
      : (): number => leader;
    return (worker, n) => target.put(member(worker, n), keyOf(worker, n), value);
  };
  for (const workload of SUITE) {
    record(workload.name, await run(workload.name, workload.concurrency, opOf(workload)));
  }
  for (const extra of extras) {
    if (options.match !== undefined && !options.match.test(extra.name)) continue;
    await extra.setup?.();
    record(extra.name, await run(extra.name, extra.concurrency, extra.op));
    await extra.teardown?.();
  }

  const runsMs: number[] = [];
  const failedWrites: number[] = [];
  const failovers =
    options.match === undefined || options.match.test("failover") ? options.failovers : 0;
  for (let i = 0; i < failovers; i++) {
    const { ms, failed } = await failoverOnce(target, value);
    log(
      `  ${target.name} failover ${i + 1}: ${ms.toFixed(0)} ms (${failed} writes failed meanwhile)`,
    );
    runsMs.push(ms);
    failedWrites.push(failed);
  }
  const sorted = [...runsMs].sort((a, b) => a - b);
  return {
    workloads,
    idleCpuPctPerMember,
    failover: {
      runsMs,
      medianMs: quantile(sorted, 0.5),
      maxMs: sorted.at(-1) ?? Number.NaN,
      failedWrites,
    },
  };
}

/** How long the idle CPU is sampled. */
const IDLE_MS = 5000;

/** The CPU each member uses over `ms` with no client traffic, in % of one core. */
export async function idleCpu(target: ClusterTarget, ms: number): Promise<number[]> {
  await sleep(500); // let the last writes' replication and apply finish
  const pids = target.pids();
  const before = pids.map(cpuSeconds);
  const started = performance.now();
  await sleep(ms);
  const seconds = (performance.now() - started) / 1000;
  return pids.map((pid, i) => (100 * (cpuSeconds(pid) - (before[i] ?? 0))) / seconds);
}

/**
 * Writes steadily through the followers (4 writers) for a second, SIGKILLs the leader, and from
 * then on starts a new probe write every 5 ms through a surviving member. The result is the time
 * from the kill to the first probe that succeeded. Then restarts the killed member and waits
 * until all members agree on a leader again.
 */
async function failoverOnce(
  target: ClusterTarget,
  value: string,
): Promise<{ ms: number; failed: number }> {
  const leader = await target.waitForLeader();
  const survivors = Array.from({ length: target.size }, (_, i) => i).filter((i) => i !== leader);
  const pick = (n: number): number => survivors[n % survivors.length] ?? 0;
  let stopping = false;
  let failed = 0;
  let killedAt = Number.POSITIVE_INFINITY;
  const writers = Array.from({ length: 4 }, async (_, w) => {
    for (let n = 0; !stopping; n++) {
      try {
        await target.put(pick(w + n), `failover-${w}-${n % 100}`, value, 3000);
      } catch {
        if (performance.now() >= killedAt) failed++;
        await sleep(5);
      }
    }
  });
  await sleep(1000);

  let firstOk: number | undefined;
  let probes = 0;
  killedAt = performance.now();
  const killed = target.kill(leader);
  const deadline = killedAt + 30_000;
  while (firstOk === undefined && performance.now() < deadline) {
    const n = probes++;
    target.put(pick(n), `failover-probe-${n % 100}`, value, 3000).then(
      () => {
        firstOk ??= performance.now();
      },
      () => {
        failed++;
      },
    );
    await sleep(5);
  }
  stopping = true;
  await killed;
  await Promise.all(writers);
  if (firstOk === undefined)
    throw new Error(`${target.name}: no write succeeded within 30 s of the leader's death`);

  await target.restart(leader);
  await target.waitForLeader(30_000);
  await sleep(500);
  return { ms: firstOk - killedAt, failed };
}
