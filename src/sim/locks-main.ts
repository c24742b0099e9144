/**
 * The command line of the lock workload (see locks.ts), reached through the simulator's:
 *
 *   npm run sim -- --workload locks --seeds 100 [--from 1]   run seeds 1..100, a line per seed
 *   npm run sim -- --workload locks --seed 7                  replay one seed
 *
 * Options: --duration <ms>, --nodes <3|5>, --clients <n>, --faults <kind,kind|none>,
 * --network <minDelayMs,maxDelayMs,lossRate,duplicateRate>, --bug keep-deadlines-across-terms |
 * accept-any-token | skip-line (planted bugs the checkers must catch), --json.
 * Exits 1 if any seed found a violation, 64 on bad usage.
 */
import process from "node:process";
import {
  runLockSimulation,
  type LockSimulationOptions,
  type LockSimulationReport,
} from "./locks.js";
import { ALL_FAULT_KINDS, type FaultKind } from "./nemesis.js";

const USAGE_EXIT_CODE = 64;

function usage(message: string): never {
  console.error(`sim --workload locks: ${message}`);
  process.exit(USAGE_EXIT_CODE);
}

function integer(value: string | undefined, name: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isSafeInteger(n)) usage(`--${name} must be an integer`);
  return n;
}

function options(
  flags: ReadonlyMap<string, readonly string[]>,
): Omit<LockSimulationOptions, "seed"> {
  const one = (name: string): string | undefined => flags.get(name)?.at(-1);
  const result: { -readonly [K in keyof LockSimulationOptions]?: LockSimulationOptions[K] } = {};
  const durationMs = integer(one("duration"), "duration");
  if (durationMs !== undefined) result.durationMs = durationMs;
  const nodes = integer(one("nodes"), "nodes");
  if (nodes !== undefined) result.nodes = nodes;
  const clients = integer(one("clients"), "clients");
  if (clients !== undefined) result.clients = clients;
  const faults = one("faults");
  if (faults !== undefined) {
    const kinds = faults === "none" ? [] : faults.split(",");
    for (const kind of kinds) {
      if (!(ALL_FAULT_KINDS as readonly string[]).includes(kind) || kind === "bitflip") {
        usage(`unknown fault kind ${kind}`);
      }
    }
    result.faults = kinds as FaultKind[];
  }
  const network = one("network")?.split(",").map(Number);
  if (network !== undefined) {
    const [minDelayMs, maxDelayMs, lossRate, duplicateRate] = network as [
      number,
      number,
      number,
      number,
    ];
    if (network.length !== 4 || network.some((n) => !Number.isFinite(n))) {
      usage("--network takes minDelayMs,maxDelayMs,lossRate,duplicateRate");
    }
    result.network = { minDelayMs, maxDelayMs, lossRate, duplicateRate };
  }
  const bugs: {
    keepDeadlinesAcrossTerms?: true;
    resourceAcceptsAnyToken?: true;
    clientSkipsLine?: true;
  } = {};
  for (const bug of flags.get("bug") ?? []) {
    if (bug === "keep-deadlines-across-terms") bugs.keepDeadlinesAcrossTerms = true;
    else if (bug === "accept-any-token") bugs.resourceAcceptsAnyToken = true;
    else if (bug === "skip-line") bugs.clientSkipsLine = true;
    else usage(`unknown bug ${bug} (keep-deadlines-across-terms, accept-any-token, skip-line)`);
  }
  if (Object.keys(bugs).length > 0) result.bugs = bugs;
  return result;
}

function summary(report: LockSimulationReport): string {
  const l = report.locks;
  const faults = Object.entries(report.faultsInjected)
    .filter(([kind]) => kind !== "heal-all" && kind !== "restart")
    .reduce((sum, [, n]) => sum + n, 0);
  return (
    `seed ${report.seed}: ${report.violations.length === 0 ? "ok" : "FAILED"} ` +
    `nodes=${report.parameters.nodes} clients=${report.parameters.clients} ` +
    `acquisitions=${l.acquisitions} actions=${l.actions} (refused stale ${l.refused}) ` +
    `stalls=${l.stalls} leases renewed=${report.leases.renewals} expired=${report.leases.expiries} ` +
    `txns=${report.txns.total} (unknown ${report.txns.unknown}) faults=${faults} ` +
    `terms=${report.termsWithLeader} virtual=${report.virtualTimeMs}ms trace=${report.traceHash}`
  );
}

/** Runs the lock workload from the simulator's parsed flags; exits the process. */
export async function runLocksCli(flags: ReadonlyMap<string, readonly string[]>): Promise<never> {
  const base = options(flags);
  const single = integer(flags.get("seed")?.at(-1), "seed");
  const from = integer(flags.get("from")?.at(-1), "from") ?? 1;
  const total = single !== undefined ? 1 : (integer(flags.get("seeds")?.at(-1), "seeds") ?? 10);
  const json = flags.has("json");
  const failures: LockSimulationReport[] = [];
  let acquisitions = 0;
  for (let i = 0; i < total; i++) {
    const report = await runLockSimulation({ seed: single ?? from + i, ...base });
    acquisitions += report.locks.acquisitions;
    console.log(json ? JSON.stringify(report) : summary(report));
    if (report.violations.length === 0) continue;
    failures.push(report);
    if (json) continue;
    for (const v of report.violations.slice(0, 20)) {
      console.log(`  [${v.property}] at ${v.atMs} ms: ${v.message}`);
    }
    if (report.violations.length > 20) console.log(`  … ${report.violations.length - 20} more`);
    console.log(`  replay: ${report.replayCommand}`);
  }
  console.log(
    `total: ${total} seeds, ${failures.length} with violations, ${acquisitions} lock acquisitions`,
  );
  process.exit(failures.length > 0 ? 1 : 0);
}
