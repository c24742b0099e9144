/**
 * The cluster benchmark: a 3-node Blixard cluster of real `blixard node start` processes on
 * loopback with data directories on disk, and, when an `etcd` binary is installed (Debian's
 * etcd-server), a 3-member etcd on loopback under the same workloads, twice: once driven through
 * its native gRPC API (cluster/etcd-grpc.ts, as etcd's own clients do) and once through its JSON
 * gateway (cluster/etcd.ts), each on a fresh cluster. Every ratio is taken against the better of
 * the two etcd figures.
 *
 *   npm run bench:cluster [-- --seconds 5 --failovers 5 --value-bytes 128 --keys 1000 --no-etcd]
 *   npm run bench:cluster -- --etcd-client grpc     one etcd client path (both, grpc, gateway)
 *   npm run bench:cluster -- --only locks [--seconds 5]     the lock workloads alone
 *   npm run bench:cluster -- --only watch [--watch-rounds 3 --watchers-in-process]     the watch
 *     workloads alone (rounds of a baseline and a watched run, see watchWorkloads)
 *   npm run bench:cluster -- --only watch --cpu-prof-dir DIR     ... with the CPU profiles of
 *     the members and the forked watchers written to DIR (node --cpu-prof, one per process)
 *   npm run bench:cluster -- --match 'every member|failover'  only the workloads whose names match
 *   npm run bench:cluster -- --only idle [--idle-seconds 60 --idle-windows 3 --cpu-prof-dir DIR]
 *     the idle CPU and wake-ups per member alone, the median of several long windows
 *     (cluster/idle.ts); the idle figure of the full run is one 5 s window
 *
 * Workloads (closed loop; Blixard and the etcd gateway through one lean keep-alive HTTP client in
 * this process, see cluster/http.ts; etcd gRPC through one @grpc/grpc-js channel per member):
 * sequential writes (1 in flight), concurrent writes at 16, 64 and 256 in flight, each to the
 * leader and spread over every member, each over the `--keys` fixed keys and again with a new key
 * per write (`(distinct keys)`: a growing state), linearizable reads at 64 in flight, and
 * failover: SIGKILL the leader during writes, time to the first successful write after it (5
 * runs: median and slowest). Every row reports the servers' CPU and this load generator's
 * (process.cpuUsage), also per operation: the gRPC client costs the load generator more CPU than
 * the HTTP one, and on a 2-core machine that CPU is taken from the servers. For Blixard also 64
 * writes in flight through the SDK (BlixardClient: fetch, sessions, leader tracking), to show
 * what the SDK costs; and the watch workload: writes at 64 in flight with and without 64 kv
 * watchers (SDK `watch()`, spread over the three nodes) reading every change, for the events/s
 * delivered, the write throughput cost and the servers' CPU per write. The watchers run in a
 * process of their own (cluster/watchers.ts), as watchers apart from the writers do: sharing the
 * load generator's event loop, their parsing would delay its writes, which is no cost of the
 * cluster. Their CPU still takes this 2-core machine's cores from the servers (and is printed);
 * `--watchers-in-process` runs them in this process, as before. Then the lock workloads (cluster/locks.ts): acquire/release through
 * the SDK's `lock()` for one lock contended by 8 and 32 clients, and for 16 uncontended locks.
 *
 * Prints a table and one JSON line (`BENCH_JSON {...}`, with etcd's gRPC and gateway figures
 * apart). Kills only the processes it started and removes its temporary directories, on success,
 * error, Ctrl-C or SIGTERM.
 */
import { parseArgs } from "node:util";
import { BlixardClient } from "../src/client/index.js";
import { ensureBuilt } from "../test/cli/helpers.js";
import { BlixardCluster } from "./cluster/blixard.js";
import { EtcdCluster, findEtcd } from "./cluster/etcd.js";
import { EtcdGrpcCluster } from "./cluster/etcd-grpc.js";
import { idleOnly } from "./cluster/idle.js";
import type { WorkloadResult } from "./cluster/load.js";
import { closedLoop, quantile } from "./cluster/load.js";
import { LOCK_WORKLOADS, lockWorkloads, type LockLatencies } from "./cluster/locks.js";
import { cleanupSync, tempDir } from "./cluster/procs.js";
import { ETCD_PATHS, fmt, report, table, type ClusterResults } from "./cluster/report.js";
import type { ClusterTarget } from "./cluster/target.js";
import { stampedValue, startWatchers, type Watchers } from "./cluster/watchers.js";
import {
  WORKLOADS,
  runSuite,
  type ExtraWorkload,
  type SuiteOptions,
  type SuiteResult,
} from "./cluster/workloads.js";

const { values: args } = parseArgs({
  options: {
    seconds: { type: "string", default: "5" },
    failovers: { type: "string", default: "5" },
    "value-bytes": { type: "string", default: "128" },
    keys: { type: "string", default: "1000" },
    "no-etcd": { type: "boolean", default: false },
    "etcd-client": { type: "string", default: "both" },
    only: { type: "string" },
    "watchers-in-process": { type: "boolean", default: false },
    "cpu-prof-dir": { type: "string" },
    match: { type: "string" },
    "idle-seconds": { type: "string", default: "60" },
    "idle-windows": { type: "string", default: "3" },
    "watch-rounds": { type: "string", default: "3" },
  },
});

const SDK_CLIENTS = 8;
const SDK_WORKLOAD = `write c=64 via ${SDK_CLIENTS} BlixardClients`;

function log(line: string): void {
  process.stderr.write(`${line}\n`);
}

async function measure(
  target: ClusterTarget,
  options: SuiteOptions,
  extras: (target: ClusterTarget) => ExtraWorkload[],
): Promise<SuiteResult> {
  const started = performance.now();
  log(`${target.name}: starting ${target.size} members`);
  try {
    await target.start();
    log(`${target.name}: leader elected after ${(performance.now() - started).toFixed(0)} ms`);
    return await runSuite(target, options, extras(target));
  } finally {
    await target.stop();
  }
}

/** Acquire and release latencies of the lock workloads, by name. */
const lockLatencies = new Map<string, LockLatencies>();

/** Prints the lock workloads' table (from a suite's results). */
function reportLocks(workloads: Readonly<Record<string, WorkloadResult>>): void {
  const rows = LOCK_WORKLOADS.map(({ name }) => {
    const w = workloads[name];
    const l = lockLatencies.get(name);
    return [
      name,
      fmt(w?.opsPerSec),
      fmt(l?.acquireP50Ms, 2),
      fmt(l?.acquireP99Ms, 2),
      fmt(l?.releaseP50Ms, 2),
      fmt(l?.releaseP99Ms, 2),
      fmt(w?.p99Ms, 2),
      String(w?.errors ?? "-"),
      fmt(w?.serverCpuPct),
      fmt(w?.machineCpuPct),
    ];
  });
  const header = [
    "lock workload",
    "acquire+release/s",
    "acquire p50 ms",
    "p99 ms",
    "release p50 ms",
    "p99 ms",
    "cycle p99 ms",
    "errors",
    "cpu %",
    "host %",
  ];
  process.stdout.write(`\n${table(header, rows)}\n`);
}

/** `--only locks`: a Blixard cluster, the lock workloads alone, their table and JSON line. */
async function locksOnly(options: SuiteOptions): Promise<void> {
  const cluster = new BlixardCluster(tempDir("blixard-bench-"));
  const workloads: Record<string, WorkloadResult> = {};
  log(`${cluster.name}: starting ${cluster.size} members`);
  try {
    await cluster.start();
    await cluster.waitForLeader();
    for (const extra of lockWorkloads(cluster.endpoints, lockLatencies)) {
      await extra.setup?.();
      const result = await closedLoop({
        concurrency: extra.concurrency,
        durationMs: options.durationMs,
        serverPids: () => cluster.pids(),
        op: extra.op,
      });
      await extra.teardown?.();
      log(
        `  ${extra.name}: ${result.opsPerSec.toFixed(0)} acquire+release/s, errors ${result.errors}`,
      );
      workloads[extra.name] = result;
    }
  } finally {
    await cluster.stop();
  }
  reportLocks(workloads);
  const { availableParallelism } = await import("node:os");
  process.stdout.write(
    `BENCH_JSON ${JSON.stringify({
      node: process.version,
      cpus: availableParallelism(),
      seconds: options.durationMs / 1000,
      locks: Object.fromEntries(
        LOCK_WORKLOADS.map(({ name }) => [
          name,
          { ...workloads[name], ...lockLatencies.get(name) },
        ]),
      ),
    })}\n`,
  );
}

const WATCHERS = 64;
const WATCH_BASELINE = "write c=64 (watch baseline)";
const WATCH_WORKLOAD = `write c=64 with ${WATCHERS} watchers`;
/** The workload names of round `round` (1-based; no suffix when there is one round). */
function watchNames(round: number, rounds: number): { baseline: string; watched: string } {
  const suffix = rounds === 1 ? "" : ` #${round}`;
  return { baseline: `${WATCH_BASELINE}${suffix}`, watched: `${WATCH_WORKLOAD}${suffix}` };
}
/** What the watchers of one watched round received, how long it ran and their CPU. */
interface WatchRoundStats {
  delivered: number;
  /** Events that came out of revision order or twice (see `Watchers.disordered`). */
  disordered: number;
  startedMs: number;
  endedMs: number;
  cpuSeconds: number;
  lagMs: number[];
}
/** Per round, in order. */
const watchStats: WatchRoundStats[] = [];

/**
 * The same writes without watchers and with {@link WATCHERS} kv watchers of every bench key (SDK
 * `watch()`, spread over the members; in a process of their own unless `--watchers-in-process`,
 * see cluster/watchers.ts) counting what they receive, in `--watch-rounds` rounds of both back
 * to back, the order alternating from round to round (baseline first in odd rounds): one pair of
 * 5 s runs swings by ±10% with what else the machine does, and a drift (a snapshot, the log's
 * growth) then falls on both sides alike.
 */
function watchWorkloads(cluster: BlixardCluster, options: SuiteOptions): ExtraWorkload[] {
  let leader: number | undefined;
  // Both runs stamp their values alike, so that the stamp costs the baseline what it costs the
  // watched run; the watchers time each delivery from it.
  const write = async (_: number, n: number): Promise<void> => {
    leader ??= await cluster.waitForLeader();
    await cluster.put(leader, `bench-${n % options.keys}`, stampedValue(options.valueBytes));
  };
  const rounds = watchRounds();
  const workloads: ExtraWorkload[] = [];
  for (let round = 1; round <= rounds; round++) {
    const names = watchNames(round, rounds);
    let watchers: Watchers | undefined;
    let before = { delivered: 0, cpuSeconds: 0 };
    const stats: WatchRoundStats = {
      delivered: 0,
      disordered: 0,
      startedMs: 0,
      endedMs: 0,
      cpuSeconds: 0,
      lagMs: [],
    };
    watchStats.push(stats);
    const baseline: ExtraWorkload = { name: names.baseline, concurrency: 64, op: write };
    const watched: ExtraWorkload = {
      name: names.watched,
      concurrency: 64,
      op: write,
      setup: async () => {
        leader = await cluster.waitForLeader();
        watchers = await startWatchers({
          endpoints: cluster.endpoints,
          count: WATCHERS,
          prefix: "bench-",
          inProcess: args["watchers-in-process"],
          cpuProfileDir: args["cpu-prof-dir"],
        });
        before = { delivered: await watchers.delivered(), cpuSeconds: watchers.cpuSeconds() };
        await watchers.lagSamplesMs(); // the preload's
        stats.startedMs = performance.now();
      },
      teardown: async () => {
        stats.endedMs = performance.now();
        if (watchers === undefined) return;
        stats.delivered = (await watchers.delivered()) - before.delivered;
        stats.disordered = await watchers.disordered();
        stats.cpuSeconds = watchers.cpuSeconds() - before.cpuSeconds;
        stats.lagMs = (await watchers.lagSamplesMs()).sort((x, y) => x - y);
        await watchers.stop();
      },
    };
    workloads.push(...(round % 2 === 1 ? [baseline, watched] : [watched, baseline]));
  }
  return workloads;
}

function watchRounds(): number {
  const rounds = Number(args["watch-rounds"]);
  if (!Number.isSafeInteger(rounds) || rounds < 1) {
    throw new Error(`--watch-rounds takes a whole number ≥ 1, not ${args["watch-rounds"]}`);
  }
  return rounds;
}

/** Prints the watch workload's lines (from a suite's results): one per round, then the whole. */
function reportWatch(workloads: Readonly<Record<string, WorkloadResult>>): void {
  const rounds = watchRounds();
  const pairs: { baseline: WorkloadResult; watched: WorkloadResult; stats: WatchRoundStats }[] = [];
  for (let round = 1; round <= rounds; round++) {
    const names = watchNames(round, rounds);
    const baseline = workloads[names.baseline];
    const watched = workloads[names.watched];
    const stats = watchStats[round - 1];
    if (baseline === undefined || watched === undefined || stats === undefined) continue;
    pairs.push({ baseline, watched, stats });
  }
  if (pairs.length === 0) return;
  const where = args["watchers-in-process"] ? "in this process" : "in their own process";
  const costs: number[] = [];
  for (const [i, { baseline, watched, stats }] of pairs.entries()) {
    const seconds = (stats.endedMs - stats.startedMs) / 1000;
    const costPct = 100 * (1 - watched.opsPerSec / baseline.opsPerSec);
    costs.push(costPct);
    // Each watcher should receive every write of the workload (and a few after it).
    const receivedPct = (100 * stats.delivered) / (WATCHERS * watched.ops);
    const watcherCpu = args["watchers-in-process"]
      ? ""
      : `, watchers ${((100 * stats.cpuSeconds) / seconds).toFixed(0)}% of a core`;
    // CPU per write of everything this benchmark runs (servers, load generator, watchers): what
    // the watchers cost in CPU, which on a CPU-bound machine is what they cost in throughput, and
    // which other work on a shared machine disturbs less than it disturbs throughput.
    const baseCpuUs = baseline.serverCpuUsPerOp + baseline.benchCpuUsPerOp;
    const watchedCpuUs =
      watched.serverCpuUsPerOp + watched.benchCpuUsPerOp + (stats.cpuSeconds * 1e6) / watched.ops;
    process.stdout.write(
      `watch round ${i + 1}: ${WATCHERS} watchers (${where}${watcherCpu}) received ${(stats.delivered / seconds).toFixed(0)} events/s ` +
        `(${receivedPct.toFixed(0)}% of ${WATCHERS} × the writes, ${stats.disordered} out of order or twice); ` +
        `writes ${baseline.opsPerSec.toFixed(0)} → ${watched.opsPerSec.toFixed(0)} ops/s: cost ${costPct.toFixed(1)}%; ` +
        `CPU per write ${baseCpuUs.toFixed(0)} → ${watchedCpuUs.toFixed(0)} µs (+${(100 * (watchedCpuUs / baseCpuUs - 1)).toFixed(1)}%), ` +
        `of which servers ${baseline.serverCpuUsPerOp.toFixed(0)} → ${watched.serverCpuUsPerOp.toFixed(0)} µs; ` +
        `delivery lag p50 ${quantile(stats.lagMs, 0.5).toFixed(1)} ms, p99 ${quantile(stats.lagMs, 0.99).toFixed(1)} ms ` +
        `(the write itself: p50 ${watched.p50Ms.toFixed(1)} ms)\n`,
    );
  }
  // The whole: all watched writes against all baseline writes, over the same total time.
  const sum = (pick: (p: (typeof pairs)[number]) => number): number =>
    pairs.reduce((total, p) => total + pick(p), 0);
  const totalCostPct =
    100 * (1 - sum((p) => p.watched.opsPerSec) / sum((p) => p.baseline.opsPerSec));
  const medianCostPct = quantile(
    [...costs].sort((x, y) => x - y),
    0.5,
  );
  const lag = pairs.flatMap((p) => p.stats.lagMs).sort((x, y) => x - y);
  process.stdout.write(
    `watch: write throughput cost of ${WATCHERS} watchers over ${pairs.length} round(s): ${totalCostPct.toFixed(1)}% ` +
      `(median of the rounds ${medianCostPct.toFixed(1)}%, rounds ${costs.map((c) => c.toFixed(1)).join(", ")}; ` +
      `target < 10%: ${totalCostPct < 10 ? "met" : "NOT met"}); delivery lag p50 ${quantile(lag, 0.5).toFixed(1)} ms, ` +
      `p99 ${quantile(lag, 0.99).toFixed(1)} ms\n`,
  );
}

/** `--only watch`: a Blixard cluster, the two watch workloads alone and their line. */
async function watchOnly(options: SuiteOptions): Promise<void> {
  const profileDir = args["cpu-prof-dir"];
  const cluster = new BlixardCluster(
    tempDir("blixard-bench-"),
    3,
    [],
    profileDir === undefined ? [] : ["--cpu-prof", "--cpu-prof-dir", profileDir],
  );
  const suite = await measure(cluster, { ...options, match: /watch/ }, () =>
    watchWorkloads(cluster, options),
  );
  reportWatch(suite.workloads);
}

async function main(): Promise<void> {
  const options: SuiteOptions = {
    durationMs: Number(args.seconds) * 1000,
    failovers: Number(args.failovers),
    valueBytes: Number(args["value-bytes"]),
    keys: Number(args.keys),
    log,
    ...(args.match === undefined ? {} : { match: new RegExp(args.match) }),
  };
  const etcdClient = args["etcd-client"];
  const etcdClientPaths = ETCD_PATHS.filter((path) => etcdClient === "both" || etcdClient === path);
  if (etcdClientPaths.length === 0) {
    throw new Error(`--etcd-client takes both, ${ETCD_PATHS.join(" or ")}, not ${etcdClient}`);
  }
  const started = performance.now();
  log("building dist/ if it is missing or older than src/ ...");
  await ensureBuilt();
  if (args.only === "locks") return locksOnly(options);
  if (args.only === "watch") return watchOnly(options);
  if (args.only === "idle") {
    await idleOnly({
      windowMs: Number(args["idle-seconds"]) * 1000,
      windows: Number(args["idle-windows"]),
      keys: options.keys,
      valueBytes: options.valueBytes,
      log,
      ...(args["cpu-prof-dir"] === undefined ? {} : { cpuProfileDir: args["cpu-prof-dir"] }),
    });
    return;
  }
  if (args.only !== undefined) {
    throw new Error(`--only takes locks, watch or idle, not ${args.only}`);
  }

  const blixardCluster = new BlixardCluster(tempDir("blixard-bench-"));
  const blixard = await measure(blixardCluster, options, () => {
    // One client keeps at most 63 writes in flight: its session's results window on the server
    // is 64 (see the report), so 64 in flight are spread over 8 clients of 8 each.
    const clients = Array.from(
      { length: SDK_CLIENTS },
      () => new BlixardClient({ endpoints: blixardCluster.endpoints }),
    );
    const value = "v".repeat(options.valueBytes);
    return [
      ...watchWorkloads(blixardCluster, options),
      ...lockWorkloads(blixardCluster.endpoints, lockLatencies),
      {
        name: SDK_WORKLOAD,
        concurrency: 64,
        op: (worker, n) =>
          (clients[worker % SDK_CLIENTS] as BlixardClient).put(`bench-${n % options.keys}`, value),
      },
    ];
  });

  reportWatch(blixard.workloads);
  reportLocks(blixard.workloads);

  const etcd: ClusterResults["etcd"] = {};
  const etcdBin = args["no-etcd"] ? undefined : findEtcd();
  if (etcdBin === undefined) {
    log(
      args["no-etcd"]
        ? "etcd: skipped (--no-etcd)"
        : "etcd: no etcd binary on PATH (Debian: apt-get install etcd-server; or set ETCD_BIN); skipping the comparison",
    );
  } else {
    log(`etcd: ${etcdBin.path} version ${etcdBin.version}`);
    // A fresh cluster per client path, so that neither path finds the other's writes in the state.
    for (const path of etcdClientPaths) {
      const target =
        path === "grpc"
          ? new EtcdGrpcCluster(etcdBin.path, tempDir("etcd-grpc-bench-"))
          : new EtcdCluster(etcdBin.path, tempDir("etcd-bench-"), { name: "etcd gateway" });
      etcd[path] = await measure(target, options, () => []);
    }
  }

  const { availableParallelism } = await import("node:os");
  report(
    { blixard, etcd },
    {
      names: [...WORKLOADS, SDK_WORKLOAD],
      meta: {
        node: process.version,
        cpus: availableParallelism(),
        seconds: Number(args.seconds),
        valueBytes: options.valueBytes,
        keys: options.keys,
        etcdVersion: etcdBin?.version ?? null,
        clients: {
          blixard: "node:http keep-alive agent (bench/cluster/http.ts)",
          etcdGateway: "node:http keep-alive agent (bench/cluster/http.ts)",
          etcdGrpc:
            "@grpc/grpc-js unary calls, one channel per member (bench/cluster/etcd-grpc.ts)",
        },
        totalSeconds: Math.round((performance.now() - started) / 1000),
      },
    },
  );
}

const onSignal = (signal: NodeJS.Signals): void => {
  log(`${signal}: stopping`);
  cleanupSync();
  process.exit(130);
};
process.on("SIGINT", onSignal);
process.on("SIGTERM", onSignal);
process.on("exit", cleanupSync);

try {
  await main();
} catch (error) {
  log(
    `bench:cluster failed: ${error instanceof Error ? (error.stack ?? error.message) : String(error)}`,
  );
  process.exitCode = 1;
} finally {
  cleanupSync();
}
