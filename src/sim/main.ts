/**
 * The simulator's command line:
 *
 *   npm run sim -- --seeds 1000 [--from 1] [--batch 100]   run seeds 1..1000, a summary per batch
 *   npm run sim -- --seed 12345                            replay one seed, with its full report
 *   npm run sim:soak -- --minutes 10                       fresh seeds until the time is up
 *
 * A failing seed prints the broken property, the last events of its trace and the one command
 * that replays it. --verbose prints a line per seed; --json one report per seed.
 *
 * Other options (each is part of the replay command a failure prints): --duration <ms>,
 * --nodes <3|5>, --clients <n>, --membership <true|false>, --faults <kind,kind|none>,
 * --network <minDelayMs,maxDelayMs,lossRate,duplicateRate>, --bug ack-before-durable |
 * cas-ignores-expected:<node> | grant-all-votes | figure8 | no-up-to-date-check | forget-vote,
 * --fault-interval <min,max ms>, --fault-duration <min,max ms>, --crash-after-vote <rate>,
 * --max-message-bytes <n>, --heartbeat-ticks <n> (4: a real node's), --schedule figure8, --disk <model|wal> (wal: the real write-ahead log on
 * a simulated file system; with it, fault kind bitflip and --bug wal-skips-datasync),
 * --orchestrator (the cluster state machine with agents, liveness monitors, simulated tasks and
 * VMs, operators and the orchestrator's checkers; with it, --bug leak-abandoned-tasks |
 * leak-moved-vms), --agents N (with --orchestrator: N agent-only workers beside the servers, cut
 * off and crashed by faults of their own; with it, --bug agent-overstays-grace), --large-state (a background writer of big values, slow snapshot links and a
 * slow disk: snapshots in flight for seconds under the faults), --workload locks (the lock,
 * lease and txn workload instead of the kv one: see locks-main.ts for its options). Wall-clock
 * time is read here only, for seeds per minute.
 * Exits 1 if any seed found a violation, 64 on bad usage.
 */
import process from "node:process";
import type { PlantedBugs } from "./cluster.js";
import { ALL_FAULT_KINDS, type FaultKind } from "./nemesis.js";
import { SCHEDULES, type ScheduleName } from "./schedules.js";
import { runSimulation, type SimulationOptions, type SimulationReport } from "./run.js";
import { runLocksCli } from "./locks-main.js";

const USAGE_EXIT_CODE = 64;

function usage(message: string): never {
  console.error(`sim: ${message}`);
  console.error("usage: npm run sim -- (--seed <n> | --seeds <count> [--from <n>]) [options]");
  process.exit(USAGE_EXIT_CODE);
}

function parseArgs(argv: readonly string[]) {
  const flags = new Map<string, string[]>();
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string;
    if (!arg.startsWith("--")) usage(`unexpected argument ${arg}`);
    const name = arg.slice(2);
    if (
      name === "json" ||
      name === "verbose" ||
      name === "soak" ||
      name === "orchestrator" ||
      name === "large-state"
    ) {
      flags.set(name, ["true"]);
      continue;
    }
    const value = argv[++i];
    if (value === undefined) usage(`--${name} needs a value`);
    flags.set(name, [...(flags.get(name) ?? []), value]);
  }
  return flags;
}

function integer(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n)) usage(`--${name} must be an integer`);
  return n;
}

function baseOptions(flags: Map<string, string[]>): Omit<SimulationOptions, "seed"> {
  const one = (name: string): string | undefined => flags.get(name)?.at(-1);
  const bugs: { -readonly [K in keyof PlantedBugs]: PlantedBugs[K] } = {};
  for (const bug of flags.get("bug") ?? []) {
    if (bug === "ack-before-durable") bugs.ackBeforeDurable = true;
    else if (bug === "grant-all-votes") bugs.grantAllVotes = true;
    else if (bug === "figure8") bugs.figure8 = true;
    else if (bug === "no-up-to-date-check") bugs.noUpToDateCheck = true;
    else if (bug === "forget-vote") bugs.forgetVote = true;
    else if (bug === "wal-skips-datasync") bugs.walSkipsDatasync = true;
    else if (bug === "leak-abandoned-tasks") bugs.leakAbandonedTasks = true;
    else if (bug === "leak-moved-vms") bugs.leakMovedVms = true;
    else if (bug === "agent-overstays-grace") bugs.agentOverstaysGrace = true;
    else if (bug.startsWith("cas-ignores-expected:")) {
      bugs.casIgnoresExpectedOnNode = integer(bug.split(":")[1], "bug") ?? 1;
    } else usage(`unknown bug ${bug}`);
  }
  const faults = one("faults");
  const network = one("network")?.split(",").map(Number);
  if (network !== undefined && (network.length !== 4 || network.some((n) => !Number.isFinite(n)))) {
    usage("--network takes minDelayMs,maxDelayMs,lossRate,duplicateRate");
  }
  const membership = one("membership");
  const options: { -readonly [K in keyof SimulationOptions]?: SimulationOptions[K] } = {};
  const durationMs = integer(one("duration"), "duration");
  if (durationMs !== undefined) options.durationMs = durationMs;
  const nodes = integer(one("nodes"), "nodes");
  if (nodes !== undefined) options.nodes = nodes;
  const clients = integer(one("clients"), "clients");
  if (clients !== undefined) options.clients = clients;
  if (membership !== undefined) options.membership = membership === "true";
  if (faults !== undefined) {
    const kinds = faults === "none" ? [] : faults.split(",");
    for (const kind of kinds) {
      if (!(ALL_FAULT_KINDS as readonly string[]).includes(kind))
        usage(`unknown fault kind ${kind}`);
    }
    options.faults = kinds as FaultKind[];
  }
  if (network !== undefined) {
    const [minDelayMs, maxDelayMs, lossRate, duplicateRate] = network as [
      number,
      number,
      number,
      number,
    ];
    options.network = { minDelayMs, maxDelayMs, lossRate, duplicateRate };
  }
  if (Object.keys(bugs).length > 0) options.bugs = bugs;
  const range = (name: string): { min: number; max: number } | undefined => {
    const parts = one(name)?.split(",").map(Number);
    if (parts === undefined) return undefined;
    const [min, max] = parts as [number, number];
    if (parts.length !== 2 || !(min >= 0 && max >= min)) usage(`--${name} takes min,max (ms)`);
    return { min, max };
  };
  const faultIntervalMs = range("fault-interval");
  if (faultIntervalMs !== undefined) options.faultIntervalMs = faultIntervalMs;
  const faultDurationMs = range("fault-duration");
  if (faultDurationMs !== undefined) options.faultDurationMs = faultDurationMs;
  const crashAfterVote = one("crash-after-vote");
  if (crashAfterVote !== undefined) {
    const rate = Number(crashAfterVote);
    if (!(rate >= 0 && rate <= 1)) usage("--crash-after-vote takes a probability in [0, 1]");
    options.crashAfterVoteRate = rate;
  }
  const schedule = one("schedule");
  if (schedule !== undefined) {
    if (!(SCHEDULES as readonly string[]).includes(schedule)) usage(`unknown schedule ${schedule}`);
    options.schedule = schedule as ScheduleName;
  }
  const disk = one("disk");
  if (disk !== undefined) {
    if (disk !== "model" && disk !== "wal") usage("--disk takes model or wal");
    options.disk = disk;
  }
  const needsWal = options.faults?.includes("bitflip") === true || bugs.walSkipsDatasync === true;
  if (needsWal && options.disk !== "wal") {
    usage("the bitflip fault and --bug wal-skips-datasync need --disk wal");
  }
  if (flags.has("orchestrator")) options.orchestrator = true;
  const agents = integer(one("agents"), "agents");
  if (agents !== undefined) options.agents = agents;
  if (flags.has("large-state")) options.largeState = true;
  const orchestratorBugs = bugs.leakAbandonedTasks === true || bugs.leakMovedVms === true;
  if (orchestratorBugs && options.orchestrator !== true) {
    usage("--bug leak-abandoned-tasks and leak-moved-vms need --orchestrator");
  }
  const heartbeatTicks = integer(one("heartbeat-ticks"), "heartbeat-ticks");
  if (heartbeatTicks !== undefined) options.heartbeatTicks = heartbeatTicks;
  const maxMessageBytes = integer(one("max-message-bytes"), "max-message-bytes");
  if (maxMessageBytes !== undefined) options.maxSizePerMsgBytes = maxMessageBytes;
  return options;
}

/** The orchestrator's part of a one-line summary (empty without it). */
function orchestratorSummary(report: SimulationReport): string {
  const o = report.orchestrator;
  if (o === undefined) return "";
  const t = o.tasks;
  return (
    ` tasks=${t.submitted} (succeeded ${t.succeeded}, failed ${t.failed + t.timedOut}, ` +
    `cancelled ${t.cancelled}, lost ${t.lost}, retried ${t.retried}, pending ${t.pending}) ` +
    `offline=${o.workersMarkedOffline} vms=${o.vms.created} moved=${o.vms.moved} ` +
    `settled=${o.settledAfterHealMs ?? "never"}ms`
  );
}

function summary(report: SimulationReport): string {
  const p = report.parameters;
  return (
    `seed ${report.seed}: ${report.violations.length === 0 ? "ok" : "FAILED"} ` +
    `nodes=${p.nodes} membership=${p.membership} loss=${p.network.lossRate} dup=${p.network.duplicateRate} ` +
    `delay<=${p.network.maxDelayMs}ms ops=${report.operations.total} (unknown ${report.operations.unknown}) ` +
    `faults=${Object.values(report.faultsInjected).reduce((a, b) => a + b, 0)} ` +
    `virtual=${report.virtualTimeMs}ms events=${report.events} trace=${report.traceHash}` +
    orchestratorSummary(report)
  );
}

function printFailure(report: SimulationReport): void {
  console.log(`\nFAILED seed ${report.seed}`);
  for (const v of report.violations) console.log(`  [${v.property}] at ${v.atMs} ms: ${v.message}`);
  console.log(`  last ${report.traceTail.length} events of the trace:`);
  for (const line of report.traceTail) console.log(`    ${line}`);
  console.log(`  replay: ${report.replayCommand}\n`);
}

/** Seeds per batch summary line. */
const DEFAULT_BATCH_SEEDS = 100;
/** Seeds are 32-bit integers. */
const SEED_SPACE = 0x1_0000_0000;

/** Counts of one batch (or of the whole run). */
interface Tally {
  seeds: number;
  failed: number;
  elections: number;
  membershipChanges: number;
  operations: number;
  loudStorageFailures: number;
  walRecoveries: number;
  tornTailsCut: number;
  tasksFinished: number;
  tasksRetried: number;
  tasksLost: number;
  workersMarkedOffline: number;
  vmsMoved: number;
}

function emptyTally(): Tally {
  return {
    seeds: 0,
    failed: 0,
    elections: 0,
    membershipChanges: 0,
    operations: 0,
    loudStorageFailures: 0,
    walRecoveries: 0,
    tornTailsCut: 0,
    tasksFinished: 0,
    tasksRetried: 0,
    tasksLost: 0,
    workersMarkedOffline: 0,
    vmsMoved: 0,
  };
}

function count(tally: Tally, report: SimulationReport): void {
  tally.seeds++;
  if (report.violations.length > 0) tally.failed++;
  tally.elections += report.termsWithLeader;
  const f = report.faultsInjected;
  tally.membershipChanges += (f["add-learner"] ?? 0) + (f["promote"] ?? 0) + (f["remove"] ?? 0);
  tally.operations += report.operations.total;
  tally.loudStorageFailures += report.storage.loudFailures;
  tally.walRecoveries += report.storage.recoveries;
  tally.tornTailsCut += report.storage.truncatedTails;
  const o = report.orchestrator;
  if (o !== undefined) {
    const t = o.tasks;
    tally.tasksFinished += t.succeeded + t.failed + t.timedOut + t.cancelled + t.lost;
    tally.tasksRetried += t.retried;
    tally.tasksLost += t.lost;
    tally.workersMarkedOffline += o.workersMarkedOffline;
    tally.vmsMoved += o.vms.moved;
  }
}

function describeTally(label: string, tally: Tally, elapsedMs: number): string {
  const perSecond = tally.seeds / Math.max(elapsedMs / 1000, 1e-3);
  return (
    `${label}: ${tally.seeds} seeds, ${tally.failed} with violations, ` +
    `${perSecond.toFixed(2)} seeds/s (${(perSecond * 60).toFixed(0)}/min, wall clock), ` +
    `${tally.elections} terms with a leader, ${tally.membershipChanges} membership changes, ` +
    `${tally.operations} client operations` +
    (tally.walRecoveries > 0
      ? `, ${tally.walRecoveries} WAL recoveries (${tally.tornTailsCut} cut a torn tail)`
      : "") +
    (tally.loudStorageFailures > 0
      ? `, ${tally.loudStorageFailures} loud storage failures (StorageCorrupt after a bit flip)`
      : "") +
    (tally.tasksFinished > 0
      ? `, ${tally.tasksFinished} tasks finished (${tally.tasksRetried} retried, ` +
        `${tally.tasksLost} lost), ${tally.workersMarkedOffline} workers marked offline, ` +
        `${tally.vmsMoved} VM moves`
      : "")
  );
}

async function main(): Promise<void> {
  const flags = parseArgs(process.argv.slice(2));
  const workload = flags.get("workload")?.at(-1);
  if (workload === "locks") return void (await runLocksCli(flags));
  if (workload !== undefined && workload !== "kv") usage("--workload takes kv or locks");
  const options = baseOptions(flags);
  const json = flags.has("json");
  const verbose = flags.has("verbose");
  const single = integer(flags.get("seed")?.at(-1), "seed");
  const batchSeeds = integer(flags.get("batch")?.at(-1), "batch") ?? DEFAULT_BATCH_SEEDS;
  if (batchSeeds < 1) usage("--batch must be at least 1");
  const minutes = flags.get("minutes")?.at(-1);
  const soakMs = minutes === undefined ? undefined : Number(minutes) * 60_000;
  if (soakMs !== undefined && !(soakMs > 0)) usage("--minutes must be a positive number");

  // Soak: fresh seeds from the wall clock unless --from is given; batch after batch until the time is up.
  const from =
    integer(flags.get("from")?.at(-1), "from") ??
    (soakMs === undefined ? 1 : Date.now() % SEED_SPACE);
  const total =
    single !== undefined
      ? 1
      : soakMs !== undefined
        ? Infinity
        : (integer(flags.get("seeds")?.at(-1), "seeds") ?? 10);
  const failures: SimulationReport[] = [];
  const started = performance.now();
  const overall = emptyTally();
  let batch = emptyTally();
  let batchStarted = started;
  for (let i = 0; i < total; i++) {
    if (soakMs !== undefined && performance.now() - started >= soakMs) break;
    const seed = single ?? (from + i) % SEED_SPACE;
    const report = await runSimulation({ seed, ...options });
    count(batch, report);
    count(overall, report);
    if (json) console.log(JSON.stringify(report));
    else if (verbose || single !== undefined) console.log(summary(report));
    if (single !== undefined && !json) {
      console.log(`  faults: ${JSON.stringify(report.faultsInjected)}`);
      if (report.storage.disk === "wal") {
        console.log(`  storage: ${JSON.stringify(report.storage)}`);
      }
      console.log(`  network: ${JSON.stringify(report.network)}`);
      console.log(`  leader after heal: ${report.leaderElectedAfterHealMs ?? "never"} ms`);
      if (report.orchestrator !== undefined) {
        console.log(`  orchestrator: ${JSON.stringify(report.orchestrator)}`);
      }
    }
    if (report.violations.length > 0) {
      failures.push(report);
      if (!json) printFailure(report);
    }
    if (single === undefined && !json && batch.seeds === batchSeeds) {
      const now = performance.now();
      console.log(
        describeTally(`seeds ${seed - batch.seeds + 1}..${seed}`, batch, now - batchStarted),
      );
      batch = emptyTally();
      batchStarted = now;
    }
  }
  if (single === undefined && !json && batch.seeds > 0) {
    console.log(describeTally("last batch", batch, performance.now() - batchStarted));
  }
  const elapsedMs = performance.now() - started;
  console.log(describeTally("total", overall, elapsedMs));
  if (failures.length > 0) {
    console.log(`${failures.length} failing seeds; replay each with:`);
    for (const report of failures) console.log(`  ${report.replayCommand}`);
  }
  process.exit(failures.length > 0 ? 1 : 0);
}

void main();
